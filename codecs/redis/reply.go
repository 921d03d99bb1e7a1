package redis

import (
	"strconv"
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

// ErrorReply appends a Redis error reply to the request req: one line,
// "-ERR <why>: <message>" or, where Redis has a prefix of its own for the
// case, "-NOPERM ..." (denied by policy). It needs no id: Redis answers
// in order. Requests Redis answers with nothing (KindOneway) get dst
// unchanged.
//
//	route not found      -ERR no route for command GET: <message>
//	cluster not found    -ERR no cluster for command GET: <message>
//	no healthy upstream  -ERR no healthy upstream: <message>
//	unavailable          -ERR upstream unavailable: <message>
//	overloaded           -ERR overloaded: <message>
//	timeout              -ERR timeout: <message>
//	bad response         -ERR bad response from upstream: <message>
//	internal             -ERR internal error: <message>
//	unauthorized         -NOPERM <message>
//	unknown method       -ERR unknown command 'FOO': <message>
//	bad request          -ERR Protocol error: <message>
func (c *Codec) ErrorReply(dst []byte, req *codec.Message, err *codec.Error) []byte {
	if req.Kind != codec.KindRequest {
		return dst
	}
	return appendLocalError(dst, err, req.Meta.Value(codec.KeyMethod))
}

// RejectReply appends "-ERR Protocol error: <reason>" (for a frame Split
// refused: Redis' own words for it) or the reply ErrorReply gives for
// err's type. Redis needs no id, so every refused frame gets its answer
// before the connection closes.
func (c *Codec) RejectReply(dst, _ []byte, err *codec.Error) []byte {
	return appendLocalError(dst, err, "")
}

// appendLocalError writes the error line for err about command method.
func appendLocalError(dst []byte, err *codec.Error, method string) []byte {
	var head, subject string
	msg := err.Message
	switch err.Type {
	case codec.ErrRouteNotFound:
		head, subject = "ERR no route for command", method
	case codec.ErrClusterNotFound:
		head, subject = "ERR no cluster for command", method
	case codec.ErrNoHealthyUpstream:
		head = "ERR no healthy upstream"
	case codec.ErrUnavailable:
		head = "ERR upstream unavailable"
	case codec.ErrOverloaded:
		head = "ERR overloaded"
	case codec.ErrTimeout:
		head = "ERR timeout"
	case codec.ErrBadResponse:
		head = "ERR bad response from upstream"
	case codec.ErrUnauthorized:
		head = "NOPERM"
	case codec.ErrUnknownMethod:
		head = "ERR unknown command"
		if method != "" {
			subject = "'" + method + "'"
		}
	case codec.ErrBadRequest:
		head = "ERR Protocol error"
		msg = strings.TrimPrefix(msg, Name+": malformed frame: ")
	default:
		head = "ERR internal error"
	}
	start := len(dst)
	dst = append(append(dst, '-'), head...)
	if subject != "" {
		dst = append(append(dst, ' '), subject...)
	}
	if msg != "" {
		if err.Type != codec.ErrUnauthorized {
			dst = append(dst, ':')
		}
		dst = append(append(dst, ' '), msg...)
	}
	return finishLine(dst, start+1)
}

// AppendError appends the error reply "-<msg>\r\n" to dst, msg's CR and LF
// turned into spaces. msg starts with its prefix: "ERR ...",
// "CROSSSLOT ...".
func AppendError(dst []byte, msg string) []byte {
	start := len(dst)
	dst = append(append(dst, '-'), msg...)
	return finishLine(dst, start+1)
}

// finishLine keeps dst[from:] on one line and ends it with CRLF.
func finishLine(dst []byte, from int) []byte {
	for i := from; i < len(dst); i++ {
		if dst[i] == '\r' || dst[i] == '\n' {
			dst[i] = ' '
		}
	}
	return append(dst, '\r', '\n')
}

// PingReply appends what redis-server answers to the PING request req:
// "+PONG", or PING's one argument as a bulk string, or Redis' arity error
// for more. Any other request gets dst unchanged. (A connection in RESP2
// Pub/Sub mode answers PING with an array instead; the engine does not
// answer there.)
func PingReply(dst []byte, req *codec.Message) []byte {
	a, ok := request(req)
	if !ok || !equalFold(a.bytes(0), "PING") {
		return dst
	}
	switch a.argc {
	case 1:
		return append(dst, "+PONG\r\n"...)
	case 2:
		return appendBulk(dst, a.bytes(1))
	}
	return AppendError(dst, "ERR wrong number of arguments for 'ping' command")
}

// SelectDB returns the database index of the SELECT request m; ok is false
// for any other request and for an index that is not a number in
// [0, 2^31). The codec keeps no state per connection: the engine tracks
// the database a client selected.
func SelectDB(m *codec.Message) (db int, ok bool) {
	a, ok := request(m)
	if !ok || a.argc != 2 || !equalFold(a.bytes(0), "SELECT") {
		return 0, false
	}
	n, err := strconv.ParseInt(string(a.bytes(1)), 10, 32)
	if err != nil || n < 0 {
		return 0, false
	}
	return int(n), true
}

// appendBulk appends b as a RESP bulk string.
func appendBulk(dst, b []byte) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}
