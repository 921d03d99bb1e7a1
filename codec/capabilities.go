package codec

// Optional capabilities. A Codec (or its Factory) declares what its
// protocol needs from the engine beyond independent, id-correlated requests
// and responses; the engine refuses, at configuration time, a codec that
// declares a mode it does not run, rather than proxying it wrongly.

// Side says which connections a codec can parse.
type Side uint8

// Codec sides.
const (
	// SideBoth: requests from clients and responses from servers (every
	// request/response protocol).
	SideBoth Side = iota
	// SideDownstream: only the client side; upstream connections use
	// another codec.
	SideDownstream
	// SideUpstream: only the server side.
	SideUpstream
)

// Capabilities describe a protocol's needs. The zero value is a
// request/response protocol with ids, both sides, client speaks first.
type Capabilities struct {
	// Side is which connections the codec parses.
	Side Side
	// OrderedResponses: responses carry no id and must reach each client in
	// the order of its requests (Redis); upstream connections answer in
	// FIFO order.
	OrderedResponses bool
	// Streams: the protocol carries streams (KindStreamInit, Data, Close)
	// that are routed once and stay bound to one upstream connection (tRPC).
	// Every stream frame decodes with its StreamID (also its ID), SetID
	// rewrites it, and ErrorReply of a stream message — which may hold only
	// Kind and StreamID — appends the frame that ends the stream: a failed
	// INIT for an INIT, else a reset valid in either direction.
	Streams bool
	// ServerFirst: the server speaks first on a new connection (MySQL's
	// handshake); a downstream connection is bound to one upstream
	// connection for its life.
	ServerFirst bool
}

// Capable is implemented by a Factory whose protocol needs more than the
// zero Capabilities.
type Capable interface {
	Capabilities() Capabilities
}

// CapabilitiesOf returns f's capabilities.
func CapabilitiesOf(f Factory) Capabilities {
	if c, ok := f.(Capable); ok {
		return c.Capabilities()
	}
	return Capabilities{}
}

// Prober is implemented by codecs that can build a request to probe an
// upstream's health at the protocol level (a Dubbo heartbeat). The answer
// comes back as a KindHeartbeat (or KindResponse) message with id.
type Prober interface {
	// ProbeRequest appends a probe request with id to dst.
	ProbeRequest(dst []byte, id uint64) []byte
}

// HeaderCarrier is implemented by codecs whose messages can carry header
// edits (Edit.Headers) only on some wire variants (Thrift: THeader only;
// Dubbo: Hessian 2 bodies only). Filters that add headers of their own
// accord (a tracer's traceparent) ask it first, since an edit the message
// cannot carry fails its encoding. Codecs that do not implement it carry
// headers on every request. CarriesHeaders must not use the codec's state:
// the engine asks one codec from any goroutine.
type HeaderCarrier interface {
	CarriesHeaders(m *Message) bool
}

// Sided is implemented by a Factory whose codecs must know which side of
// the proxy they parse (a Redis reply and a Redis command can look alike).
// The engine makes downstream codecs with SideDownstream and upstream ones
// with SideUpstream.
type Sided interface {
	NewSidedCodec(side Side) Codec
}

// NewCodecFor returns a codec of f for side: f's sided codec when f is
// Sided, else f.NewCodec().
func NewCodecFor(f Factory, side Side) Codec {
	if s, ok := f.(Sided); ok {
		return s.NewSidedCodec(side)
	}
	return f.NewCodec()
}

// LocalAnswerer is implemented by codecs whose protocol has requests the
// proxy answers itself rather than forwarding (Redis' PING, ECHO, SELECT,
// AUTH, QUIT, HELLO: connection state that must not reach a shared
// upstream connection). The engine asks it for every decoded request
// before the filters run.
type LocalAnswerer interface {
	// LocalAnswer appends the answer to req and reports whether req is
	// answered locally (not forwarded), and whether the connection closes
	// once the answer is written.
	LocalAnswer(dst []byte, req *Message) (out []byte, answered, closeAfter bool)
}

// Fanout is implemented by codecs whose requests may name keys that live
// on different hosts of a hash-balanced cluster (Redis' MGET, MSET, DEL,
// EXISTS, UNLINK, TOUCH): when the route hashes on FanoutKey, the engine
// splits such a request into one part per host and merges the parts'
// answers into the client's answer.
type Fanout interface {
	// FanoutKey names the metadata key the codec sets to a request's
	// (first) shard key.
	FanoutKey() string
	// FanoutKeys appends the shard key of each key group of req to dst,
	// as FanoutKey's value would be for a request of that group alone; ok
	// is false when req does not split (it is routed whole).
	FanoutKeys(dst []string, req *Message) (keys []string, ok bool)
	// FanoutPart appends the request made of req's key groups groups, in
	// that order.
	FanoutPart(dst []byte, req *Message, groups []int) ([]byte, error)
	// FanoutMerge appends req's answer made of answers[i], the answer to
	// the part of the groups parts[i]. An error means a part's answer was
	// not what the protocol answers.
	FanoutMerge(dst []byte, req *Message, parts [][]int, answers [][]byte) ([]byte, error)
}

// ConnectionRefuser is implemented by codecs of server-first protocols:
// the error their server sends in place of its greeting (MySQL's ERR
// packet with sequence id 0), which the engine sends when it cannot bind
// a client connection to an upstream.
type ConnectionRefuser interface {
	RefuseConnection(dst []byte, err *Error) []byte
}

// Greeter is implemented by codecs of server-first protocols whose clients
// the proxy can greet itself, so that a connection is routed on what the
// client says in its handshake (MySQL's user and database) before any
// server is chosen; the codec then carries the client's real
// authentication over to the chosen server (MySQL: an auth switch to the
// server's own challenge). The engine calls the methods in this order, on
// the connection's downstream codec.
type Greeter interface {
	// Greet appends the proxy's greeting.
	Greet(dst []byte) []byte
	// Handshake takes the client's handshake (its first frame, decoded
	// already): it is not forwarded.
	Handshake(frame []byte) error
	// ServerGreeting takes the chosen server's first frame and appends
	// what the client must get (the switch to the server's challenge).
	ServerGreeting(dst, frame []byte) ([]byte, error)
	// ClientAuth takes the client's answer to it and appends what the
	// server must get (the handshake, with that answer).
	ClientAuth(dst, frame []byte) ([]byte, error)
	// ServerAuthReply takes a server frame of the authentication and
	// appends what the client must get; done means authentication is over
	// and bytes are relayed as they are from then on.
	ServerAuthReply(dst, frame []byte) (out []byte, done bool, err error)
}
