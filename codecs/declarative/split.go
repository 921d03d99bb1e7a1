package declarative

import (
	"bytes"
)

// checkHeader checks the magic values of the header bytes in b (which may
// be a prefix of the header) and, once the header is whole, the allowed
// values.
func (c *Codec) checkHeader(b []byte) error {
	p := c.p
	for _, i := range p.magics {
		f := &p.hfields[i]
		if f.off >= len(b) {
			continue
		}
		n := min(len(b), f.off+f.size) - f.off
		if !bytes.Equal(b[f.off:f.off+n], f.magic[:n]) {
			return c.malformed("bad magic % x in %s", b[f.off:f.off+n], f.name)
		}
	}
	if len(b) < p.hsize {
		return nil
	}
	for _, i := range p.allowed {
		f := &p.hfields[i]
		if v := f.get(b); !contains(f.allowed, v) {
			return c.malformed("%s %d is not an allowed value", f.name, v)
		}
	}
	return nil
}

func contains(vs []uint64, v uint64) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// frameLen returns the frame length the whole header b announces, checked
// against the header size, max_frame_bytes and the regions' lengths.
func (c *Codec) frameLen(b []byte) (int, error) {
	p := c.p
	v := p.hfields[p.lenField].get(b)
	if v > uint64(2*maxMaxFrame) {
		return 0, c.malformed("frame length %d exceeds the maximum of %d", v, p.maxFrame)
	}
	n := int(v) + p.lenBase + p.lenAdjust
	switch {
	case n < p.hsize || n < p.lenBase:
		return 0, c.malformed("frame length %d is shorter than the %d-byte header", n, p.hsize)
	case n > p.maxFrame:
		return 0, c.malformed("frame of %d bytes exceeds the maximum of %d", n, p.maxFrame)
	}
	total := p.hsize
	for i := range p.regions {
		if r := &p.regions[i]; r.lenField >= 0 {
			l, ok := c.regionLen(b, r)
			if !ok || l > n-total {
				return 0, c.malformed("region %s does not fit a %d-byte frame", r.name, n)
			}
			total += l
		}
	}
	return n, nil
}

// regionLen reads the length field of region r in header b.
func (c *Codec) regionLen(b []byte, r *region) (int, bool) {
	v := c.p.hfields[r.lenField].get(b)
	if v > uint64(maxMaxFrame) {
		return 0, false
	}
	l := int(v) + r.adjust
	return l, l >= 0
}

// Split reports the length of the first frame in buf: from its length
// field, or up to and including the delimiter. Bad magic fails as soon as
// the bytes arrive, disallowed values and bad lengths once the header is
// whole.
func (c *Codec) Split(buf []byte) (int, error) {
	p := c.p
	if err := c.checkHeader(buf[:min(len(buf), p.hsize)]); err != nil {
		return 0, err
	}
	if len(buf) < p.hsize {
		return 0, nil
	}
	if p.lenField >= 0 {
		n, err := c.frameLen(buf)
		if err != nil || len(buf) < n {
			return 0, err
		}
		return n, nil
	}
	from := p.hsize
	if c.scanned > from+len(p.delim) && c.scanned <= len(buf) {
		from = c.scanned - len(p.delim) + 1
	}
	if i := bytes.Index(buf[from:], p.delim); i >= 0 {
		c.scanned = 0
		if n := from + i + len(p.delim); n <= p.maxFrame {
			return n, nil
		}
	} else if c.scanned = len(buf); len(buf) < p.maxFrame {
		return 0, nil
	}
	c.scanned = 0
	return 0, c.malformed("no %q within the maximum frame of %d bytes", p.delim, p.maxFrame)
}
