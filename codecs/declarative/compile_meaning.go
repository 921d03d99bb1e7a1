package declarative

import (
	"fmt"
	"math"
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

// intField resolves name to an integer: a uint header field (bit fields
// too) or an integer protobuf field.
func (c *compiler) intField(path, name string) (ref, error) {
	r, ok := c.names[name]
	switch {
	case !ok:
		return r, errf(path, "unknown field %q", name)
	case r.src == srcHeader && !c.p.hfields[r.i].raw, r.src == srcSlot && c.p.slots[r.i].typ.integer():
		return r, nil
	}
	return r, errf(path, "%q is not an integer field", name)
}

// topSlot resolves name to a top-level protobuf field that ok accepts.
func (c *compiler) topSlot(path, name string, ok func(pbType) bool, what string) (int, error) {
	r, found := c.names[name]
	if !found || r.src != srcSlot || len(c.p.slots[r.i].path) != 1 || !ok(c.p.slots[r.i].typ) {
		return 0, errf(path, "%q is not a top-level protobuf %s field", name, what)
	}
	return r.i, nil
}

func (c *compiler) kinds() error {
	if len(c.d.Kinds) == 0 {
		return errf("kinds", "needs at least one rule")
	}
	for i, k := range c.d.Kinds {
		path := fmt.Sprintf("kinds[%d]", i)
		kind, ok := kindByName[k.Kind]
		if !ok {
			return errf(path, "kind %q is none of request, response, oneway, heartbeat", k.Kind)
		}
		if i > 0 && len(c.d.Kinds[i-1].When) == 0 {
			return errf(path, "unreachable: kinds[%d] matches every frame", i-1)
		}
		if k.HeartbeatRequest && kind != codec.KindHeartbeat {
			return errf(path, "heartbeat_request is for kind heartbeat")
		}
		c.p.hbRequest = c.p.hbRequest || k.HeartbeatRequest
		rule := kindRule{kind: kind, hbRequest: k.HeartbeatRequest}
		for j, w := range k.When {
			cd, err := c.cond(fmt.Sprintf("%s.when[%d]", path, j), w)
			if err != nil {
				return err
			}
			rule.when = append(rule.when, cd)
		}
		c.p.kinds = append(c.p.kinds, rule)
	}
	return nil
}

func (c *compiler) cond(path string, w Cond) (cond, error) {
	n := 0
	for _, set := range []bool{w.Equals != nil, w.In != nil, w.NotIn != nil, w.Present != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return cond{}, errf(path, "set exactly one of equals, in, not_in, present")
	}
	if w.Present != nil {
		r, ok := c.names[w.Field]
		if !ok || r.src != srcSlot {
			return cond{}, errf(path, "present tests a protobuf field; %q is not one", w.Field)
		}
		op := uint8(opPresent)
		if !*w.Present {
			op = opAbsent
		}
		return cond{f: r, op: op}, nil
	}
	r, err := c.intField(path, w.Field)
	if err != nil {
		return cond{}, err
	}
	cd := cond{f: r}
	switch {
	case w.Equals != nil:
		cd.op, cd.vals = opEquals, []uint64{uint64(*w.Equals)}
	case w.In != nil:
		cd.op, cd.vals = opIn, nums(w.In)
	default:
		cd.op, cd.vals = opNotIn, nums(w.NotIn)
	}
	return cd, nil
}

func nums(ns []Num) []uint64 {
	out := make([]uint64, len(ns))
	for i, n := range ns {
		out[i] = uint64(n)
	}
	return out
}

func (c *compiler) requestID() error {
	id := c.d.RequestID
	if id == nil {
		return nil
	}
	r, ok := c.names[id.Field]
	switch {
	case ok && r.src == srcHeader:
		i, err := c.intHeader("request_id.field", id.Field, false)
		if err != nil {
			return err
		}
		c.p.idMax = maxOf(c.p.hfields[i].size)
	case ok && r.src == srcSlot:
		unsigned := func(t pbType) bool { return t == tUint32 || t == tUint64 || t == tFixed32 || t == tFixed64 }
		i, err := c.topSlot("request_id.field", id.Field, unsigned, "unsigned integer")
		if err != nil {
			return err
		}
		c.p.idMax = math.MaxUint64
		if t := c.p.slots[i].typ; t == tUint32 || t == tFixed32 {
			c.p.idMax = math.MaxUint32
		}
	default:
		return errf("request_id.field", "%q is neither a header field nor a protobuf field", id.Field)
	}
	c.p.id = r
	for i, a := range id.Also {
		f, err := c.intHeader(fmt.Sprintf("request_id.also[%d]", i), a, false)
		if err != nil {
			return err
		}
		c.p.idAlso = append(c.p.idAlso, f)
	}
	return nil
}

func (c *compiler) status() error {
	for i, s := range c.d.Status {
		path := fmt.Sprintf("status[%d]", i)
		r, err := c.intField(path, s.Field)
		if err != nil {
			return err
		}
		sc := statusCheck{f: r, ok: nums(s.OK), err: nums(s.Error), otherwise: codec.StatusServerFailure}
		if len(sc.ok) == 0 {
			sc.ok = []uint64{0}
		}
		switch s.Otherwise {
		case "", "server_failure":
		case "error":
			sc.otherwise = codec.StatusError
		default:
			return errf(path, "otherwise %q is neither server_failure nor error", s.Otherwise)
		}
		c.p.status = append(c.p.status, sc)
	}
	return nil
}

// kindMask returns the bits of kinds (every kind when empty).
func kindMask(path string, kinds []string) (uint8, error) {
	if len(kinds) == 0 {
		return 1<<numKinds - 1, nil
	}
	var m uint8
	for _, k := range kinds {
		kind, ok := kindByName[k]
		if !ok {
			return 0, errf(path, "kind %q is none of request, response, oneway, heartbeat", k)
		}
		m |= 1 << kind
	}
	return m, nil
}

func (c *compiler) metadata() error {
	for i, m := range c.d.Metadata {
		path := fmt.Sprintf("metadata[%d]", i)
		mask, err := kindMask(path+".kinds", m.Kinds)
		if err != nil {
			return err
		}
		rule := metaRule{key: m.Key, kinds: mask, afterLast: m.AfterLast}
		if m.Default != nil {
			rule.def, rule.hasDef = *m.Default, true
		}
		if m.Entries != "" {
			if m.Key != "" || m.From != "" || m.Path != "" || m.Default != nil || m.AfterLast != "" {
				return errf(path, "entries takes no key, from, path, default or after_last")
			}
			r, ok := c.names[m.Entries]
			if !ok || !(r.src == srcSlot && c.p.slots[r.i].typ.isMap() || r.src == srcRegion && c.p.regions[r.i].format == fmtKV) {
				return errf(path, "entries %q is neither a protobuf map field nor a kv region", m.Entries)
			}
			rule.form, rule.f = metaEntries, r
			c.p.meta = append(c.p.meta, rule)
			continue
		}
		if m.Key == "" || m.From == "" {
			return errf(path, "set key and from, or entries")
		}
		r, ok := c.names[m.From]
		if !ok {
			return errf(path, "unknown field %q", m.From)
		}
		rule.f = r
		text := true
		switch {
		case r.src == srcRegion && c.p.regions[r.i].format == fmtJSON:
			if rule.path = strings.Split(m.Path, "."); m.Path == "" || strings.Contains(m.Path, "..") {
				return errf(path, "path %q into JSON region %q is not a dotted path", m.Path, m.From)
			}
			rule.form = metaJSON
		case r.src == srcRegion:
			return errf(path, "region %q is not a JSON region (a kv region gives its pairs with entries)", m.From)
		case m.Path != "":
			return errf(path, "path is for JSON regions")
		case r.src == srcSlot && c.p.slots[r.i].typ.isMap():
			return errf(path, "map field %q gives its entries with entries", m.From)
		case r.src == srcSlot:
			text = !c.p.slots[r.i].typ.integer()
		default:
			text = c.p.hfields[r.i].raw
		}
		if m.AfterLast != "" && !text {
			return errf(path, "after_last is for string and bytes fields")
		}
		c.p.meta = append(c.p.meta, rule)
	}
	return nil
}

func (c *compiler) edits() error {
	for i, t := range c.d.Edits.Headers {
		path := fmt.Sprintf("edits.headers[%d]", i)
		r, ok := c.names[t.Into]
		if !ok || !(r.src == srcSlot && c.p.slots[r.i].typ.isMap() && len(c.p.slots[r.i].path) == 1 ||
			r.src == srcRegion && c.p.regions[r.i].format == fmtKV) {
			return errf(path, "into %q is neither a top-level protobuf map field nor a kv region", t.Into)
		}
		mask, err := kindMask(path+".kinds", t.Kinds)
		if err != nil {
			return err
		}
		for k := 0; k < numKinds; k++ {
			if mask&(1<<k) == 0 {
				continue
			}
			if c.p.target[k].src != srcNone {
				return errf(path, "kind %s already has a header target", codec.Kind(k))
			}
			c.p.target[k] = r
		}
	}
	return nil
}
