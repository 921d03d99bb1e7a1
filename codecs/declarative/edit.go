package declarative

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/internal/pbwire"
)

func (c *Codec) unsupported(format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", c.p.name, fmt.Sprintf(format, args...), codec.ErrUnsupported)
}

// Encode appends msg.Frame changed by e. A request id in a header field
// is patched in place; one in a protobuf region too when its encoding
// keeps its size, else the region is rewritten with one id field where
// the first was. Header edits drop the target's entries of the edited
// keys and append the new ones. Length fields are fixed up; every other
// byte is copied as it is.
func (c *Codec) Encode(dst []byte, msg *codec.Message, e *codec.Edit) ([]byte, error) {
	f := msg.Frame
	if e.Empty() {
		return append(dst, f...), nil
	}
	p := c.p
	if e.SetID && p.id.src == srcNone {
		return dst, c.unsupported("the protocol has no request id")
	}
	if e.SetID && e.ID > p.idMax {
		return dst, fmt.Errorf("%s: id %d does not fit the request id field", p.name, e.ID)
	}
	tgt := ref{}
	if len(e.Headers) > 0 {
		if !c.CarriesHeaders(msg) {
			return dst, c.unsupported("%s frames carry no headers", msg.Kind)
		}
		tgt = p.target[msg.Kind]
		if err := c.checkHeaders(tgt, e.Headers); err != nil {
			return dst, err
		}
	}
	if err := c.layout(f); err != nil {
		return dst, err
	}
	var oldID uint64
	idRegion, hdrRegion := -1, -1
	if e.SetID {
		var err error
		if oldID, err = c.oldID(f); err != nil {
			return dst, err
		}
		if p.id.src == srcSlot {
			idRegion = p.slots[p.id.i].region
		}
	}
	switch tgt.src {
	case srcSlot:
		hdrRegion = p.slots[tgt.i].region
	case srcRegion:
		hdrRegion = tgt.i
	}
	start := len(dst)
	if hdrRegion < 0 && idRegion < 0 {
		dst = append(dst, f...)
		c.putID(dst[start:], e.ID, oldID)
		return dst, nil
	}
	if hdrRegion < 0 {
		if out, ok := c.patchID(dst, f, e.ID, oldID); ok {
			return out, nil
		}
	}
	dst = append(dst, f[:p.hsize]...)
	last := p.hsize
	for i := range p.regions {
		sp := c.spans[i]
		b := f[sp.off:sp.end]
		at := len(dst)
		switch {
		case i == hdrRegion && tgt.src == srcRegion:
			var err error
			if dst, err = appendKV(dst, b, &p.regions[i].kv, e.Headers); err != nil {
				return dst[:start], fmt.Errorf("%s: %v", p.name, err)
			}
		case i == hdrRegion || i == idRegion:
			mapSlot := -1
			if i == hdrRegion {
				mapSlot = tgt.i
			}
			var err error
			if dst, err = c.appendPB(dst, b, e, i == idRegion, mapSlot); err != nil {
				return dst[:start], c.malformed("region %s: %v", p.regions[i].name, err)
			}
		default:
			dst = append(dst, b...)
		}
		if r := &p.regions[i]; r.lenField >= 0 && len(dst)-at != len(b) {
			v := uint64(len(dst) - at - r.adjust)
			if hf := &p.hfields[r.lenField]; v > hf.max() {
				return dst[:start], fmt.Errorf("%s: edited region %s of %d bytes does not fit %s", p.name, r.name, len(dst)-at, hf.name)
			}
			p.hfields[r.lenField].put(dst[start:], v)
		}
		last = sp.end
	}
	dst = append(dst, f[last:]...)
	out := dst[start:]
	if len(out) > p.maxFrame {
		return dst[:start], fmt.Errorf("%s: edited frame of %d bytes exceeds the maximum of %d", p.name, len(out), p.maxFrame)
	}
	if p.lenField >= 0 && len(out) != len(f) {
		hf := &p.hfields[p.lenField]
		v := hf.get(f) + uint64(len(out)-len(f))
		if v > hf.max() {
			return dst[:start], fmt.Errorf("%s: edited frame of %d bytes does not fit %s", p.name, len(out), hf.name)
		}
		hf.put(out, v)
	}
	if p.lenField < 0 && bytes.Index(out[p.hsize:], p.delim) != len(out)-p.hsize-len(p.delim) {
		return dst[:start], fmt.Errorf("%s: an edit would put the delimiter inside the frame", p.name)
	}
	if e.SetID {
		c.putID(out, e.ID, oldID)
	}
	return dst, nil
}

// putID writes id into the header id field and into the also fields
// that held the old id.
func (c *Codec) putID(out []byte, id, old uint64) {
	p := c.p
	if p.id.src == srcHeader {
		p.hfields[p.id.i].put(out, id)
	}
	for _, i := range p.idAlso {
		if f := &p.hfields[i]; f.get(out) == old {
			f.put(out, id&f.max())
		}
	}
}

// oldID returns the request id frame f carries (its last protobuf id
// field, as protobuf reads it).
func (c *Codec) oldID(f []byte) (uint64, error) {
	p := c.p
	if p.id.src == srcHeader {
		return p.hfields[p.id.i].get(f), nil
	}
	spec := &p.slots[p.id.i]
	sp := c.spans[spec.region]
	n, _, _, v, err := scanField(f[sp.off:sp.end], spec)
	if err != nil {
		return 0, c.malformed("region %s: %v", p.regions[spec.region].name, err)
	}
	if n == 0 {
		return 0, nil
	}
	return spec.typ.value(v), nil
}

// scanField returns how many top-level fields of spec message b holds,
// where the last one's value starts and ends, and its raw value.
func scanField(b []byte, spec *slotSpec) (n, at, end int, v uint64, err error) {
	var fl field
	for q := 0; q < len(b); q = fl.End {
		if err := fl.Next(b, q, &pbErrors); err != nil {
			return 0, 0, 0, 0, err
		}
		if fl.Num == spec.path[0] && fl.Typ == spec.typ.wire() {
			n, at, end, v = n+1, fl.At, fl.End, fl.V
		}
	}
	return n, at, end, v, nil
}

// patchID appends frame f with its protobuf id patched in place, when
// the region holds the id once and the new value keeps its size.
func (c *Codec) patchID(dst, f []byte, id, old uint64) ([]byte, bool) {
	p := c.p
	spec := &p.slots[p.id.i]
	sp := c.spans[spec.region]
	n, at, end, _, err := scanField(f[sp.off:sp.end], spec)
	w := spec.typ.wire()
	if err != nil || n != 1 || w == wireVarint && end-at != pbwire.VarintLen(id) {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, f...)
	v := dst[start+sp.off+at : start+sp.off+end]
	if w == wireVarint {
		pbwire.AppendVarint(v[:0], id)
	} else {
		putUint(v, id, true)
	}
	c.putID(dst[start:], id, old)
	return dst, true
}

// appendPB appends protobuf region b rewritten: one id field holding
// e.ID where the first was (at the end when there was none) if setID;
// entries of map field mapSlot whose keys e edits dropped, and e's
// headers appended (a key named twice: the later value).
func (c *Codec) appendPB(dst, b []byte, e *codec.Edit, setID bool, mapSlot int) ([]byte, error) {
	p := c.p
	var idNum, mapNum int32
	var idType pbType
	if setID {
		idNum, idType = p.slots[p.id.i].path[0], p.slots[p.id.i].typ
	}
	if mapSlot >= 0 {
		mapNum = p.slots[mapSlot].path[0]
	}
	idDone := !setID
	var fl field
	for q := 0; q < len(b); q = fl.End {
		if err := fl.Next(b, q, &pbErrors); err != nil {
			return dst, err
		}
		if setID && fl.Num == idNum && fl.Typ == idType.wire() {
			if !idDone {
				dst, idDone = appendScalar(dst, idNum, idType, e.ID), true
			}
			continue
		}
		if mapSlot >= 0 && fl.Num == mapNum && fl.Typ == wireBytes {
			if k, _, err := mapEntry(fl.B, false); err == nil && lastIndex(e.Headers, str(k)) >= 0 {
				continue
			}
		}
		dst = append(dst, b[fl.Start:fl.End]...)
	}
	if !idDone {
		dst = appendScalar(dst, idNum, idType, e.ID)
	}
	if mapSlot >= 0 {
		for i, kv := range e.Headers {
			if lastIndex(e.Headers, kv.Key) == i {
				dst = pbwire.AppendEntry(dst, mapNum, kv.Key, kv.Value)
			}
		}
	}
	return dst, nil
}

// appendKV appends kv region b with the pairs of edited keys dropped and
// hs appended.
func appendKV(dst, b []byte, l *kvLayout, hs []codec.KV) ([]byte, error) {
	_, q, _ := kvStart(b, l)
	at := len(dst)
	dst = append(dst, make([]byte, l.count)...)
	n := 0
	for q < len(b) {
		k, _, next, err := kvNext(b, q, l)
		if err != nil {
			return dst, err
		}
		if lastIndex(hs, str(k)) < 0 {
			dst = append(dst, b[q:next]...)
			n++
		}
		q = next
	}
	for i, kv := range hs {
		if lastIndex(hs, kv.Key) != i {
			continue
		}
		dst = append(dst, make([]byte, l.key)...)
		putUint(dst[len(dst)-l.key:], uint64(len(kv.Key)), l.little)
		dst = append(dst, kv.Key...)
		dst = append(dst, make([]byte, l.value)...)
		putUint(dst[len(dst)-l.value:], uint64(len(kv.Value)), l.little)
		dst = append(dst, kv.Value...)
		n++
	}
	if l.count > 0 {
		if uint64(n) > maxOf(l.count) {
			return dst, fmt.Errorf("%d pairs do not fit a %d-byte count", n, l.count)
		}
		putUint(dst[at:at+l.count], uint64(n), l.little)
	}
	return dst, nil
}

// checkHeaders checks that the target can hold every edited header.
func (c *Codec) checkHeaders(tgt ref, hs []codec.KV) error {
	for _, kv := range hs {
		if tgt.src == srcSlot {
			if !utf8.ValidString(kv.Key) || c.p.slots[tgt.i].typ == tMapString && !utf8.ValidString(kv.Value) {
				return fmt.Errorf("%s: header %q: map keys (and string values) must be UTF-8", c.p.name, kv.Key)
			}
			continue
		}
		l := &c.p.regions[tgt.i].kv
		if uint64(len(kv.Key)) > maxOf(l.key) || uint64(len(kv.Value)) > maxOf(l.value) {
			return fmt.Errorf("%s: header %q does not fit the pair's length prefixes", c.p.name, kv.Key)
		}
	}
	return nil
}

// lastIndex returns the index of the last header of key k, or -1.
func lastIndex(hs []codec.KV, k string) int {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == k {
			return i
		}
	}
	return -1
}
