package trpc

import (
	"encoding/binary"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/internal/pbwire"
)

// tRPC framework return codes (trpc.TrpcRetCode) that ErrorReply sends in
// a response's ret. A trpc-go client returns them as an *errs.Error of
// type "callee framework" with this code (errs.Code(err)).
const (
	RetServerDecode    = 1   // TRPC_SERVER_DECODE_ERR
	RetServerNoService = 11  // TRPC_SERVER_NOSERVICE_ERR
	RetServerNoFunc    = 12  // TRPC_SERVER_NOFUNC_ERR
	RetServerTimeout   = 21  // TRPC_SERVER_TIMEOUT_ERR
	RetServerOverload  = 22  // TRPC_SERVER_OVERLOAD_ERR
	RetServerSystem    = 31  // TRPC_SERVER_SYSTEM_ERR
	RetServerAuth      = 41  // TRPC_SERVER_AUTH_ERR
	RetClientDecode    = 122 // TRPC_CLIENT_DECODE_ERR
	RetClientRouter    = 131 // TRPC_CLIENT_ROUTER_ERR
	RetClientNetwork   = 141 // TRPC_CLIENT_NETWORK_ERR
)

// CodeFor maps a local error to the ret code ErrorReply sends. It follows
// Aeraki (no route → TRPC_SERVER_NOSERVICE_ERR, anything else →
// TRPC_SERVER_SYSTEM_ERR) and adds the codes Aeraki lacks. Failures on the
// proxy's upstream side (no host to pick, a dead connection, an answer
// that does not decode) get the client-side codes a trpc-go client would
// report had it called the upstream itself.
func CodeFor(t codec.ErrorType) int32 {
	switch t {
	case codec.ErrRouteNotFound, codec.ErrClusterNotFound:
		return RetServerNoService
	case codec.ErrUnknownMethod:
		return RetServerNoFunc
	case codec.ErrTimeout:
		return RetServerTimeout
	case codec.ErrOverloaded:
		return RetServerOverload
	case codec.ErrUnauthorized:
		return RetServerAuth
	case codec.ErrBadRequest:
		return RetServerDecode
	case codec.ErrNoHealthyUpstream:
		return RetClientRouter
	case codec.ErrUnavailable:
		return RetClientNetwork
	case codec.ErrBadResponse:
		return RetClientDecode
	}
	return RetServerSystem
}

// maxErrorMsg bounds the error_msg of a local reply, so that its header
// always fits the head's 16-bit header length.
const maxErrorMsg = 32 << 10

// ErrorReply appends a ResponseProtocol answering the two-way request req:
// its request_id, ret = CodeFor(err.Type), error_msg = err's text, and the
// request's message_type, content_type and content_encoding, as a trpc-go
// server answers; the head echoes the request's stream id and version.
// Oneway requests get no reply: dst is returned unchanged. A stream frame
// gets the frame that ends its stream (streamErrorReply).
func (c *Codec) ErrorReply(dst []byte, req *codec.Message, err *codec.Error) []byte {
	switch req.Kind {
	case codec.KindStreamInit, codec.KindStreamData, codec.KindStreamClose:
		return streamErrorReply(dst, req, err)
	}
	if req.Kind != codec.KindRequest {
		return dst
	}
	h := head{streamID: uint32(req.ID), version: 1}
	var u unaryHeader
	if rh, e := parseHead(req.Frame); e == nil && rh.frameType == frameUnary {
		h.streamID, h.version = rh.streamID, rh.version
		if u.parse(req.Frame[HeadLen:HeadLen+rh.headerLen]) != nil {
			u = unaryHeader{}
		}
	}
	return appendReply(dst, h, uint32(req.ID), err, &u)
}

// appendReply appends an error response with head h (its lengths are
// filled in) for request id of a request whose header is u.
func appendReply(dst []byte, h head, id uint32, err *codec.Error, u *unaryHeader) []byte {
	t, text := codec.ErrInternal, "internal error"
	if err != nil {
		t, text = err.Type, err.Error()
	}
	if len(text) > maxErrorMsg {
		text = text[:maxErrorMsg]
	}
	start := len(dst)
	dst = appendHead(dst, h)
	if id != 0 {
		dst = appendVarintField(dst, fieldRequestID, uint64(id))
	}
	dst = appendVarintField(dst, rspRet, uint64(int64(CodeFor(t))))
	dst = pbwire.AppendBytesField(dst, rspErrorMsg, text)
	if u.request {
		for _, f := range [...]struct {
			num int32
			v   uint32
		}{{rspMessageType, u.messageType}, {rspContentType, u.contentType}, {rspContentEncoding, u.contentEncoding}} {
			if f.v != 0 {
				dst = appendVarintField(dst, f.num, uint64(f.v))
			}
		}
	}
	out := dst[start:]
	binary.BigEndian.PutUint32(out[4:8], uint32(len(out)))
	binary.BigEndian.PutUint16(out[8:10], uint16(len(out)-HeadLen))
	return dst
}

// HeartbeatReply returns dst unchanged: tRPC has no heartbeats, and the
// codec never decodes KindHeartbeat.
func (c *Codec) HeartbeatReply(dst []byte, req *codec.Message) []byte { return dst }

var _ codec.Rejecter = (*Codec)(nil)

// RejectReply answers the request whose first bytes start buf when Split
// refused its frame (over max_frame_bytes). The request id and the call
// type are in the protobuf header, which follows the head: when buf holds
// the whole header and it is a two-way request's, the client gets the
// error reply; otherwise (the header not read yet, a oneway call, a stream
// frame) nothing.
func (c *Codec) RejectReply(dst, buf []byte, err *codec.Error) []byte {
	if len(buf) < HeadLen {
		return dst
	}
	h, e := readHead(buf)
	if e != nil || h.frameType != frameUnary || h.headerLen == 0 || len(buf) < HeadLen+h.headerLen {
		return dst
	}
	var u unaryHeader
	if u.parse(buf[HeadLen:HeadLen+h.headerLen]) != nil || !u.request || u.callType == onewayCall {
		return dst
	}
	return appendReply(dst, head{streamID: h.streamID, version: h.version}, u.requestID, err, &u)
}
