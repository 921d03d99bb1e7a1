package dubbo

import (
	"encoding/binary"

	"github.com/metaproxy/metaproxy/codec"
)

var _ codec.Rejecter = (*Codec)(nil)

// RejectReply answers the two-way request whose header starts buf, when Split
// refused the frame (over max_frame_bytes): the header alone carries the
// request id. Anything else gets no reply.
func (c *Codec) RejectReply(dst, buf []byte, err *codec.Error) []byte {
	if len(buf) < HeaderLen || checkMagic(buf) != nil {
		return dst
	}
	h := header{flags: buf[2], id: binary.BigEndian.Uint64(buf[4:12])}
	if !h.request() || !h.twoWay() || h.event() {
		return dst
	}
	return c.ErrorReply(dst, &codec.Message{Kind: codec.KindRequest, ID: h.id}, err)
}
