// Package redis is the metaproxy codec for Redis' RESP2 and RESP3 wire
// protocol (codec name metaproxy.codec.redis, alias redis).
//
// A frame is one complete top-level RESP value — a request is an array of
// bulk strings, or an inline command line — and Split walks nested
// aggregates, RESP3's types and attributes within configurable bounds.
// Requests give their command as method (upper-cased, from a table of
// Redis' commands) and their first key as key; responses give their
// status (an error reply is StatusError).
//
// Redis has no request ids: answers come back in request order
// (codec.Capabilities.OrderedResponses). The helpers the engine needs for
// that mode — key positions, sub-command frames and reply merging for
// multi-key commands split across shards, hash slots, PING and SELECT —
// are exported here.
//
// Decoding does not allocate: the method aliases the command table's
// string and the key aliases the frame.
package redis

import (
	"fmt"

	"github.com/metaproxy/metaproxy/codec"
)

// KeyKey is the metadata key holding a request's first key.
const KeyKey = "key"

// Codec implements codec.Codec for Redis. A Codec is used by one
// connection at a time; make one per connection with a Factory.
//
// A request and a reply can look alike (an MGET reply is an array of bulk
// strings, as a command is), so the codec needs its side. A codec made by
// NewCodec tells them apart by shape — an array whose elements are all
// bulk strings, or a line not starting with a RESP type byte, is a
// request; anything else a response — until the first Encode teaches it
// its side: a codec that encodes requests sits on an upstream connection
// and from then on decodes every frame as a response, one that encodes
// responses sits on a downstream connection and reads frames as
// redis-server does (an array of bulk strings, or else an inline command).
// Factory.NewCodecFor makes a codec of a fixed side.
type Codec struct {
	o      Options
	side   codec.Side
	sc     scanner
	authed bool // the client passed AUTH (downstream_auth_password)
}

var (
	_ codec.Codec         = (*Codec)(nil)
	_ codec.Rejecter      = (*Codec)(nil)
	_ codec.HeaderCarrier = (*Codec)(nil)
)

// Side returns the side the codec reads: codec.SideBoth until it knows.
func (c *Codec) Side() codec.Side { return c.side }

// Split reports the length of the first complete top-level value (or
// inline command line) in buf, 0 while it is incomplete. It keeps how far
// it walked, so a large frame arriving read by read is walked once; the
// proxy calls it again with the same bytes plus more, as codec.Codec
// requires.
func (c *Codec) Split(buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	s := &c.sc
	if s.mode == modeIdle || s.pos > len(buf) {
		s.reset()
		s.mode = modeRESP
		if c.inline(buf[0]) {
			s.mode = modeInline
		}
	}
	var n int
	var err error
	if s.mode == modeInline {
		n, err = c.splitInline(buf)
	} else {
		n, err = c.scan(buf)
	}
	if n != 0 || err != nil {
		s.reset()
	}
	return n, err
}

// inline reports whether a frame starting with b is an inline command.
func (c *Codec) inline(b byte) bool {
	switch c.side {
	case codec.SideUpstream:
		return false
	case codec.SideDownstream:
		return b != '*'
	}
	return !isType(b)
}

// Decode fills msg from one frame: a request (KindRequest with method and
// key; KindOneway for the empty commands Redis ignores without answering,
// "*0", "*-1" and blank inline lines) or a response (KindResponse,
// StatusError for an error reply). ID stays 0. Metadata strings alias the
// frame or the command table.
func (c *Codec) Decode(frame []byte, msg *codec.Message) error {
	if len(frame) == 0 {
		return malformed("empty frame")
	}
	if c.side != codec.SideUpstream {
		var a argIter
		req, err := a.init(frame, c.side == codec.SideDownstream)
		if err != nil {
			return err
		}
		if req {
			return decodeRequest(&a, msg)
		}
	}
	msg.Kind = codec.KindResponse
	t, err := replyType(frame)
	if err != nil {
		return err
	}
	if t == '-' || t == '!' {
		// The server's own answer (a wrong type, a missing script...).
		msg.Status = codec.StatusError
	}
	return nil
}

// replyType returns the type byte of a reply, past any RESP3 attributes.
func replyType(frame []byte) (byte, error) {
	p := 0
	for p < len(frame) && frame[p] == '|' {
		v, end, err := line(frame, p+1, maxLenLine)
		n, ok := parseLen(v)
		if err != nil || end == 0 || !ok || n < 0 {
			return 0, malformed("invalid attribute")
		}
		p = end
		for i := int64(0); i < 2*n; i++ {
			if p, err = skip(frame, p); err != nil {
				return 0, err
			}
		}
	}
	if p >= len(frame) {
		return 0, malformed("attribute without a value")
	}
	return frame[p], nil
}

// IsPush reports whether the response m is a RESP3 push (">"): an
// out-of-band message (Pub/Sub, client-side caching invalidation) that
// answers no request, so the engine must not pair it with one.
func IsPush(m *codec.Message) bool {
	t, err := replyType(m.Frame)
	return err == nil && t == '>'
}

// Encode appends msg.Frame. Redis frames carry no headers and no ids:
// Edit.SetID is ignored (in an ordered protocol the id is the engine's own
// sequence number, never written on the wire) and Edit.Headers is an error
// wrapping codec.ErrUnsupported. Encode also teaches a NewCodec codec its
// side (see Codec).
func (c *Codec) Encode(dst []byte, msg *codec.Message, e *codec.Edit) ([]byte, error) {
	if c.side == codec.SideBoth {
		switch msg.Kind {
		case codec.KindRequest, codec.KindOneway:
			c.side = codec.SideUpstream
		case codec.KindResponse:
			c.side = codec.SideDownstream
		}
	}
	if e != nil && len(e.Headers) > 0 {
		return dst, fmt.Errorf("%s: a command cannot carry headers: %w", Name, codec.ErrUnsupported)
	}
	return append(dst, msg.Frame...), nil
}

// CarriesHeaders reports false: no Redis command carries header edits.
func (c *Codec) CarriesHeaders(*codec.Message) bool { return false }

// HeartbeatReply returns dst unchanged: Redis has no heartbeats in the
// codec's sense (PING is a command; see PingReply).
func (c *Codec) HeartbeatReply(dst []byte, _ *codec.Message) []byte { return dst }
