package thrift

import "github.com/metaproxy/metaproxy/codec"

var _ codec.Rejecter = (*Codec)(nil)

// RejectReply answers the call whose first bytes start buf when Split refused
// it (a frame or unframed message over max_frame_bytes): the message head
// carries the method and sequence id a TApplicationException needs, and the
// reply is in the call's transport and protocol. A frame may declare any
// length up to 0x7fffffff, the largest a Thrift frame length can be; a first
// word of 0x80000000 or more is no frame length (Apache's libraries read it
// as negative) and is only answered as the start of an unframed strict
// binary or compact message. Oneway calls, THeader frames with transforms,
// and bytes too short or too broken to show a head get no reply.
func (c *Codec) RejectReply(dst, buf []byte, err *codec.Error) []byte {
	t, p := c.t, c.p
	if t == TransportAuto {
		// Detection itself refused the frame, for its size say: detect
		// again with the largest limit, only to read the head.
		s := *c.s
		s.maxFrame = maxLength
		var ok bool
		if t, p, ok, _ = detect(buf, &s); !ok {
			return dst
		}
	}
	if t != TransportUnframed && (len(buf) < 4 || be32(buf) > maxLength) {
		return dst
	}
	var flags uint16
	m := buf
	switch t {
	case TransportFramed:
		m = buf[4:]
	case TransportUnframed:
	case TransportHeader, TransportFramedHeader:
		hf := buf
		if t == TransportFramedHeader {
			hf = buf[4:]
		}
		h, herr := parseHeaderPrefix(hf)
		if herr != nil || h.proto != p {
			return dst
		}
		flags = h.flags
		m = hf[h.end:]
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
	return appendErrorReply(dst, t, p, flags, method, hd.seq, err)
}
