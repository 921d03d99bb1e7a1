package dubbo

import (
	"encoding/binary"

	"github.com/metaproxy/metaproxy/codec"
)

// StatusFor maps a local error to the Dubbo response status ErrorReply
// sends. It follows Aeraki (no route → SERVICE_NOT_FOUND, bad response →
// BAD_RESPONSE, anything else → SERVER_ERROR) and adds the statuses Aeraki
// lacks: unknown cluster, bad request, timeout and overload.
func StatusFor(t codec.ErrorType) byte {
	switch t {
	case codec.ErrRouteNotFound, codec.ErrClusterNotFound:
		return StatusServiceNotFound
	case codec.ErrBadResponse:
		return StatusBadResponse
	case codec.ErrBadRequest:
		return StatusBadRequest
	case codec.ErrTimeout:
		return StatusServerTimeout
	case codec.ErrOverloaded:
		return StatusServerThreadpoolExhausted
	}
	return StatusServerError
}

// ErrorReply appends a response to the two-way request req with a non-OK
// status (see StatusFor) and err's message as a Hessian 2 string body,
// which Java Dubbo and dubbo-go clients raise as an error. The reply is
// always Hessian 2, whatever the request's serialization. Oneway requests
// and heartbeats get no reply: dst is returned unchanged.
func (c *Codec) ErrorReply(dst []byte, req *codec.Message, err *codec.Error) []byte {
	if req.Kind != codec.KindRequest {
		return dst
	}
	t, msg := codec.ErrInternal, "internal error"
	if err != nil {
		t, msg = err.Type, err.Error()
	}
	start := len(dst)
	dst = appendHeader(dst, serialHessian2, StatusFor(t), req.ID)
	dst = appendString(dst, msg)
	binary.BigEndian.PutUint32(dst[start+12:start+16], uint32(len(dst)-start-HeaderLen))
	return dst
}

// HeartbeatReply appends the answer to a heartbeat request: an event
// response with status OK and the body Java and dubbo-go send, a Hessian 2
// null followed by another null (da bb 22 14 <id> 00000002 4e 4e).
func (c *Codec) HeartbeatReply(dst []byte, req *codec.Message) []byte {
	if req.Kind != codec.KindHeartbeat || !req.HeartbeatRequest {
		return dst
	}
	dst = appendHeader(dst, flagEvent|serialHessian2, StatusOK, req.ID)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], 2)
	return append(dst, 'N', 'N')
}

// ProbeRequest implements codec.Prober: a two-way heartbeat request (an
// event with a Hessian 2 null body), which Dubbo servers answer with a
// heartbeat response.
func (c *Codec) ProbeRequest(dst []byte, id uint64) []byte {
	dst = appendHeader(dst, flagRequest|flagTwoWay|flagEvent|serialHessian2, 0, id)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], 1)
	return append(dst, 'N')
}

// appendHeader appends a header with a zero body length.
func appendHeader(dst []byte, flags, status byte, id uint64) []byte {
	dst = append(dst, magicHigh, magicLow, flags, status)
	dst = binary.BigEndian.AppendUint64(dst, id)
	return append(dst, 0, 0, 0, 0)
}
