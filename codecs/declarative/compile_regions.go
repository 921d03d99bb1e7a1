package declarative

import (
	"fmt"
	"github.com/metaproxy/metaproxy/internal/pbwire"
	"strconv"
	"strings"
)

func (c *compiler) regions() error {
	for i, r := range c.d.Regions {
		path := fmt.Sprintf("regions[%d] (%q)", i, r.Name)
		if err := c.declare(path, r.Name, ref{srcRegion, i}); err != nil {
			return err
		}
		rg := region{name: r.Name, lenField: -1, adjust: r.Adjust}
		if r.Length == "rest" {
			if i != len(c.d.Regions)-1 {
				return errf(path, "only the last region can have length rest")
			}
		} else {
			f, err := c.intHeader(path+".length", r.Length, false)
			if err != nil {
				return err
			}
			if f == c.p.lenField {
				return errf(path+".length", "%q is the frame's length field: give the region length rest", r.Length)
			}
			for _, o := range c.p.regions {
				if o.lenField == f {
					return errf(path+".length", "%q is region %s's length too", r.Length, o.name)
				}
			}
			rg.lenField = f
		}
		switch r.Format {
		case "raw":
			rg.format = fmtRaw
		case "json":
			rg.format = fmtJSON
		case "protobuf":
			rg.format, rg.root = fmtProtobuf, &pbNode{}
		case "kv":
			rg.format = fmtKV
			if r.KV == nil {
				return errf(path, "a kv region needs its kv layout")
			}
			var err error
			if rg.kv, err = c.kvLayout(path+".kv", r.KV); err != nil {
				return err
			}
		default:
			return errf(path, "format %q is none of protobuf, kv, json, raw", r.Format)
		}
		if len(r.Fields) > 0 && rg.format != fmtProtobuf || r.KV != nil && rg.format != fmtKV {
			return errf(path, "fields are for protobuf regions, kv for kv regions")
		}
		c.p.regions = append(c.p.regions, rg)
		for j, f := range r.Fields {
			if err := c.pbField(fmt.Sprintf("%s.fields[%d] (%q)", path, j, f.Name), i, f); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *compiler) kvLayout(path string, l *KVLayout) (kvLayout, error) {
	w := func(name string, n int, zero bool) error {
		if n == 1 || n == 2 || n == 4 || zero && n == 0 {
			return nil
		}
		return errf(path, "%s %d is not 1, 2 or 4", name, n)
	}
	if err := w("count_bytes", l.CountBytes, true); err != nil {
		return kvLayout{}, err
	}
	if err := w("key_bytes", l.KeyBytes, false); err != nil {
		return kvLayout{}, err
	}
	if err := w("value_bytes", l.ValueBytes, false); err != nil {
		return kvLayout{}, err
	}
	little, err := endian(path, l.Endian, c.little)
	return kvLayout{count: l.CountBytes, key: l.KeyBytes, value: l.ValueBytes, little: little}, err
}

// pbField adds a named protobuf field of region ri to its field tree.
func (c *compiler) pbField(path string, ri int, f PBField) error {
	typ, ok := pbTypes[strings.ReplaceAll(f.Type, " ", "")]
	if !ok {
		return errf(path, "type %q is not a protobuf scalar, string, bytes, map<string,string> or map<string,bytes>", f.Type)
	}
	var nums []int32
	for _, s := range strings.Split(f.Path, ".") {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n < 1 || n > pbwire.MaxFieldNumber {
			return errf(path, "path %q: %q is not a field number (1 to %d)", f.Path, s, pbwire.MaxFieldNumber)
		}
		nums = append(nums, int32(n))
	}
	slot := len(c.p.slots)
	if err := c.declare(path, f.Name, ref{srcSlot, slot}); err != nil {
		return err
	}
	c.p.slots = append(c.p.slots, slotSpec{name: f.Name, region: ri, path: nums, typ: typ})
	node := c.p.regions[ri].root
	for depth, n := range nums {
		if depth == len(nums)-1 {
			node.entries = append(node.entries, pbEntry{num: n, wire: typ.wire(), slot: slot})
			break
		}
		next := -1
		for k, e := range node.entries {
			if e.num == n && e.wire == wireBytes && e.slot < 0 {
				next = k
			}
		}
		if next < 0 {
			node.entries = append(node.entries, pbEntry{num: n, wire: wireBytes, slot: -1, child: &pbNode{}})
			next = len(node.entries) - 1
		}
		node = node.entries[next].child
	}
	return nil
}
