package declarative

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	"github.com/metaproxy/metaproxy/codec"
)

// slot is what one Decode read of a named protobuf field.
type slot struct {
	set bool
	v   uint64 // integers, as the field's type reads them
	b   []byte // string and bytes fields, aliasing the frame
}

// span is a region's place in a frame.
type span struct{ off, end int }

var validUTF8 = utf8.Valid

// str returns b as a string sharing b's bytes.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func (c *Codec) malformed(format string, args ...any) error {
	return codec.Malformed(c.p.name, format, args...)
}

// parse checks frame (one whole frame) and reads its regions: c.spans
// and c.slots describe it afterwards.
func (c *Codec) parse(frame []byte) error {
	if err := c.layout(frame); err != nil {
		return err
	}
	clear(c.slots)
	for i := range c.p.regions {
		r, sp := &c.p.regions[i], c.spans[i]
		b := frame[sp.off:sp.end]
		var err error
		switch r.format {
		case fmtProtobuf:
			err = c.walk(r.root, b)
		case fmtKV:
			err = kvCheck(b, &r.kv)
		case fmtJSON:
			err = jsonCheck(b)
		}
		if err != nil {
			return c.malformed("region %s: %v", r.name, err)
		}
	}
	return nil
}

// layout checks frame's header and length and finds its regions
// (c.spans), without reading them.
func (c *Codec) layout(frame []byte) error {
	p := c.p
	if len(frame) < p.hsize {
		return c.malformed("frame of %d bytes is shorter than the %d-byte header", len(frame), p.hsize)
	}
	if err := c.checkHeader(frame[:p.hsize]); err != nil {
		return err
	}
	end := len(frame)
	if p.lenField >= 0 {
		n, err := c.frameLen(frame)
		if err != nil {
			return err
		}
		if n != len(frame) {
			return c.malformed("frame length %d in a %d-byte frame", n, len(frame))
		}
	} else {
		if len(frame) < p.hsize+len(p.delim) || !bytes.HasSuffix(frame, p.delim) {
			return c.malformed("frame does not end with %q", p.delim)
		}
		end -= len(p.delim)
	}
	off := p.hsize
	for i := range p.regions {
		r := &p.regions[i]
		l := end - off
		if r.lenField >= 0 {
			n, ok := c.regionLen(frame, r)
			if !ok || n > l {
				return c.malformed("region %s does not fit the frame", r.name)
			}
			l = n
		}
		c.spans[i] = span{off, off + l}
		off += l
	}
	return nil
}

// walk reads the named fields of node from message b into c.slots.
func (c *Codec) walk(node *pbNode, b []byte) error {
	var f field
	for p := 0; p < len(b); p = f.End {
		if err := f.Next(b, p, &pbErrors); err != nil {
			return err
		}
		for k := range node.entries {
			e := &node.entries[k]
			if e.num != f.Num || e.wire != f.Typ {
				continue
			}
			if e.child != nil {
				if err := c.walk(e.child, f.B); err != nil {
					return err
				}
				continue
			}
			s, t := &c.slots[e.slot], c.p.slots[e.slot].typ
			switch {
			case t.isMap():
				if _, _, err := mapEntry(f.B, t == tMapString); err != nil {
					return err
				}
			case t == tString && !validUTF8(f.B):
				return errUTF8
			case t == tString || t == tBytes:
				s.b = f.B
			default:
				s.v = t.value(f.V)
			}
			s.set = true
		}
	}
	return nil
}

// value returns the integer field r of the parsed frame (0 when absent).
func (c *Codec) value(frame []byte, r ref) uint64 {
	if r.src == srcHeader {
		return c.p.hfields[r.i].get(frame)
	}
	return c.slots[r.i].v
}

func (c *Codec) holds(frame []byte, cd *cond) bool {
	switch cd.op {
	case opPresent:
		return c.slots[cd.f.i].set
	case opAbsent:
		return !c.slots[cd.f.i].set
	}
	v := c.value(frame, cd.f)
	switch cd.op {
	case opEquals:
		return v == cd.vals[0]
	case opIn:
		return contains(cd.vals, v)
	}
	return !contains(cd.vals, v)
}

// classify applies the kind rules to the parsed frame.
func (c *Codec) classify(frame []byte, msg *codec.Message) bool {
rules:
	for i := range c.p.kinds {
		k := &c.p.kinds[i]
		for j := range k.when {
			if !c.holds(frame, &k.when[j]) {
				continue rules
			}
		}
		msg.Kind, msg.HeartbeatRequest = k.kind, k.hbRequest
		return true
	}
	return false
}

// Decode fills msg from one frame. Metadata values alias frame.
func (c *Codec) Decode(frame []byte, msg *codec.Message) error {
	if err := c.parse(frame); err != nil {
		return err
	}
	if !c.classify(frame, msg) {
		return c.malformed("no kind rule matches the frame")
	}
	p := c.p
	if p.id.src != srcNone {
		msg.ID = c.value(frame, p.id)
	}
	if msg.Kind == codec.KindResponse {
		for i := range p.status {
			s := &p.status[i]
			v := c.value(frame, s.f)
			if contains(s.ok, v) {
				continue
			}
			msg.Status = s.otherwise
			if contains(s.err, v) {
				msg.Status = codec.StatusError
			}
			break
		}
	}
	for i := range p.meta {
		if m := &p.meta[i]; m.applies(msg.Kind) {
			if err := c.addMeta(frame, m, &msg.Meta); err != nil {
				return err
			}
		}
	}
	return nil
}
