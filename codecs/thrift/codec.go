// Package thrift is the metaproxy codec of Apache Thrift, registered as
// "thrift" and as Aeraki's "aeraki.meta_protocol.codec.thrift".
//
// It speaks the framed, unframed ("buffered") and THeader transports, and
// THeader inside a framed transport, with the binary (strict and old
// non-strict) and compact protocols. By default each connection's transport
// and protocol are detected from its first bytes and then kept; Config pins
// them. Every message reports its transport and protocol in
// codec.Message.Variant (see Variant).
//
// Decode fills codec.Message as follows:
//
//	Kind    CALL → request (oneway for Config.OnewayMethods), ONEWAY →
//	        oneway, REPLY and EXCEPTION → response
//	Status  error for EXCEPTION (a TApplicationException) and for a REPLY
//	        whose result struct holds a field other than 0 (a declared
//	        exception); ok otherwise
//	ID      the sequence id, as an unsigned 32-bit number
//	Meta    "method"; "interface", the service of a multiplexed name
//	        "Service:method"; "message_type" (call, reply, exception,
//	        oneway); every THeader info header
//
// Metadata values alias the frame. Decoding allocates nothing once the
// message's metadata storage has grown to size.
//
// Encode rewrites the sequence id (in the message and in the THeader) and,
// on THeader (framed or not), writes header edits as info headers; the
// framed and unframed transports have no headers, so header edits fail with
// an error wrapping codec.ErrUnsupported. ErrorReply answers a call with a
// TApplicationException in the call's transport and protocol. Thrift has no
// heartbeats.
package thrift

import (
	"strings"
	"unsafe"

	"github.com/metaproxy/metaproxy/codec"
)

// KeyMessageType is the metadata key of the Thrift message type.
const KeyMessageType = "message_type"

// Codec is the Thrift codec of one connection. It is not safe for
// concurrent use.
type Codec struct {
	s *settings
	t Transport // TransportAuto until detected from the first frame
	p Protocol
	w walker // the unframed message being split
}

var (
	_ codec.Codec  = (*Codec)(nil)
	_ codec.Serial = (*Codec)(nil)
)

// SerialClients implements codec.Serial: Apache Thrift's clients wait for
// each answer, unless Config.ConcurrentClients says otherwise.
func (c *Codec) SerialClients() bool { return c.s.serial }

func newCodec(s *settings) *Codec { return &Codec{s: s} }

// detect fixes the connection's transport and protocol from the first bytes
// of b. ok is false while more bytes are needed.
func (c *Codec) detect(b []byte) (ok bool, err error) {
	t, p, ok, err := detect(b, c.s)
	if ok {
		c.t, c.p = t, p
		c.w = walker{proto: p, limit: c.s.maxFrame}
	}
	return ok, err
}

// Split implements codec.Codec.
func (c *Codec) Split(buf []byte) (int, error) {
	if c.t == TransportAuto {
		if ok, err := c.detect(buf); !ok {
			return 0, err
		}
	}
	switch c.t {
	case TransportUnframed:
		return c.w.walk(buf)
	case TransportHeader:
		return splitFrame(buf, headerFixedSize-4, min(c.s.maxFrame, headerMaxFrame))
	case TransportFramedHeader:
		// max_frame_bytes bounds the outer frame, as a TFramedTransport's
		// limit does; the THeader frame inside is checked by Decode.
		return splitFrame(buf, headerFixedSize, c.s.maxFrame)
	}
	return splitFrame(buf, 1, c.s.maxFrame)
}

// splitFrame delimits a frame of a 4-byte length and then that many bytes,
// between least and most.
func splitFrame(b []byte, least, most int) (int, error) {
	if len(b) < 4 {
		return 0, nil
	}
	n := be32(b)
	if n < uint32(least) || n > uint32(most) {
		return 0, malformed("frame length %d out of range [%d, %d]", n, least, most)
	}
	if len(b)-4 < int(n) {
		return 0, nil
	}
	return 4 + int(n), nil
}

// Decode implements codec.Codec.
func (c *Codec) Decode(frame []byte, msg *codec.Message) error {
	if c.t == TransportAuto {
		ok, err := c.detect(frame)
		if err != nil {
			return err
		}
		if !ok {
			return malformed("incomplete frame")
		}
	}
	m := frame
	switch c.t {
	case TransportFramed:
		if len(frame) < 4 || int(be32(frame)) != len(frame)-4 {
			return malformed("bad frame length")
		}
		m = frame[4:]
	case TransportHeader, TransportFramedHeader:
		hf, err := headerFrameOf(frame, c.t)
		if err != nil {
			return err
		}
		h, err := parseHeaderFrame(hf)
		if err != nil {
			return err
		}
		if h.proto != c.p {
			return malformed("THeader protocol changed from %v to %v", c.p, h.proto)
		}
		it := infoIter{sec: hf[:h.end], off: h.info}
		for {
			k, v, ok, err := it.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			msg.Meta.Set(unsafeString(k), unsafeString(v))
		}
		m = hf[h.end:]
	}
	hd, err := parseHead(m, c.p, len(m))
	if err == errShort {
		return malformed("truncated message")
	}
	if err != nil {
		return err
	}
	full := unsafeString(m[hd.nameOff : hd.nameOff+hd.nameLen])
	service, method, multiplexed := splitName(full)
	if multiplexed {
		msg.Meta.Set(codec.KeyService, service)
	}
	msg.Meta.Set(codec.KeyMethod, method)
	msg.ID = uint64(hd.seq)
	msg.Variant = Variant(c.t, c.p)
	switch hd.typ {
	case msgCall:
		msg.Kind = codec.KindRequest
		if c.s.isOneway(method, full) {
			msg.Kind = codec.KindOneway
		}
		msg.Meta.Set(KeyMessageType, "call")
	case msgOneway:
		msg.Kind = codec.KindOneway
		msg.Meta.Set(KeyMessageType, "oneway")
	case msgReply:
		msg.Kind = codec.KindResponse
		msg.Meta.Set(KeyMessageType, "reply")
		failed, err := replyFailed(m, hd.body, c.p)
		if err != nil {
			return err
		}
		if failed {
			msg.Status = codec.StatusError
		}
	case msgException:
		msg.Kind = codec.KindResponse
		msg.Status = codec.StatusServerFailure // a TApplicationException
		msg.Meta.Set(KeyMessageType, "exception")
	}
	return nil
}

// splitName splits a message name into the service and method of a
// multiplexed name "Service:method"; a plain name is all method.
func splitName(full string) (service, method string, multiplexed bool) {
	if service, method, multiplexed = strings.Cut(full, ":"); !multiplexed {
		return "", full, false
	}
	return service, method, true
}

// HeartbeatReply implements codec.Codec. Thrift has no heartbeats.
func (c *Codec) HeartbeatReply(dst []byte, _ *codec.Message) []byte { return dst }

// unsafeString returns b as a string without copying. The caller must not
// change b while the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
