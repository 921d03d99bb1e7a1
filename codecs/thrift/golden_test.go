package thrift

import (
	"github.com/metaproxy/metaproxy/internal/golden"
	"testing"
)

// wire is a transport × protocol with golden frames in testdata, written by
// the Apache Thrift Go library (see test/thriftcodec, which regenerates and
// checks them).
type wire struct {
	name      string
	transport Transport
	protocol  Protocol
	nonStrict bool
}

var wires = []wire{
	{"framed-binary", TransportFramed, ProtocolBinary, false},
	{"framed-binary-nonstrict", TransportFramed, ProtocolBinary, true},
	{"framed-compact", TransportFramed, ProtocolCompact, false},
	{"unframed-binary", TransportUnframed, ProtocolBinary, false},
	{"unframed-binary-nonstrict", TransportUnframed, ProtocolBinary, true},
	{"unframed-compact", TransportUnframed, ProtocolCompact, false},
	{"header-binary", TransportHeader, ProtocolBinary, false},
	{"header-compact", TransportHeader, ProtocolCompact, false},
	{"framed-header-binary", TransportFramedHeader, ProtocolBinary, false},
	{"framed-header-compact", TransportFramedHeader, ProtocolCompact, false},
}

// configs returns the configurations under which w must be understood:
// detected, and pinned in every way. Unframed non-strict binary is only
// understood when something is pinned (see detect).
func (w wire) configs() []Config {
	t, p := w.transport.String(), w.protocol.String()
	cs := []Config{{Transport: t}, {Protocol: p}, {Transport: t, Protocol: p}}
	if !(w.nonStrict && w.transport == TransportUnframed) {
		cs = append(cs, Config{})
	}
	return cs
}

// golden returns the request and response frames of w.
func (w wire) golden(tb testing.TB) (reqs, rsps [][]byte) {
	tb.Helper()
	return golden.ThriftFrames(tb, w.name)
}

func mustFactory(tb testing.TB, c Config) *Factory {
	tb.Helper()
	f, err := NewFactory(c)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}
