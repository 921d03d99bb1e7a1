package thriftpeer

import (
	"context"
	"errors"
	"testing"

	"github.com/metaproxy/metaproxy/test/peers/thrift/gen/hello"
)

// TestDirect checks the peers without a proxy: every client kind against a
// server of its own kind and against the universal THeader server.
func TestDirect(t *testing.T) {
	header := Config{Transport: "header", Protocol: "header", Service: "Hello"}
	universal, err := Serve("127.0.0.1:0", "U", header)
	if err != nil {
		t.Fatal(err)
	}
	defer universal.Close()
	for _, c := range []Config{
		{Transport: "framed", Protocol: "binary"}, {Transport: "framed", Protocol: "compact"},
		{Transport: "buffered", Protocol: "binary"}, {Transport: "buffered", Protocol: "compact"},
		{Transport: "header", Protocol: "binary"}, {Transport: "header", Protocol: "compact"},
		{Transport: "framed", Protocol: "binary", Service: "Hello"},
		{Transport: "framed", Protocol: "header"}, {Transport: "framed", Protocol: "header-compact"},
	} {
		own, err := Serve("127.0.0.1:0", "own", c)
		if err != nil {
			t.Fatal(err)
		}
		servers := []*Server{own, universal}
		if c.Transport == "framed" && (c.Protocol == "header" || c.Protocol == "header-compact") {
			servers = servers[:1] // the universal server reads no THeader inside a frame
		}
		for _, s := range servers {
			cl, err := Dial(s.Addr, c)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			tag := map[*Server]string{own: "own", universal: "U"}[s]
			if got, err := cl.SayHello(ctx, "x"); err != nil || got != Reply("x", tag, s.Addr) {
				t.Errorf("%+v to %s: %q, %v", c, tag, got, err)
			}
			var he *hello.HelloError
			if _, err := cl.SayHello(ctx, ErrorName); !errors.As(err, &he) || he.Code != ErrorCode {
				t.Errorf("%+v to %s: sayHello(error): %v", c, tag, err)
			}
			if (c.Transport == "header" && s == universal) || c.Protocol == "header" || c.Protocol == "header-compact" {
				v, err := cl.EchoHeader(WithHeaders(ctx, map[string]string{"k": "v"}), "k")
				if err != nil || v != "v" {
					t.Errorf("%+v: echoHeader: %q, %v", c, v, err)
				}
			}
			cl.Close()
		}
		own.Close()
	}
}
