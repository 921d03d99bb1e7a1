// Package trpc is the metaproxy codec for the tRPC protocol
// (trpc.group/trpc-go, trpc-cpp, ...): a 16-byte frame head (magic
// 0x0930, frame types, total length, header length, stream id, version),
// a protobuf header (trpc-protocol's RequestProtocol or ResponseProtocol),
// the body and an attachment.
//
// Unary frames are read for routing: requests give caller, callee, func
// and every trans_info entry, responses their status and trans_info.
// Stream frames (INIT, DATA, FEEDBACK, CLOSE) are decoded and classified,
// and the codec declares codec.Capabilities.Streams: the engine routes a
// stream on its INIT's metadata and keeps it on one upstream connection.
//
// Decoding does not allocate: a small protobuf reader (pb.go) reads the
// header in place, and metadata values point into the frame.
package trpc

import (
	"bytes"
	"encoding/binary"
	"strings"
	"unsafe"

	"github.com/metaproxy/metaproxy/codec"
)

// Name is the protocol name the codec registers under.
const Name = "trpc"

// Metadata keys of requests, as Aeraki's tRPC codec names them. Requests
// also carry codec.KeyService (the callee) and codec.KeyMethod (the last
// path element of func: "SayHello" for "/trpc.app.server.Greeter/SayHello").
const (
	KeyCaller = "caller"
	KeyCallee = "callee"
	KeyFunc   = "func"
)

// Codec implements codec.Codec for tRPC. A Codec is used by one connection
// at a time; make one per connection with a Factory.
type Codec struct {
	maxFrame int
	hdr      unaryHeader
	matched  []bool // scratch for Encode: which edited headers replaced an entry
}

var _ codec.Codec = (*Codec)(nil)

// Split reports the length of the frame at the start of buf. It fails as
// soon as the magic or the data frame type is wrong, or the head announces
// a frame over the maximum or lengths that do not fit.
func (c *Codec) Split(buf []byte) (int, error) {
	if err := checkMagic(buf); err != nil {
		return 0, err
	}
	if len(buf) < HeadLen {
		return 0, nil
	}
	h, err := readHead(buf)
	if err != nil {
		return 0, err
	}
	if h.total > c.maxFrame {
		return 0, codec.Malformed(Name, "frame of %d bytes exceeds the maximum of %d", h.total, c.maxFrame)
	}
	if len(buf) < h.total {
		return 0, nil
	}
	return h.total, nil
}

// Decode fills msg from one frame. Metadata strings alias frame.
func (c *Codec) Decode(frame []byte, msg *codec.Message) error {
	h, err := parseHead(frame)
	if err != nil {
		return err
	}
	if h.frameType == frameStream {
		return c.decodeStream(h, frame, msg)
	}
	// A version 1 head carries the request id; the header's replaces it
	// below, and it is what a local reply uses if the header is bad.
	msg.ID = uint64(h.streamID)
	if h.headerLen == 0 {
		return codec.Malformed(Name, "unary frame without a protobuf header")
	}
	hb := frame[HeadLen : HeadLen+h.headerLen]
	u := &c.hdr
	if err := u.parseAs(hb, asEither, &msg.Meta); err != nil {
		return err
	}
	if uint64(u.attachment) > uint64(h.total-HeadLen-h.headerLen) {
		return codec.Malformed(Name, "attachment of %d bytes does not fit a %d-byte frame", u.attachment, h.total)
	}
	msg.ID = uint64(u.requestID)
	if !u.request {
		msg.Kind = codec.KindResponse
		switch {
		case u.ret != 0:
			msg.Status = codec.StatusServerFailure // the framework failed
		case u.funcRet != 0:
			msg.Status = codec.StatusError // the callee's own error
		}
		return nil
	}
	msg.Kind = codec.KindRequest
	if u.callType == onewayCall {
		msg.Kind = codec.KindOneway
	}
	setCallMeta(&msg.Meta, u.caller, u.callee, u.fn)
	return nil
}

// str returns b as a string sharing b's bytes.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// setCallMeta sets the metadata of a call (a request, a stream's INIT).
func setCallMeta(m *codec.Metadata, caller, callee, fn []byte) {
	m.Set(KeyCaller, str(caller))
	m.Set(KeyCallee, str(callee))
	m.Set(KeyFunc, str(fn))
	m.Set(codec.KeyService, str(callee))
	m.Set(codec.KeyMethod, str(fn[bytes.LastIndexByte(fn, '/')+1:]))
}

// reserved reports whether a trans_info key would shadow a key the
// header sets: the header's caller, callee and func always win.
func reserved(k string) bool {
	switch len(k) {
	case 4:
		return strings.EqualFold(k, KeyFunc)
	case 6:
		return strings.EqualFold(k, KeyCaller) || strings.EqualFold(k, KeyCallee) || strings.EqualFold(k, codec.KeyMethod)
	case 9:
		return strings.EqualFold(k, codec.KeyService)
	}
	return false
}

// addTransInfo adds the trans_info entries (field num) of message b to m,
// in wire order, as addEntry does.
func addTransInfo(m *codec.Metadata, b []byte, num int32, call bool) {
	for p := 0; ; {
		k, v, next, ok := nextEntry(b, p, num)
		if !ok {
			return
		}
		p = next
		addEntry(m, k, v, call)
	}
}

// addEntry adds trans_info entry k → v to m; a later entry of the same key
// wins. The entries of a call (call set) never set the keys its header
// sets.
func addEntry(m *codec.Metadata, k, v []byte, call bool) {
	if key := str(k); !call || !reserved(key) {
		m.Set(key, str(v))
	}
}

// putStreamID writes id into the head of frame f.
func putStreamID(f []byte, id uint32) { binary.BigEndian.PutUint32(f[10:14], id) }
