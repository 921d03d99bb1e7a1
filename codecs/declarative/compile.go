package declarative

import (
	"fmt"
	"math/bits"
)

// DefaultMaxFrame is the largest frame when the description sets no
// max_frame_bytes: 10 MiB.
const DefaultMaxFrame = 10 << 20

// maxMaxFrame bounds max_frame_bytes.
const maxMaxFrame = 1 << 30

// compiler holds the state of one description's compilation.
type compiler struct {
	d      *Description
	p      *protocol
	names  map[string]ref
	little bool
}

// errf returns a load error naming the element at path.
func errf(path, format string, args ...any) error {
	return fmt.Errorf("declarative: %s: %s", path, fmt.Sprintf(format, args...))
}

// compile validates d and builds its tables.
func compile(d *Description) (*protocol, error) {
	c := &compiler{d: d, p: &protocol{name: d.Name, lenField: -1}, names: map[string]ref{}}
	if c.p.name == "" {
		c.p.name = "declarative"
	}
	var err error
	if c.little, err = endian("endian", d.Endian, false); err != nil {
		return nil, err
	}
	for _, step := range []func() error{c.header, c.framing, c.regions, c.kinds, c.requestID, c.status, c.metadata, c.edits, c.replies} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := selfCheck(c.p); err != nil {
		return nil, err
	}
	return c.p, nil
}

func endian(path, s string, def bool) (bool, error) {
	switch s {
	case "":
		return def, nil
	case "big":
		return false, nil
	case "little":
		return true, nil
	}
	return false, errf(path, "endian %q is neither big nor little", s)
}

// declare adds name to the namespace shared by header fields, regions and
// protobuf fields.
func (c *compiler) declare(path, name string, r ref) error {
	if name == "" {
		return errf(path, "needs a name")
	}
	if _, dup := c.names[name]; dup {
		return errf(path, "name %q is already used", name)
	}
	c.names[name] = r
	return nil
}

func (c *compiler) header() error {
	h := &c.d.Header
	if h.Size < 0 || h.Size > 65535 {
		return errf("header.size", "%d is not between 0 and 65535", h.Size)
	}
	c.p.hsize = h.Size
	for i, f := range h.Fields {
		path := fmt.Sprintf("header.fields[%d] (%q)", i, f.Name)
		if err := c.declare(path, f.Name, ref{srcHeader, i}); err != nil {
			return err
		}
		hf := hfield{name: f.Name, off: f.Offset, size: f.Size}
		switch f.Type {
		case "", "uint":
			if f.Size < 1 || f.Size > 8 {
				return errf(path, "size %d: an integer field has 1 to 8 bytes", f.Size)
			}
		case "bytes":
			hf.raw = true
			if f.Size < 1 {
				return errf(path, "size %d: a bytes field has at least 1 byte", f.Size)
			}
			if f.Mask != nil || len(f.Allowed) > 0 {
				return errf(path, "a bytes field takes no mask or allowed values")
			}
		default:
			return errf(path, "type %q is neither uint nor bytes", f.Type)
		}
		if f.Offset < 0 || f.Offset+f.Size > h.Size {
			return errf(path, "offset %d + size %d exceeds header size %d", f.Offset, f.Size, h.Size)
		}
		var err error
		if hf.little, err = endian(path, f.Endian, c.little); err != nil {
			return err
		}
		if f.Mask != nil {
			m := uint64(*f.Mask)
			if m == 0 || m&^maxOf(f.Size) != 0 {
				return errf(path, "mask %#x does not fit %d bytes", m, f.Size)
			}
			hf.mask, hf.shift = m, uint8(bits.TrailingZeros64(m))
		}
		for _, a := range f.Allowed {
			if uint64(a) > hf.max() {
				return errf(path, "allowed value %d does not fit the field", uint64(a))
			}
			hf.allowed = append(hf.allowed, uint64(a))
		}
		if len(hf.allowed) > 0 {
			c.p.allowed = append(c.p.allowed, i)
		}
		if f.Magic != nil {
			if hf.mask != 0 {
				return errf(path, "a bit field cannot be a magic")
			}
			if hf.magic, err = magicBytes(f.Magic, &hf); err != nil {
				return errf(path, "%v", err)
			}
			c.p.magics = append(c.p.magics, i)
		}
		c.p.hfields = append(c.p.hfields, hf)
	}
	return nil
}

func magicBytes(m *Magic, f *hfield) ([]byte, error) {
	if !m.IsNum {
		if len(m.Bytes) != f.size {
			return nil, fmt.Errorf("magic %q has %d bytes, the field %d", m.Bytes, len(m.Bytes), f.size)
		}
		return m.Bytes, nil
	}
	if f.size > 8 || m.Num > maxOf(f.size) {
		return nil, fmt.Errorf("magic %#x does not fit %d bytes", m.Num, f.size)
	}
	b := make([]byte, f.size)
	putUint(b, m.Num, f.little)
	return b, nil
}

// intHeader resolves name to an integer header field without a mask.
func (c *compiler) intHeader(path, name string, mask bool) (int, error) {
	r, ok := c.names[name]
	if !ok || r.src != srcHeader {
		return 0, errf(path, "%q is not a header field", name)
	}
	f := &c.p.hfields[r.i]
	if f.raw || (!mask && f.mask != 0) {
		return 0, errf(path, "header field %q is not a whole integer", name)
	}
	return r.i, nil
}

func (c *compiler) framing() error {
	d, p := c.d, c.p
	p.maxFrame = d.MaxFrameBytes
	if p.maxFrame == 0 {
		p.maxFrame = DefaultMaxFrame
	}
	if p.maxFrame < max(p.hsize, 1) || p.maxFrame > maxMaxFrame {
		return errf("max_frame_bytes", "%d is not between the header size %d and %d", p.maxFrame, p.hsize, maxMaxFrame)
	}
	switch {
	case d.Length != nil && d.Delimiter != "":
		return errf("length", "set length or delimiter, not both")
	case d.Delimiter != "":
		p.delim = []byte(d.Delimiter)
		return nil
	case d.Length == nil:
		return errf("length", "frames need a length field or a delimiter")
	}
	l := d.Length
	i, err := c.intHeader("length.field", l.Field, false)
	if err != nil {
		return err
	}
	p.lenField, p.lenAdjust = i, l.Adjust
	switch l.Counts {
	case "", "frame":
	case "after_header", "rest":
		p.lenBase = p.hsize
	case "after_field":
		p.lenBase = p.hfields[i].off + p.hfields[i].size
	default:
		return errf("length.counts", "%q is none of frame, after_header (rest), after_field", l.Counts)
	}
	return nil
}
