package main

import (
	"context"

	thriftpeer "github.com/metaproxy/metaproxy/test/peers/thrift"
)

// thriftCaller gives each worker its own Apache Thrift client and
// connection (framed transport, binary protocol): Apache clients are not
// safe for concurrent use, so a Thrift client application holds one
// connection per concurrent caller.
type thriftCaller struct {
	clients []*thriftpeer.Client
}

func dialThrift(addr string, workers int) (*thriftCaller, error) {
	cfg := thriftpeer.Config{Transport: "framed", Protocol: "binary"}
	t := &thriftCaller{}
	for range workers {
		cl, err := thriftpeer.Dial(addr, cfg)
		if err != nil {
			t.Close()
			return nil, err
		}
		t.clients = append(t.clients, cl)
	}
	return t, nil
}

// Call makes one sayHello call on worker w's connection.
func (t *thriftCaller) Call(w int) error {
	_, err := t.clients[w].SayHello(context.Background(), "bench")
	return err
}

// Close closes every connection.
func (t *thriftCaller) Close() {
	for _, cl := range t.clients {
		cl.Close()
	}
}
