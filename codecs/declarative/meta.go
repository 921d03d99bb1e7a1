package declarative

import (
	"errors"
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

// addMeta applies metadata rule m to the parsed frame.
func (c *Codec) addMeta(frame []byte, m *metaRule, md *codec.Metadata) error {
	switch m.form {
	case metaEntries:
		if m.f.src == srcRegion {
			r := &c.p.regions[m.f.i]
			sp := c.spans[m.f.i]
			kvEach(frame[sp.off:sp.end], &r.kv, md)
			return nil
		}
		spec := &c.p.slots[m.f.i]
		if c.slots[m.f.i].set {
			sp := c.spans[spec.region]
			addMap(md, frame[sp.off:sp.end], spec.path, spec.typ == tMapString)
		}
		return nil
	case metaJSON:
		sp := c.spans[m.f.i]
		v, ok, err := jsonPath(frame[sp.off:sp.end], m.path)
		if err != nil {
			return c.malformed("region %s: %v", c.p.regions[m.f.i].name, err)
		}
		c.setMeta(md, m, v, ok)
		return nil
	}
	v, ok := c.text(frame, m.f)
	c.setMeta(md, m, v, ok)
	return nil
}

func (c *Codec) setMeta(md *codec.Metadata, m *metaRule, v string, ok bool) {
	if !ok {
		if m.hasDef {
			md.Set(m.key, m.def)
		}
		return
	}
	if m.afterLast != "" {
		if i := strings.LastIndex(v, m.afterLast); i >= 0 {
			v = v[i+len(m.afterLast):]
		}
	}
	md.Set(m.key, v)
}

// text returns field r of the parsed frame as metadata: bytes as they are
// (aliasing the frame), integers in decimal, booleans as true or false.
func (c *Codec) text(frame []byte, r ref) (string, bool) {
	if r.src == srcHeader {
		f := &c.p.hfields[r.i]
		if f.raw {
			return str(frame[f.off : f.off+f.size]), true
		}
		return decimal(f.get(frame), false), true
	}
	s, t := &c.slots[r.i], c.p.slots[r.i].typ
	switch {
	case !s.set:
		return "", false
	case t == tString || t == tBytes:
		return str(s.b), true
	case t == tBool && s.v != 0:
		return "true", true
	case t == tBool:
		return "false", true
	}
	return decimal(s.v, t.signed()), true
}

// addMap adds the entries of the map field at path in message b, in wire
// order (a later entry of a key wins, as in protobuf-go). parse has
// checked the entries.
func addMap(md *codec.Metadata, b []byte, path []int32, stringValue bool) {
	var f field
	for p := 0; p < len(b); p = f.End {
		if f.Next(b, p, &pbErrors) != nil {
			return
		}
		if f.Num != path[0] || f.Typ != wireBytes {
			continue
		}
		if len(path) > 1 {
			addMap(md, f.B, path[1:], stringValue)
			continue
		}
		if k, v, err := mapEntry(f.B, stringValue); err == nil {
			md.Set(str(k), str(v))
		}
	}
}

var (
	errKVTruncated = errors.New("kv: truncated pair")
	errKVCount     = errors.New("kv: pair count does not match the region")
)

// kvStart returns the pair count (-1: pairs fill the region) and where
// the pairs start.
func kvStart(b []byte, l *kvLayout) (int, int, error) {
	if l.count == 0 {
		return -1, 0, nil
	}
	if len(b) < l.count {
		return 0, 0, errKVTruncated
	}
	return int(readUint(b[:l.count], l.little)), l.count, nil
}

// kvNext reads the pair at b[p:].
func kvNext(b []byte, p int, l *kvLayout) (key, value []byte, next int, err error) {
	if len(b)-p < l.key {
		return nil, nil, p, errKVTruncated
	}
	n := readUint(b[p:p+l.key], l.little)
	p += l.key
	if n > uint64(len(b)-p) {
		return nil, nil, p, errKVTruncated
	}
	key, p = b[p:p+int(n)], p+int(n)
	if len(b)-p < l.value {
		return nil, nil, p, errKVTruncated
	}
	n = readUint(b[p:p+l.value], l.little)
	p += l.value
	if n > uint64(len(b)-p) {
		return nil, nil, p, errKVTruncated
	}
	return key, b[p : p+int(n)], p + int(n), nil
}

// kvCheck checks that kv region b is whole pairs (count of them when the
// layout has a count) and nothing else.
func kvCheck(b []byte, l *kvLayout) error {
	count, p, err := kvStart(b, l)
	if err != nil {
		return err
	}
	n := 0
	for ; p < len(b); n++ {
		if _, _, p, err = kvNext(b, p, l); err != nil {
			return err
		}
	}
	if count >= 0 && n != count {
		return errKVCount
	}
	return nil
}

// kvEach adds every pair of the checked kv region b to md.
func kvEach(b []byte, l *kvLayout, md *codec.Metadata) {
	_, p, _ := kvStart(b, l)
	for p < len(b) {
		k, v, next, err := kvNext(b, p, l)
		if err != nil {
			return
		}
		md.Set(str(k), str(v))
		p = next
	}
}
