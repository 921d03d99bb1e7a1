package thrift

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

// Config is the codec configuration, the JSON object given as the codec's
// config. The zero Config (and no config at all) detects the transport and
// protocol of each connection, as Aeraki's aeraki.meta_protocol.codec.thrift
// does. Unknown fields are rejected.
type Config struct {
	// Transport pins the transport: "framed", "unframed" (Apache Thrift's
	// buffered transport), "header" (THeader), "framed_header" (THeader
	// inside a framed transport: a THeaderProtocol over a TFramedTransport,
	// every THeader frame behind a second length) or "auto", the default,
	// which detects all four.
	Transport string `json:"transport,omitempty"`
	// Protocol pins the protocol: "binary" (strict or not), "compact" or
	// "auto", the default. With the THeader transports it pins the inner
	// protocol named in the header.
	Protocol string `json:"protocol,omitempty"`
	// MaxFrameBytes bounds the size of a frame (not counting its 4-byte
	// length; with framed_header, of the outer frame) or of an unframed
	// message. The default is Apache Thrift's
	// 16384000; the largest is 2^30-1, the THeader limit.
	MaxFrameBytes int `json:"max_frame_bytes,omitempty"`
	// OnewayMethods names methods whose calls expect no reply although
	// they arrive as CALL messages: the Apache Thrift Go library (0.17 at
	// least) writes oneway calls as CALL, not ONEWAY, and only the IDL
	// knows better. A name is a method ("ping", any service) or a
	// multiplexed "Service:method". Their calls decode as codec.KindOneway,
	// so the proxy does not wait for a reply that never comes.
	OnewayMethods []string `json:"oneway_methods,omitempty"`
	// ConcurrentClients says clients may send a call while earlier ones
	// are unanswered (Apache C++'s concurrent clients, fbthrift). Unset,
	// clients are serial, as Apache's are (codec.Serial): a call still
	// unanswered when the next one arrives was a oneway call sent as CALL,
	// and the proxy sends no local reply (a timeout) for it.
	ConcurrentClients bool `json:"concurrent_clients,omitempty"`
}

// settings is a validated Config.
type settings struct {
	transport Transport
	protocol  Protocol
	maxFrame  int
	oneway    map[string]bool // OnewayMethods
	serial    bool            // !ConcurrentClients
}

// minFrame is the smallest max_frame_bytes accepted: room for a message
// with a short name.
const minFrame = 64

func (c Config) settings() (settings, error) {
	s := settings{maxFrame: defaultMaxFrame, serial: !c.ConcurrentClients}
	t, ok := parseName(c.Transport, transportNames[:])
	if !ok {
		return s, fmt.Errorf("thrift: unknown transport %q (want framed, unframed, header, framed_header or auto)", c.Transport)
	}
	p, ok := parseName(c.Protocol, protocolNames[:])
	if !ok {
		return s, fmt.Errorf("thrift: unknown protocol %q (want binary, compact or auto)", c.Protocol)
	}
	s.transport, s.protocol = Transport(t), Protocol(p)
	if c.MaxFrameBytes != 0 {
		if c.MaxFrameBytes < minFrame || c.MaxFrameBytes > headerMaxFrame {
			return s, fmt.Errorf("thrift: max_frame_bytes %d out of range [%d, %d]", c.MaxFrameBytes, minFrame, headerMaxFrame)
		}
		s.maxFrame = c.MaxFrameBytes
	}
	for _, m := range c.OnewayMethods {
		if m == "" || strings.HasPrefix(m, ":") || strings.HasSuffix(m, ":") {
			return s, fmt.Errorf("thrift: oneway_methods: bad method name %q", m)
		}
		if s.oneway == nil {
			s.oneway = map[string]bool{}
		}
		s.oneway[m] = true
	}
	return s, nil
}

// parseName returns the index of name in names; "" is names[0], "auto".
func parseName(name string, names []string) (int, bool) {
	if name == "" {
		return 0, true
	}
	for i, n := range names {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// New validates a codec config (JSON, or nil for the defaults) and returns
// the factory of the codecs it configures. It is the New of the protocol
// registered as "thrift".
func New(raw json.RawMessage) (codec.Factory, error) {
	var c Config
	if len(bytes.TrimSpace(raw)) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("thrift: config: %w", err)
		}
		if dec.More() {
			return nil, fmt.Errorf("thrift: config: trailing data after the object")
		}
	}
	f, err := NewFactory(c)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// NewFactory returns the factory of codecs configured by c.
func NewFactory(c Config) (*Factory, error) {
	s, err := c.settings()
	if err != nil {
		return nil, err
	}
	return &Factory{s: s}, nil
}

// Factory makes Thrift codecs. It is safe for concurrent use.
type Factory struct{ s settings }

// NewCodec returns a codec for one connection.
func (f *Factory) NewCodec() codec.Codec { return newCodec(&f.s) }

// Transport returns the configured transport, TransportAuto unless pinned.
// Request mutations (headers) can only be carried by TransportHeader and
// TransportFramedHeader; a configuration that pins TransportFramed or
// TransportUnframed and adds headers can be rejected up front.
func (f *Factory) Transport() Transport { return f.s.transport }

func init() {
	codec.MustRegister(codec.Protocol{
		Name:    protocolName,
		Aliases: []string{"aeraki.meta_protocol.codec.thrift"},
		New:     New,
	})
}

// isOneway reports whether calls of method, named full on the wire (with
// any multiplexing service prefix), are configured as oneway.
func (s *settings) isOneway(method, full string) bool {
	return s.oneway != nil && (s.oneway[method] || s.oneway[full])
}
