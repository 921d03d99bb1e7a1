package thrift

import "github.com/metaproxy/metaproxy/codec"

var _ codec.Rejecter = (*Codec)(nil)

// RejectReply answers the call whose first bytes start buf when Split refused
// it (a frame or unframed message over max_frame_bytes): the message head
// carries the method and sequence id a TApplicationException needs. THeader
// frames, oneway calls, and bytes too short or too broken to show a head get
// no reply.
func (c *Codec) RejectReply(dst, buf []byte, err *codec.Error) []byte {
	t, p := c.t, c.p
	if t == TransportAuto {
		// Detection itself refused the frame for its size: detect again
		// without the limit, only to read the head.
		s := *c.s
		s.maxFrame = headerMaxFrame
		var ok bool
		if t, p, ok, _ = detect(buf, &s); !ok {
			return dst
		}
	}
	m := buf
	switch t {
	case TransportFramed:
		if len(buf) < 4 {
			return dst
		}
		m = buf[4:]
	case TransportUnframed:
	default:
		return dst
	}
	hd, perr := parseHead(m, p, c.s.maxFrame)
	if perr != nil || hd.typ != msgCall {
		return dst
	}
	// method aliases buf, which dst does not overlap.
	full := unsafeString(m[hd.nameOff : hd.nameOff+hd.nameLen])
	_, method, _ := splitName(full)
	if c.s.isOneway(method, full) {
		return dst
	}
	return appendErrorReply(dst, t, p, 0, method, hd.seq, err)
}
