// Package thriftcodec checks metaproxy's Thrift codec against the Apache
// Thrift Go library (v0.17.0, with code from Debian's thrift-compiler): the
// library writes the frames the codec reads, and reads back the frames the
// codec writes. It also writes the golden frames kept as test data in
// codecs/thrift, which cannot import the library.
package thriftcodec

import (
	"bytes"
	"context"
	"fmt"

	"github.com/apache/thrift/lib/go/thrift"

	thriftpeer "github.com/metaproxy/metaproxy/test/peers/thrift"
)

// Wire is a transport × protocol as the Apache library writes it.
type Wire struct {
	Name      string // the golden file stem, such as "framed-binary"
	Transport string // framed, unframed, header or framed_header (THeader in a framed transport)
	Protocol  string // binary or compact
	NonStrict bool   // binary: the old message head without a version word
}

// Wires lists every transport × protocol the codec supports.
var Wires = []Wire{
	{Name: "framed-binary", Transport: "framed", Protocol: "binary"},
	{Name: "framed-binary-nonstrict", Transport: "framed", Protocol: "binary", NonStrict: true},
	{Name: "framed-compact", Transport: "framed", Protocol: "compact"},
	{Name: "unframed-binary", Transport: "unframed", Protocol: "binary"},
	{Name: "unframed-binary-nonstrict", Transport: "unframed", Protocol: "binary", NonStrict: true},
	{Name: "unframed-compact", Transport: "unframed", Protocol: "compact"},
	{Name: "header-binary", Transport: "header", Protocol: "binary"},
	{Name: "header-compact", Transport: "header", Protocol: "compact"},
	// A THeaderProtocol over a TFramedTransport, what Apache's clients
	// write for --transport framed --protocol header: every THeader frame
	// has a second length in front.
	{Name: "framed-header-binary", Transport: "framed_header", Protocol: "binary"},
	{Name: "framed-header-compact", Transport: "framed_header", Protocol: "compact"},
}

// Header reports whether w carries THeader frames (and so info headers).
func (w Wire) Header() bool { return w.Transport == "header" || w.Transport == "framed_header" }

// Spec is one message to write.
type Spec struct {
	Service string // multiplexed service name, or ""
	Method  string
	Type    thrift.TMessageType
	Seq     int32
	Body    thrift.TStruct
	Headers map[string]string // THeader info headers
}

func (w Wire) conf() *thrift.TConfiguration {
	c := thriftpeer.Config{Transport: w.Transport, Protocol: w.Protocol, NonStrict: w.NonStrict}
	if w.Transport == "framed_header" {
		c.Transport = "framed"
		if w.Protocol == "compact" {
			c.Protocol = "header-compact"
		} else {
			c.Protocol = "header"
		}
	}
	return c.TConfiguration()
}

// stack returns the protocol of w over t, and the THeader protocol if w is
// THeader. Unframed writes go through Apache's buffered transport; unframed
// reads use t itself, so that a reader can tell how many bytes were used.
func (w Wire) stack(t thrift.TTransport, write bool) (thrift.TProtocol, *thrift.THeaderProtocol) {
	conf := w.conf()
	switch w.Transport {
	case "header":
		hp := thrift.NewTHeaderProtocolConf(thrift.NewTHeaderTransportConf(t, conf), conf)
		return hp, hp
	case "framed_header":
		ft := thrift.NewTFramedTransportConf(t, conf)
		hp := thrift.NewTHeaderProtocolConf(thrift.NewTHeaderTransportConf(ft, conf), conf)
		return hp, hp
	case "framed":
		t = thrift.NewTFramedTransportConf(t, conf)
	case "unframed":
		if write {
			t = thrift.NewTBufferedTransport(t, 8192)
		}
	}
	if w.Protocol == "compact" {
		return thrift.NewTCompactProtocolConf(t, conf), nil
	}
	return thrift.NewTBinaryProtocolConf(t, conf), nil
}

// Write returns s as the Apache library writes it in w.
func (w Wire) Write(s Spec) ([]byte, error) {
	buf := thrift.NewTMemoryBuffer()
	p, hp := w.stack(buf, true)
	for k, v := range s.Headers {
		if hp == nil {
			return nil, fmt.Errorf("%s: headers need the header transport", w.Name)
		}
		hp.SetWriteHeader(k, v)
	}
	if s.Service != "" {
		p = thrift.NewTMultiplexedProtocol(p, s.Service)
	}
	ctx := context.Background()
	if err := p.WriteMessageBegin(ctx, s.Method, s.Type, s.Seq); err != nil {
		return nil, err
	}
	if err := s.Body.Write(ctx, p); err != nil {
		return nil, err
	}
	if err := p.WriteMessageEnd(ctx); err != nil {
		return nil, err
	}
	if err := p.Flush(ctx); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()), nil
}
