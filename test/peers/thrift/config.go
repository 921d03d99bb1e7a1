package thriftpeer

import (
	"fmt"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
)

// Config selects how a peer speaks Thrift.
type Config struct {
	// Transport is "framed", "buffered" (unframed) or "header" (THeader).
	Transport string
	// Protocol is "binary", "compact", "header" or "header-compact". With
	// the header transport, "binary" and "compact" choose a client's inner
	// protocol and "header" means THeader's default, binary; a header
	// server answers in whatever its client speaks. With the framed
	// transport, "header" is a THeaderProtocol (binary inside) and
	// "header-compact" one with the compact protocol inside, over a
	// TFramedTransport: what Apache's clients write for --transport framed
	// --protocol header, every THeader frame behind a second length. Such
	// a server only understands clients of the same kind.
	Protocol string
	// NonStrict makes binary-protocol clients write the old non-strict
	// message head (name first, no version word).
	NonStrict bool
	// Service, if set, is the multiplexed service name: clients send
	// "Service:method", servers accept it (and plain names too).
	Service string
	// Timeout bounds connecting and each read and write; 0 means 10s.
	Timeout time.Duration
}

// TConfiguration returns the library configuration of c.
func (c Config) TConfiguration() *thrift.TConfiguration {
	t := c.Timeout
	if t == 0 {
		t = 10 * time.Second
	}
	conf := &thrift.TConfiguration{ConnectTimeout: t, SocketTimeout: t}
	if c.NonStrict {
		f := false
		conf.TBinaryStrictWrite = &f
	}
	if (c.Transport == "header" && c.Protocol == "compact") || c.Protocol == "header-compact" {
		id := thrift.THeaderProtocolCompact
		conf.THeaderProtocolID = &id
	}
	return conf
}

// factories returns the transport and protocol factories of c.
func (c Config) factories() (thrift.TTransportFactory, thrift.TProtocolFactory, error) {
	conf := c.TConfiguration()
	var tf thrift.TTransportFactory
	switch c.Transport {
	case "framed":
		tf = thrift.NewTFramedTransportFactoryConf(thrift.NewTTransportFactory(), conf)
		if c.Protocol == "header" || c.Protocol == "header-compact" {
			// THeaderProtocolFactory wraps the framed transport in a
			// THeaderTransport.
			return tf, thrift.NewTHeaderProtocolFactoryConf(conf), nil
		}
	case "buffered":
		tf = thrift.NewTBufferedTransportFactory(8192)
	case "header":
		tf = thrift.NewTHeaderTransportFactoryConf(nil, conf)
		switch c.Protocol {
		case "binary", "compact", "header", "header-compact":
			return tf, thrift.NewTHeaderProtocolFactoryConf(conf), nil
		}
		return nil, nil, fmt.Errorf("thriftpeer: protocol %q with the header transport (want binary, compact, header or header-compact)", c.Protocol)
	default:
		return nil, nil, fmt.Errorf("thriftpeer: unknown transport %q (want framed, buffered or header)", c.Transport)
	}
	switch c.Protocol {
	case "binary":
		return tf, thrift.NewTBinaryProtocolFactoryConf(conf), nil
	case "compact":
		return tf, thrift.NewTCompactProtocolFactoryConf(conf), nil
	}
	if c.Transport == "framed" {
		return nil, nil, fmt.Errorf("thriftpeer: protocol %q with the framed transport (want binary, compact, header or header-compact)", c.Protocol)
	}
	return nil, nil, fmt.Errorf("thriftpeer: protocol %q with the %s transport (want binary or compact)", c.Protocol, c.Transport)
}
