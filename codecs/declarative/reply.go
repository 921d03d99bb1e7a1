package declarative

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/internal/pbwire"
)

// maxMessage bounds the error text of a reply.
const maxMessage = 32 << 10

// ErrorReply appends the description's error reply to the two-way
// request req: its id, the status for err's type, err's text. Other
// requests (oneway, heartbeats) get none: dst is returned unchanged, as
// it is when the reply would not fit the description's length fields.
func (c *Codec) ErrorReply(dst []byte, req *codec.Message, err *codec.Error) []byte {
	if req.Kind != codec.KindRequest || c.p.errReply == nil {
		return dst
	}
	valid := c.parse(req.Frame) == nil
	return c.build(dst, c.p.errReply, req.Frame, req.ID, err, valid)
}

// HeartbeatReply appends the description's heartbeat reply to the
// heartbeat request req.
func (c *Codec) HeartbeatReply(dst []byte, req *codec.Message) []byte {
	if req.Kind != codec.KindHeartbeat || !req.HeartbeatRequest || c.p.hbReply == nil {
		return dst
	}
	valid := c.parse(req.Frame) == nil
	return c.build(dst, c.p.hbReply, req.Frame, req.ID, nil, valid)
}

// RejectReply answers the request whose first bytes start buf when Split
// refused its frame: when the header, and the regions the kind rules and
// the request id need, are there and make a two-way request.
func (c *Codec) RejectReply(dst, buf []byte, err *codec.Error) []byte {
	p := c.p
	if p.errReply == nil || p.rejectUpTo < -1 || len(buf) < p.hsize || c.checkHeader(buf[:p.hsize]) != nil {
		return dst
	}
	clear(c.slots)
	off := p.hsize
	for i := 0; i <= p.rejectUpTo; i++ {
		r := &p.regions[i]
		l, ok := c.regionLen(buf, r)
		if !ok || l > len(buf)-off {
			return dst
		}
		if r.format == fmtProtobuf && c.walk(r.root, buf[off:off+l]) != nil {
			return dst
		}
		off += l
	}
	var m codec.Message
	if !c.classify(buf, &m) || m.Kind != codec.KindRequest {
		return dst
	}
	if p.id.src != srcNone {
		m.ID = c.value(buf, p.id)
	}
	return c.build(dst, p.errReply, buf, m.ID, err, true)
}

// build appends reply t to the request whose frame (or first bytes) is
// req, with id; valid says whether c.slots hold req's fields.
func (c *Codec) build(dst []byte, t *template, req []byte, id uint64, err *codec.Error, valid bool) []byte {
	p := c.p
	et, text := codec.ErrInternal, "internal error"
	if err != nil {
		et, text = err.Type, err.Error()
	}
	if et >= codec.NumErrorTypes {
		et = codec.ErrInternal
	}
	if len(text) > maxMessage {
		n := maxMessage
		for n > 0 && !utf8.RuneStart(text[n]) {
			n--
		}
		text = text[:n]
	}
	start := len(dst)
	dst = append(dst, t.header...)
	hdr := func() []byte { return dst[start : start+p.hsize] }
	for _, s := range t.sets {
		p.hfields[s.f].put(hdr(), s.v)
	}
	for _, cp := range t.copies {
		if cp.from.src == srcSlot && !valid || len(req) < p.hsize {
			continue
		}
		to := &p.hfields[cp.to]
		if to.raw {
			from := &p.hfields[cp.from.i]
			copy(hdr()[to.off:to.off+to.size], req[from.off:from.off+from.size])
			continue
		}
		to.put(hdr(), c.value(req, cp.from)&to.max())
	}
	if t.status.src == srcHeader {
		p.hfields[t.status.i].put(hdr(), t.codes[et])
	}
	if p.id.src == srcHeader {
		p.hfields[p.id.i].put(hdr(), id)
	}
	for i := range p.regions {
		r := &p.regions[i]
		at := len(dst)
		switch r.format {
		case fmtProtobuf:
			for _, w := range t.pb[i] {
				var v uint64
				switch w.what {
				case pbMessage:
					dst = pbwire.AppendBytesField(dst, w.num, text)
					continue
				case pbConst:
					v = w.v
				case pbID:
					v = id
				case pbStatus:
					v = t.codes[et]
				case pbCopy:
					if valid {
						v = c.value(req, w.from)
					}
				}
				if v != 0 {
					dst = appendScalar(dst, w.num, w.typ, v)
				}
			}
		case fmtKV:
			var pairs []codec.KV
			if t.msg.src == srcRegion && t.msg.i == i {
				pairs = []codec.KV{{Key: t.msgKey, Value: text}}
			}
			var e error
			if dst, e = appendKV(dst, nil, &r.kv, pairs); e != nil {
				return dst[:start]
			}
		case fmtJSON:
			if t.msg.src == srcRegion && t.msg.i == i {
				js, _ := json.Marshal(map[string]string{t.msgKey: text})
				dst = append(dst, js...)
			}
		}
		if r.lenField >= 0 {
			f := &p.hfields[r.lenField]
			v := uint64(len(dst) - at - r.adjust)
			if len(dst)-at < r.adjust || v > f.max() {
				return dst[:start]
			}
			f.put(hdr(), v)
		}
	}
	if p.lenField < 0 {
		if bytes.Contains(dst[start+p.hsize:], p.delim) {
			return dst[:start]
		}
		return append(dst, p.delim...)
	}
	f := &p.hfields[p.lenField]
	n := len(dst) - start
	v := n - p.lenBase - p.lenAdjust
	if v < 0 || uint64(v) > f.max() || n > p.maxFrame {
		return dst[:start]
	}
	f.put(hdr(), uint64(v))
	return dst
}
