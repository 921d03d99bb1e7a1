package thriftcodec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/metaproxy/metaproxy/test/peers/thrift/gen/hello"
)

// Parsed is a frame as the Apache library reads it.
type Parsed struct {
	Name    string // as on the wire, with a multiplexing prefix if any
	Type    thrift.TMessageType
	Seq     int32
	Headers map[string]string // THeader info headers
	// Body is the argument or result struct in JSON (which sorts map keys),
	// or the type and message of a TApplicationException.
	Body []byte
	// AppException is the exception of an EXCEPTION message.
	AppException thrift.TApplicationException
}

// Read reads one frame of w with the Apache library. For unframed wires it
// also checks that the message is exactly the frame.
func Read(w Wire, frame []byte) (Parsed, error) {
	ctx := context.Background()
	buf := &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(bytes.Clone(frame))}
	p, hp := w.stack(buf, false)
	var r Parsed
	var err error
	r.Name, r.Type, r.Seq, err = p.ReadMessageBegin(ctx)
	if err != nil {
		return r, err
	}
	if hp != nil {
		r.Headers = hp.GetReadHeaders()
	}
	body, err := bodyOf(r.Name, r.Type)
	if err != nil {
		return r, err
	}
	if err := body.Read(ctx, p); err != nil {
		return r, fmt.Errorf("reading the body (type %d) of %s: %w", r.Type, r.Name, err)
	}
	if err := p.ReadMessageEnd(ctx); err != nil {
		return r, err
	}
	if w.Transport == "unframed" && buf.Len() != 0 {
		return r, fmt.Errorf("%d bytes after the message", buf.Len())
	}
	if ae, ok := body.(thrift.TApplicationException); ok {
		r.AppException = ae
		r.Body = fmt.Appendf(nil, "%d:%s", ae.TypeId(), ae.Error())
		return r, nil
	}
	r.Body, err = json.Marshal(body)
	return r, err
}

// bodyOf returns an empty struct for the body of a message.
func bodyOf(name string, typ thrift.TMessageType) (thrift.TStruct, error) {
	if typ == thrift.EXCEPTION {
		return thrift.NewTApplicationException(0, ""), nil
	}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[i+1:]
	}
	call := typ == thrift.CALL || typ == thrift.ONEWAY
	switch {
	case name == "sayHello" && call:
		return &hello.HelloSayHelloArgs{}, nil
	case name == "sayHello":
		return &hello.HelloSayHelloResult{}, nil
	case name == "ping" && call:
		return &hello.HelloPingArgs{}, nil
	case name == "echoHeader" && call:
		return &hello.HelloEchoHeaderArgs{}, nil
	case name == "echoHeader":
		return &hello.HelloEchoHeaderResult{}, nil
	case name == "pingCount" && call:
		return &hello.HelloPingCountArgs{}, nil
	case name == "pingCount":
		return &hello.HelloPingCountResult{}, nil
	case name == "echoBag" && call:
		return &hello.HelloEchoBagArgs{}, nil
	case name == "echoBag":
		return &hello.HelloEchoBagResult{}, nil
	}
	return nil, fmt.Errorf("no %v message %q in the Hello service", typ, name)
}

// Body returns the frame's name, type and body as the Apache library reads
// them: everything an edit of the sequence id or of headers must keep.
func Body(w Wire) func([]byte) ([]byte, error) {
	return func(frame []byte) ([]byte, error) {
		r, err := Read(w, frame)
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "%s|%d|%s", r.Name, r.Type, r.Body), nil
	}
}
