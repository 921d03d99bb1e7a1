// Package dubbo is the metaproxy codec for Dubbo 2, the classic "dubbo"
// protocol: a 16-byte header (magic 0xdabb, flags, status, 64-bit request
// id, body length) and a body in the serialization the flags name.
//
// Hessian 2 bodies (serialization id 2, what Java Dubbo and dubbo-go send
// by default) are read for routing: requests give the interface, method,
// version and every string attachment; responses give their status and
// attachments. Frames of other serializations are split, classified and
// forwarded, with empty metadata.
//
// Decoding does not allocate in steady state: a small Hessian 2 reader
// skips call arguments and results without building them, and metadata
// values point into the frame.
package dubbo

import (
	"encoding/binary"

	"github.com/metaproxy/metaproxy/codec"
)

// Name is the protocol name the codec registers under.
const Name = "dubbo"

// Codec implements codec.Codec for Dubbo 2. A Codec is used by one
// connection at a time; make one per connection with a Factory.
type Codec struct {
	maxFrame int
	r        reader
	matched  []bool // scratch for Encode: which edited headers replaced a value
}

var _ codec.Codec = (*Codec)(nil)

// Split reports the length of the frame at the start of buf. It fails as
// soon as the magic is wrong or the announced frame exceeds the maximum.
func (c *Codec) Split(buf []byte) (int, error) {
	if err := checkMagic(buf); err != nil {
		return 0, err
	}
	if len(buf) < HeaderLen {
		return 0, nil
	}
	body := uint64(binary.BigEndian.Uint32(buf[12:16]))
	if body > uint64(c.maxFrame-HeaderLen) {
		return 0, codec.Malformed(Name, "frame of %d bytes exceeds the maximum of %d", body+HeaderLen, c.maxFrame)
	}
	n := HeaderLen + int(body)
	if len(buf) < n {
		return 0, nil
	}
	return n, nil
}

// Decode fills msg from one frame. Metadata strings alias frame.
func (c *Codec) Decode(frame []byte, msg *codec.Message) error {
	h, err := parseHeader(frame)
	if err != nil {
		return err
	}
	msg.ID = h.id
	switch {
	case h.event():
		// Heartbeats and other events (Java's readonly event) are not
		// parsed: the proxy answers or drops them.
		msg.Kind = codec.KindHeartbeat
		msg.HeartbeatRequest = h.request() && h.twoWay()
		return nil
	case h.request():
		msg.Kind = codec.KindOneway
		if h.twoWay() {
			msg.Kind = codec.KindRequest
		}
		if h.serial() != serialHessian2 {
			return nil
		}
		return c.decodeRequest(frame[HeaderLen:], &msg.Meta)
	default:
		msg.Kind = codec.KindResponse
		return c.decodeResponse(h, frame[HeaderLen:], msg)
	}
}

// decodeRequest reads the routing metadata of a Hessian 2 request body.
// Body fields come first and attachments override them, as Java's
// DecodeableRpcInvocation does, except interface and method, which always
// come from the body.
func (c *Codec) decodeRequest(body []byte, m *codec.Metadata) error {
	c.r.reset(body)
	req, err := c.r.request()
	if err != nil {
		return err
	}
	m.Set(codec.KeyService, req.path)
	m.Set(codec.KeyMethod, req.method)
	m.Set(keyDubboVersion, req.dubbo)
	m.Set(keyPath, req.path)
	if req.version != "" {
		m.Set(codec.KeyVersion, req.version)
	}
	return c.r.setAttachments(req.att, m, true)
}

// decodeResponse sets the status and the attachments of a response.
func (c *Codec) decodeResponse(h header, body []byte, msg *codec.Message) error {
	if h.status != StatusOK {
		// The server did not process the call (timeout, bad request,
		// service not found, server error).
		msg.Status = codec.StatusServerFailure
	}
	if h.serial() != serialHessian2 {
		return nil
	}
	c.r.reset(body)
	if h.status != StatusOK {
		// The body is the error message: a string from Java, any value
		// from some other implementations.
		if len(body) == 0 {
			return nil
		}
		_, err := c.r.skip(0)
		return err
	}
	kind, att, err := c.r.response()
	if err != nil {
		return err
	}
	if kind == responseWithException || kind == responseWithExceptionWithAttachments {
		msg.Status = codec.StatusError // the provider's method threw
	}
	if att < 0 {
		return nil
	}
	return c.r.setAttachments(att, &msg.Meta, false)
}

// Encode appends msg.Frame with e applied: SetID rewrites the request id in
// place; Headers are merged into the attachment map of a Hessian 2 request
// or of a response whose body type carries attachments, without
// re-serialising anything else.
func (c *Codec) Encode(dst []byte, msg *codec.Message, e *codec.Edit) ([]byte, error) {
	f := msg.Frame
	if e.Empty() {
		return append(dst, f...), nil
	}
	h, err := parseHeader(f)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	if len(e.Headers) == 0 {
		dst = append(dst, f...)
	} else if dst, err = c.appendEdited(dst, h, f, e.Headers); err != nil {
		return dst[:start], err
	}
	if e.SetID {
		binary.BigEndian.PutUint64(dst[start+4:start+12], e.ID)
	}
	return dst, nil
}
