package trpc

import (
	"encoding/binary"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/internal/pbwire"
)

// Fields of the metas a stream error is written with.
const (
	irspErrorMsg = 2 // TrpcStreamInitResponseMeta.error_msg
	closeMsg     = 3 // TrpcStreamCloseMeta.msg
)

// streamErrorReply appends the frame that ends stream req.StreamID with
// err: a refused INIT is answered with an INIT whose response_meta carries
// ret and error_msg (a trpc-go client's NewStream returns it as a "callee
// framework" error); any other stream frame gets a CLOSE of type RESET
// with ret and msg, which ends the stream for either peer (a trpc-go
// client's RecvMsg returns it). req needs only Kind and StreamID.
func streamErrorReply(dst []byte, req *codec.Message, err *codec.Error) []byte {
	t, text := codec.ErrInternal, "internal error"
	if err != nil {
		t, text = err.Type, err.Error()
	}
	if len(text) > maxErrorMsg {
		text = text[:maxErrorMsg]
	}
	ret := uint64(int64(CodeFor(t)))
	start := len(dst)
	h := head{frameType: frameStream, streamType: streamClose, streamID: uint32(req.StreamID), version: 1}
	if req.Kind == codec.KindStreamInit {
		h.streamType = streamInit
	}
	dst = appendHead(dst, h)
	if req.Kind == codec.KindStreamInit {
		inner := appendVarintField(nil, irspRet, ret)
		inner = pbwire.AppendBytesField(inner, irspErrorMsg, text)
		dst = pbwire.AppendBytesField(dst, initResponseMeta, inner)
	} else {
		dst = appendVarintField(dst, closeType, closeReset)
		dst = appendVarintField(dst, closeRet, ret)
		dst = pbwire.AppendBytesField(dst, closeMsg, text)
	}
	out := dst[start:]
	binary.BigEndian.PutUint32(out[4:8], uint32(len(out)))
	return dst
}
