package thrift

import (
	"fmt"
	"testing"

	"github.com/metaproxy/metaproxy/codec/codectest"
)

// garbage must be refused by a fresh codec of any configuration.
var garbage = [][]byte{
	[]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
	{0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
	{0x7f, 0xff, 0xff, 0xff, 0x80, 0x01, 0x00, 0x01},
	{0xda, 0xbb, 0xc2, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x10},
	// A framed message whose inner bytes are no protocol.
	{0x00, 0x00, 0x00, 0x10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
}

// garbageFor adds garbage specific to the transport and protocol of w.
func garbageFor(w wire) [][]byte {
	g := append([][]byte(nil), garbage...)
	switch w.transport {
	case TransportHeader:
		g = append(g,
			// zlib transform
			[]byte("\x00\x00\x00\x1b\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x02\x00\x01\x01\x00\x80\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00"),
			// protocol id 1 (JSON)
			[]byte("\x00\x00\x00\x0e\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x01\x00\x00\x00"))
	case TransportFramedHeader:
		g = append(g,
			// zlib transform
			[]byte("\x00\x00\x00\x1f\x00\x00\x00\x1b\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x02\x00\x01\x01\x00\x80\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00"),
			// protocol id 1 (JSON)
			[]byte("\x00\x00\x00\x12\x00\x00\x00\x0e\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x01\x00\x00\x00"),
			// the inner length does not match the outer one (then bytes
			// enough to refute an unframed non-strict reading)
			[]byte("\x00\x00\x00\x26\x00\x00\x00\x21\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x80\x01\x00\x01\x00\x00\x00\x01m\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	case TransportUnframed:
		if w.protocol == ProtocolBinary {
			g = append(g,
				// message type 9
				[]byte("\x80\x01\x00\x09\x00\x00\x00\x01m\x00\x00\x00\x01\x00"),
				// a list of -1 elements
				[]byte("\x80\x01\x00\x01\x00\x00\x00\x01m\x00\x00\x00\x01\x0f\x00\x01\x08\xff\xff\xff\xff"),
				// field of type 1 (void)
				[]byte("\x80\x01\x00\x01\x00\x00\x00\x01m\x00\x00\x00\x01\x01\x00\x01"),
				nested(ProtocolBinary, maxNestingDepth+1))
		} else {
			g = append(g,
				// a varint sequence id longer than 5 bytes
				[]byte("\x82\x21\xff\xff\xff\xff\xff\xff\x01"),
				// a field of type 14
				[]byte("\x82\x21\x01\x01m\x1e"),
				nested(ProtocolCompact, maxNestingDepth+1))
		}
	}
	return g
}

// nested returns an unframed call whose argument struct holds structs
// nested depth deep in total.
func nested(p Protocol, depth int) []byte {
	var b []byte
	if p == ProtocolBinary {
		b = []byte("\x80\x01\x00\x01\x00\x00\x00\x01m\x00\x00\x00\x01")
		for i := 1; i < depth; i++ {
			b = append(b, 12, 0, 1)
		}
	} else {
		b = []byte("\x82\x21\x01\x01m")
		for i := 1; i < depth; i++ {
			b = append(b, 0x1c)
		}
	}
	for i := 0; i < depth; i++ {
		b = append(b, 0)
	}
	return b
}

// body is the message name, type and struct bytes: what edits must keep.
func body(w wire) func([]byte) ([]byte, error) {
	return func(f []byte) ([]byte, error) {
		m, err := messageOf(f, w.transport)
		if err != nil {
			return nil, err
		}
		h, err := parseHead(m, w.protocol, len(m))
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "%s|%d|%x", m[h.nameOff:h.nameOff+h.nameLen], h.typ, m[h.body:]), nil
	}
}

func messageOf(f []byte, t Transport) ([]byte, error) {
	switch t {
	case TransportFramed:
		return f[4:], nil
	case TransportHeader, TransportFramedHeader:
		hf, err := headerFrameOf(f, t)
		if err != nil {
			return nil, err
		}
		h, err := parseHeaderFrame(hf)
		return hf[h.end:], err
	}
	return f, nil
}

func TestConformance(t *testing.T) {
	for _, w := range wires {
		reqs, rsps := w.golden(t)
		for _, c := range w.configs() {
			t.Run(fmt.Sprintf("%s/%s-%s", w.name, or(c.Transport), or(c.Protocol)), func(t *testing.T) {
				codectest.Run(t, codectest.Suite{
					Factory:   mustFactory(t, c),
					Requests:  reqs,
					Responses: rsps,
					Garbage:   garbageFor(w),
					Body:      body(w),
					NoHeaders: !w.transport.isHeader(),
				})
			})
		}
	}
}

func or(s string) string {
	if s == "" {
		return "auto"
	}
	return s
}
