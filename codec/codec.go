// Package codec defines the contract between metaproxy and a wire protocol.
//
// A protocol is added to metaproxy by implementing Codec and registering a
// Protocol under its name (see Register). The connection manager never looks
// inside a frame: it asks the codec where a frame ends (Split), what it means
// (Decode), how to forward it with small edits (Encode), and how to answer
// locally in the protocol's own words (ErrorReply, HeartbeatReply).
//
// The life of a downstream request:
//
//	bytes ──Split──▶ one frame ──Decode──▶ Message{Kind, ID, Meta}
//	      ──filters, router──▶ Encode(frame + Edit{ID, Headers}) ──▶ upstream
//
// Codecs are per connection and per direction: the proxy calls NewCodec for
// every downstream connection and every upstream connection, and a Codec is
// only ever used by one goroutine at a time, so it may keep state between
// calls (a partially walked unframed Thrift struct, a detected transport).
package codec

// Codec parses and writes the frames of one connection. Implementations need
// not be safe for concurrent use. Codecs must never panic on any input: every
// malformed byte sequence is reported as an error.
type Codec interface {
	// Split reports the length of the first complete frame at the start of
	// buf. It returns (0, nil) when buf holds only part of a frame; the proxy
	// calls it again with the same bytes plus more. It returns an error when
	// the bytes cannot be a frame of this protocol; the connection is then
	// closed. Split must not retain buf.
	Split(buf []byte) (n int, err error)

	// Decode fills msg from frame, which holds exactly one frame as delimited
	// by Split. msg has been Reset and msg.Frame == frame. The codec may keep
	// references into frame (for example in metadata values): the proxy owns
	// frame for as long as msg lives and never modifies it in that time.
	Decode(frame []byte, msg *Message) error

	// Encode appends the wire form of msg, changed as e says, to dst and
	// returns the extended slice. A nil or empty Edit appends msg.Frame
	// unchanged. The body is never re-serialised: codecs splice the header
	// change into the original bytes. A codec that cannot carry an edit (a
	// header on a transport without headers) returns an error wrapping
	// ErrUnsupported.
	Encode(dst []byte, msg *Message, e *Edit) ([]byte, error)

	// ErrorReply appends a protocol-native error response to req carrying
	// err, which the client library surfaces as an error (a Dubbo response
	// with a non-OK status, a Thrift TApplicationException). The reply
	// carries req.ID. It returns dst unchanged if the protocol cannot express
	// an error for this request (for example a oneway call).
	ErrorReply(dst []byte, req *Message, err *Error) []byte

	// HeartbeatReply appends the answer to the heartbeat req. Codecs whose
	// protocol has no heartbeats never decode KindHeartbeat and may return
	// dst unchanged.
	HeartbeatReply(dst []byte, req *Message) []byte
}

// Kind classifies a decoded message.
type Kind uint8

// Message kinds. They follow Aeraki's MessageType.
const (
	KindRequest   Kind = iota // a call that expects a response
	KindResponse              // an answer to a request, correlated by ID
	KindOneway                // a call without a response
	KindHeartbeat             // a keep-alive, request or response; answered by the proxy
	KindStreamInit
	KindStreamData
	KindStreamClose
	KindError // an error message that is not a response to a known request
)

var kindNames = [...]string{"request", "response", "oneway", "heartbeat", "stream_init", "stream_data", "stream_close", "error"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Status is the outcome carried by a response.
type Status uint8

// Response outcomes. The proxy's own local errors are not a Status: they
// never come from an upstream (see filter.Outcome).
const (
	// StatusOK: the call succeeded.
	StatusOK Status = iota
	// StatusError: an application error, the callee's own answer (a Dubbo
	// response carrying an exception, a Thrift reply with a declared
	// exception). The server worked; retrying elsewhere would not help.
	StatusError
	// StatusServerFailure: the server failed to process the call (a Dubbo
	// response with a non-OK status, a Thrift TApplicationException). What
	// retry_on server-failure retries and outlier detection counts.
	StatusServerFailure
)

var statusNames = [...]string{"ok", "error", "server_failure"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Message is one decoded frame. The proxy reuses Messages: codecs must not
// keep a *Message after Decode returns.
type Message struct {
	// Kind says what the frame is.
	Kind Kind
	// ID is the protocol's request id (Dubbo request id, Thrift sequence id)
	// that correlates a response with its request.
	ID uint64
	// StreamID identifies a stream for streaming protocols.
	StreamID uint64
	// Status is the outcome of a response.
	Status Status
	// HeartbeatRequest is set on KindHeartbeat messages that expect an answer.
	HeartbeatRequest bool
	// Variant distinguishes wire variants that one codec auto-detects, such
	// as Thrift transport × protocol. Requests of different variants never
	// share an upstream connection. Zero for single-variant protocols.
	Variant uint16
	// Meta holds the string metadata used for routing: service, method,
	// version, group, attachments, headers.
	Meta Metadata
	// Frame is the complete wire frame this message was decoded from.
	Frame []byte
}

// Reset clears m for reuse, keeping allocated capacity.
func (m *Message) Reset() {
	meta := m.Meta.kv[:0]
	*m = Message{}
	m.Meta.kv = meta
}

// Edit is the change Encode applies to a message on its way through the
// proxy.
type Edit struct {
	// SetID asks Encode to write ID as the message's request id.
	SetID bool
	ID    uint64
	// Headers are added to the message, replacing an existing header of the
	// same key (Dubbo attachments, THeader info headers, tRPC trans_info).
	Headers []KV
}

// Empty reports whether e changes nothing.
func (e *Edit) Empty() bool { return e == nil || (!e.SetID && len(e.Headers) == 0) }

// Rejecter is an optional capability of a Codec: answering a frame that
// Split refuses (too large, say) from its first bytes, so that the client
// gets a native error before its connection is closed. Codecs whose
// protocol carries no request id at a fixed place need not implement it.
type Rejecter interface {
	// RejectReply appends a native error reply to the request whose first
	// bytes start buf, or returns dst unchanged when those bytes do not say
	// enough (no complete header yet, not a two-way request).
	RejectReply(dst, buf []byte, err *Error) []byte
}

// Serial is an optional capability of a Codec: its protocol's clients send
// a call only once the previous two-way call on the connection is answered
// (Apache Thrift's clients). On such a connection a call still unanswered
// when the client sends the next one is not awaited any more: it was a
// oneway call that looked like a two-way one (a Thrift CALL of a method
// missing from oneway_methods). The proxy never sends a local reply (a
// timeout, say) for such a call: the client would read it as the answer to
// a later call, whose id it may even carry.
type Serial interface {
	// SerialClients reports whether the connection's client is serial.
	SerialClients() bool
}
