package thriftpeer

import (
	"context"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/metaproxy/metaproxy/test/peers/thrift/gen/hello"
)

// Client is a Hello client on one connection. Like every Apache Thrift
// client it is not safe for concurrent use.
type Client struct {
	*hello.HelloClient
	trans thrift.TTransport
}

// Dial connects a Hello client to addr.
func Dial(addr string, c Config) (*Client, error) {
	tf, pf, err := c.factories()
	if err != nil {
		return nil, err
	}
	sock := thrift.NewTSocketConf(addr, c.TConfiguration())
	if err := sock.Open(); err != nil {
		return nil, err
	}
	trans, err := tf.GetTransport(sock)
	if err != nil {
		sock.Close()
		return nil, err
	}
	in := pf.GetProtocol(trans)
	out := in
	if c.Service != "" {
		out = thrift.NewTMultiplexedProtocol(in, c.Service)
	}
	return &Client{HelloClient: hello.NewHelloClient(thrift.NewTStandardClient(in, out)), trans: trans}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.trans.Close() }

// WithHeaders returns ctx carrying THeader info headers for the next calls
// (THeader transport only, and not with a multiplexed service: the Apache
// client only writes them on a bare THeaderProtocol).
func WithHeaders(ctx context.Context, kv map[string]string) context.Context {
	keys := make([]string, 0, len(kv))
	for k, v := range kv {
		ctx = thrift.SetHeader(ctx, k, v)
		keys = append(keys, k)
	}
	return thrift.SetWriteHeaderList(ctx, keys)
}
