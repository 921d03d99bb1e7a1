package thrift

import (
	"encoding/binary"
	"fmt"

	"github.com/metaproxy/metaproxy/codec"
)

// Encode implements codec.Codec. It works from msg.Variant and msg.Frame
// alone, so any Thrift codec can encode a message another one decoded. The
// message body is copied, never re-serialised. A new sequence id must fit in
// 32 bits.
func (c *Codec) Encode(dst []byte, msg *codec.Message, e *codec.Edit) ([]byte, error) {
	f := msg.Frame
	if e.Empty() {
		return append(dst, f...), nil
	}
	t, p, ok := SplitVariant(msg.Variant)
	if !ok {
		return dst, fmt.Errorf("thrift: encode: message variant %#x is not a Thrift variant", msg.Variant)
	}
	if len(e.Headers) > 0 && !t.isHeader() {
		return dst, fmt.Errorf("thrift: the %v transport carries no headers, only THeader does: %w", t, codec.ErrUnsupported)
	}
	if e.SetID && e.ID > 0xffffffff {
		return dst, fmt.Errorf("thrift: sequence id %d does not fit in 32 bits", e.ID)
	}
	start := len(dst)
	switch t {
	case TransportUnframed:
		return appendMessage(dst, f, p, e)
	case TransportFramed:
		if len(f) < 4 {
			return dst, malformed("bad frame length")
		}
		dst = append(dst, 0, 0, 0, 0)
		out, err := appendMessage(dst, f[4:], p, e)
		if err != nil {
			return dst[:start], err
		}
		binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
		return out, nil
	case TransportFramedHeader:
		hf, err := headerFrameOf(f, t)
		if err != nil {
			return dst, err
		}
		dst = append(dst, 0, 0, 0, 0)
		out, err := appendHeaderFrame(dst, hf, e)
		if err != nil {
			return dst[:start], err
		}
		binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
		return out, nil
	}
	return appendHeaderFrame(dst, f, e)
}

// appendHeaderFrame appends the THeader frame f changed as e says: the
// sequence id in the header and in the message, info headers.
func appendHeaderFrame(dst, f []byte, e *codec.Edit) ([]byte, error) {
	start := len(dst)
	h, err := parseHeaderFrame(f)
	if err != nil {
		return dst, err
	}
	dst = append(dst, f[:headerFixedSize]...)
	if e.SetID {
		binary.BigEndian.PutUint32(dst[start+8:], uint32(e.ID))
	}
	if len(e.Headers) == 0 {
		dst = append(dst, f[headerFixedSize:h.end]...)
	} else {
		if dst, err = appendHeaderSection(dst, f, &h, e.Headers); err != nil {
			return dst[:start], err
		}
		words := (len(dst) - start - headerFixedSize) / 4
		binary.BigEndian.PutUint16(dst[start+12:], uint16(words))
	}
	if dst, err = appendMessage(dst, f[h.end:], h.proto, e); err != nil {
		return dst[:start], err
	}
	if len(dst)-start-4 > headerMaxFrame {
		return dst[:start], malformed("THeader frame over %d bytes", headerMaxFrame)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst, nil
}

// appendMessage appends the message m, with its sequence id replaced if e
// says so.
func appendMessage(dst, m []byte, p Protocol, e *codec.Edit) ([]byte, error) {
	if !e.SetID {
		return append(dst, m...), nil
	}
	h, err := parseHead(m, p, len(m))
	if err == errShort {
		err = malformed("truncated message")
	}
	if err != nil {
		return dst, err
	}
	if p == ProtocolBinary {
		at := len(dst) + h.seqOff
		dst = append(dst, m...)
		binary.BigEndian.PutUint32(dst[at:], uint32(e.ID))
		return dst, nil
	}
	dst = append(dst, m[:h.seqOff]...)
	dst = appendUvarint(dst, e.ID)
	return append(dst, m[h.seqOff+h.seqLen:]...), nil
}

// TApplicationException types (Apache Thrift's TApplicationException.Type).
const (
	appUnknown       = 0
	appUnknownMethod = 1
	appInternalError = 6
	appProtocolError = 7
)

// appExceptionType maps a local error to the TApplicationException type a
// Thrift client would get from a server in the same situation: no route or
// no method is an unknown method, a request or response that cannot be
// decoded is a protocol error, a refusal by policy or load is unknown, and
// everything the proxy itself failed at is an internal error.
func appExceptionType(t codec.ErrorType) int32 {
	switch t {
	case codec.ErrRouteNotFound, codec.ErrUnknownMethod:
		return appUnknownMethod
	case codec.ErrBadRequest, codec.ErrBadResponse:
		return appProtocolError
	case codec.ErrUnauthorized, codec.ErrOverloaded:
		return appUnknown
	}
	return appInternalError
}

// ErrorReply implements codec.Codec: it answers the call req with a
// TApplicationException in req's transport and protocol, carrying req's
// method (without a multiplexing service prefix, which is what clients
// expect back) and sequence id. Oneway calls get no answer.
func (c *Codec) ErrorReply(dst []byte, req *codec.Message, err *codec.Error) []byte {
	t, p, ok := SplitVariant(req.Variant)
	if req.Kind != codec.KindRequest || !ok {
		return dst
	}
	method := methodOf(req.Frame, t, p)
	if method == "" {
		method = req.Meta.Value(codec.KeyMethod)
	}
	var flags uint16
	if t.isHeader() {
		if hf, err := headerFrameOf(req.Frame, t); err == nil {
			if h, err := parseHeaderFrame(hf); err == nil {
				flags = h.flags
			}
		}
	}
	return appendErrorReply(dst, t, p, flags, method, uint32(req.ID), err)
}

// appendErrorReply appends the TApplicationException for err answering the
// call method with sequence id seq, in transport t (with THeader flags) and
// protocol p.
func appendErrorReply(dst []byte, t Transport, p Protocol, flags uint16, method string, seq uint32, err *codec.Error) []byte {
	typ, text := int32(appInternalError), "metaproxy: internal error"
	if err != nil {
		typ, text = appExceptionType(err.Type), "metaproxy: "+err.Error()
	}
	start := len(dst)
	inner := start // where the (THeader) frame starts
	switch t {
	case TransportUnframed:
		return appendException(dst, p, method, seq, typ, text)
	case TransportFramed:
		dst = append(dst, 0, 0, 0, 0)
	case TransportFramedHeader:
		dst = append(dst, 0, 0, 0, 0)
		inner = len(dst)
		fallthrough
	case TransportHeader:
		dst = binary.BigEndian.AppendUint32(dst, 0)
		dst = binary.BigEndian.AppendUint16(dst, headerMagic)
		dst = binary.BigEndian.AppendUint16(dst, flags)
		dst = binary.BigEndian.AppendUint32(dst, seq)
		dst = binary.BigEndian.AppendUint16(dst, 1)     // one word:
		dst = append(dst, byte(protocolID(p)), 0, 0, 0) // protocol, no transforms, padding
	}
	dst = appendException(dst, p, method, seq, typ, text)
	binary.BigEndian.PutUint32(dst[inner:], uint32(len(dst)-inner-4))
	if inner != start {
		binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	}
	return dst
}

// appendException appends an EXCEPTION message carrying a
// TApplicationException {1: string message, 2: i32 type}.
func appendException(dst []byte, p Protocol, method string, seq uint32, typ int32, text string) []byte {
	if p == ProtocolCompact {
		dst = append(dst, compactProtocolID, msgException<<compactTypeShift|compactVersion)
		dst = appendUvarint(dst, uint64(seq))
		dst = appendUvarint(dst, uint64(len(method)))
		dst = append(dst, method...)
		dst = append(dst, 0x18) // field 1 (delta 1), binary
		dst = appendUvarint(dst, uint64(len(text)))
		dst = append(dst, text...)
		dst = append(dst, 0x15) // field 2 (delta 1), i32
		dst = appendUvarint(dst, zigzag32(typ))
		return append(dst, 0) // stop
	}
	dst = binary.BigEndian.AppendUint32(dst, binaryVersion1|msgException)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(method)))
	dst = append(dst, method...)
	dst = binary.BigEndian.AppendUint32(dst, seq)
	dst = append(dst, 11, 0, 1) // string field 1
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(text)))
	dst = append(dst, text...)
	dst = append(dst, 8, 0, 2) // i32 field 2
	dst = binary.BigEndian.AppendUint32(dst, uint32(typ))
	return append(dst, 0) // stop
}

// methodOf returns the method name of the message in frame f, without a
// multiplexing service prefix, or "" if f cannot be parsed.
func methodOf(f []byte, t Transport, p Protocol) string {
	switch t {
	case TransportFramed:
		if len(f) < 4 {
			return ""
		}
		f = f[4:]
	case TransportHeader, TransportFramedHeader:
		hf, err := headerFrameOf(f, t)
		if err != nil {
			return ""
		}
		h, err := parseHeaderFrame(hf)
		if err != nil {
			return ""
		}
		f = hf[h.end:]
	}
	h, err := parseHead(f, p, len(f))
	if err != nil {
		return ""
	}
	_, method, _ := splitName(unsafeString(f[h.nameOff : h.nameOff+h.nameLen]))
	return method
}

// CarriesHeaders implements codec.HeaderCarrier: only the THeader
// transports carry headers.
func (*Codec) CarriesHeaders(m *codec.Message) bool {
	t, _, ok := SplitVariant(m.Variant)
	return ok && t.isHeader()
}
