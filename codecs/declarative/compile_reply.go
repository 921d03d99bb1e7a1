package declarative

import (
	"fmt"
	"sort"
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

// replyField resolves a field a reply writes: a uint header field (bit
// fields too) or a top-level integer protobuf field.
func (c *compiler) replyField(path, name string) (ref, error) {
	r, ok := c.names[name]
	switch {
	case ok && r.src == srcHeader && !c.p.hfields[r.i].raw:
		return r, nil
	case ok && r.src == srcSlot && len(c.p.slots[r.i].path) == 1 && c.p.slots[r.i].typ.integer():
		return r, nil
	}
	return r, errf(path, "%q is neither an integer header field nor a top-level integer protobuf field", name)
}

func (c *compiler) replies() error {
	p, rs := c.p, c.d.Replies
	requests := false
	for _, k := range p.kinds {
		requests = requests || k.kind == codec.KindRequest
	}
	if requests && rs.Error == nil {
		return errf("replies.error", "the kinds make requests: describe their error reply")
	}
	if p.hbRequest && rs.Heartbeat == nil {
		return errf("replies.heartbeat", "the kinds make heartbeat requests: describe their reply")
	}
	var err error
	if rs.Error != nil {
		if p.errReply, err = c.template("replies.error", rs.Error, true); err != nil {
			return err
		}
	}
	if rs.Heartbeat != nil {
		if p.hbReply, err = c.template("replies.heartbeat", rs.Heartbeat, false); err != nil {
			return err
		}
	}
	c.rejectRegions()
	return nil
}

// rejectRegions finds the regions RejectReply must read: those of the
// fields the kind rules and the request id use (-2: one is not framed by
// a header field, so a refused frame cannot be answered).
func (c *compiler) rejectRegions() {
	p := c.p
	p.rejectUpTo = -1
	need := func(r ref) {
		if r.src == srcSlot {
			p.rejectUpTo = max(p.rejectUpTo, p.slots[r.i].region)
		}
	}
	for _, k := range p.kinds {
		for _, w := range k.when {
			need(w.f)
		}
	}
	need(p.id)
	for i := 0; i <= p.rejectUpTo; i++ {
		if p.regions[i].lenField < 0 {
			p.rejectUpTo = -2
			return
		}
	}
}

func (c *compiler) template(path string, r *Reply, isErr bool) (*template, error) {
	p := c.p
	t := &template{header: make([]byte, p.hsize), pb: make([][]pbWrite, len(p.regions))}
	for _, i := range p.magics {
		f := &p.hfields[i]
		copy(t.header[f.off:], f.magic)
	}
	written := map[string]bool{}
	idName := ""
	if p.id.src != srcNone {
		idName = c.d.RequestID.Field
		written[idName] = true
		if p.id.src == srcSlot {
			s := &p.slots[p.id.i]
			t.pb[s.region] = append(t.pb[s.region], pbWrite{num: s.path[0], typ: s.typ, what: pbID})
		}
	}
	// add writes v (or what) into the field f names.
	add := func(path, name string, f ref, what uint8, v uint64, from ref) error {
		if written[name] {
			if name == idName {
				return errf(path, "%q is the request id, which replies copy from the request", name)
			}
			return errf(path, "%q is written twice", name)
		}
		written[name] = true
		if f.src == srcSlot {
			s := &p.slots[f.i]
			t.pb[s.region] = append(t.pb[s.region], pbWrite{num: s.path[0], typ: s.typ, what: what, v: v, from: from})
			return nil
		}
		if what == pbConst && v > p.hfields[f.i].max() {
			return errf(path, "%d does not fit %q", v, name)
		}
		switch what {
		case pbConst:
			t.sets = append(t.sets, fieldWrite{f: f.i, v: v})
		case pbCopy:
			t.copies = append(t.copies, copyRule{from: from, to: f.i})
		case pbStatus:
			t.status = f
		}
		return nil
	}
	names := make([]string, 0, len(r.Set))
	for name := range r.Set {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f, err := c.replyField(path+".set", name)
		if err != nil {
			return nil, err
		}
		if err := add(path+".set", name, f, pbConst, uint64(r.Set[name]), ref{}); err != nil {
			return nil, err
		}
	}
	for i, cp := range r.Copy {
		cpath := fmt.Sprintf("%s.copy[%d]", path, i)
		to := cp.To
		if to == "" {
			to = cp.From
		}
		if r, ok := c.names[cp.From]; ok && r.src == srcHeader && p.hfields[r.i].raw {
			// Bytes fields copy into bytes fields of their size.
			d, ok := c.names[to]
			if !ok || d.src != srcHeader || !p.hfields[d.i].raw || p.hfields[d.i].size != p.hfields[r.i].size || written[to] {
				return nil, errf(cpath, "bytes field %q copies into an unwritten bytes field of its size; %q is not one", cp.From, to)
			}
			written[to] = true
			t.copies = append(t.copies, copyRule{from: r, to: d.i})
			continue
		}
		from, err := c.intField(cpath, cp.From)
		if err != nil {
			return nil, err
		}
		f, err := c.replyField(cpath, to)
		if err != nil {
			return nil, err
		}
		if err := add(cpath, to, f, pbCopy, 0, from); err != nil {
			return nil, err
		}
	}
	if !isErr && (r.Status != nil || r.Message != nil) {
		return nil, errf(path, "a heartbeat reply takes no status or message (use set)")
	}
	if s := r.Status; s != nil {
		if err := c.replyStatus(path+".status", s, t, add); err != nil {
			return nil, err
		}
	}
	if m := r.Message; m != nil {
		if err := c.replyMessage(path+".message", m, t, add); err != nil {
			return nil, err
		}
	}
	for _, w := range t.pb {
		sort.SliceStable(w, func(a, b int) bool { return w[a].num < w[b].num })
	}
	return t, nil
}

type addFunc func(path, name string, f ref, what uint8, v uint64, from ref) error

func (c *compiler) replyStatus(path string, s *ReplyStatus, t *template, add addFunc) error {
	f, err := c.replyField(path, s.Field)
	if err != nil {
		return err
	}
	for et := range t.codes {
		t.codes[et] = uint64(s.Default)
	}
	for name, v := range s.ByError {
		et := -1
		for i := range t.codes {
			if codec.ErrorType(i).String() == name {
				et = i
			}
		}
		if et < 0 {
			var all []string
			for i := range t.codes {
				all = append(all, codec.ErrorType(i).String())
			}
			return errf(path+".by_error", "%q is not an error type (%s)", name, strings.Join(all, ", "))
		}
		t.codes[et] = uint64(v)
	}
	if f.src == srcHeader {
		for _, v := range t.codes {
			if v > c.p.hfields[f.i].max() {
				return errf(path, "status %d does not fit %q", v, s.Field)
			}
		}
	}
	return add(path, s.Field, f, pbStatus, 0, ref{})
}

func (c *compiler) replyMessage(path string, m *ReplyMessage, t *template, add addFunc) error {
	if m.Field != "" {
		if m.Region != "" || m.Key != "" {
			return errf(path, "set field, or region and key")
		}
		text := func(t pbType) bool { return t == tString || t == tBytes }
		i, err := c.topSlot(path, m.Field, text, "string or bytes")
		if err != nil {
			return err
		}
		return add(path, m.Field, ref{srcSlot, i}, pbMessage, 0, ref{})
	}
	r, ok := c.names[m.Region]
	if !ok || r.src != srcRegion || (c.p.regions[r.i].format != fmtKV && c.p.regions[r.i].format != fmtJSON) || m.Key == "" {
		return errf(path, "set field (a protobuf field), or region (a kv or json region) and key")
	}
	t.msg, t.msgKey = r, m.Key
	return nil
}

// selfCheck decodes the replies of the compiled description: an error
// reply must be a failed response to the request's id, a heartbeat reply
// a heartbeat that asks for no answer.
func selfCheck(p *protocol) error {
	c := newCodec(p)
	decode := func(out []byte) (*codec.Message, error) {
		d := newCodec(p)
		n, err := d.Split(out)
		if err == nil && n != len(out) {
			err = fmt.Errorf("split gave %d of %d bytes", n, len(out))
		}
		m := &codec.Message{Frame: out}
		if err == nil {
			err = d.Decode(out, m)
		}
		return m, err
	}
	// A request header to copy fields from: magic and allowed values set.
	req := make([]byte, p.hsize)
	for _, i := range p.magics {
		copy(req[p.hfields[i].off:], p.hfields[i].magic)
	}
	for _, i := range p.allowed {
		p.hfields[i].put(req, p.hfields[i].allowed[0])
	}
	if t := p.errReply; t != nil {
		for et := codec.ErrorType(0); et < codec.NumErrorTypes; et++ {
			out := c.build(nil, t, req, 1, &codec.Error{Type: et, Message: "check"}, false)
			m, err := decode(out)
			switch {
			case err != nil:
				return errf("replies.error", "the reply to %s does not decode: %v", et, err)
			case m.Kind != codec.KindResponse:
				return errf("replies.error", "the reply to %s decodes as a %s, not a response", et, m.Kind)
			case p.id.src != srcNone && m.ID != 1:
				return errf("replies.error", "the reply to %s carries id %d, not the request's", et, m.ID)
			case m.Status == codec.StatusOK:
				return errf("replies.error", "the reply to %s decodes as a success: give it a failure status", et)
			}
		}
	}
	if t := p.hbReply; t != nil {
		m, err := decode(c.build(nil, t, req, 1, nil, false))
		switch {
		case err != nil:
			return errf("replies.heartbeat", "the reply does not decode: %v", err)
		case m.Kind != codec.KindHeartbeat || m.HeartbeatRequest:
			return errf("replies.heartbeat", "the reply decodes as a %s (heartbeat_request %v), not a heartbeat answer", m.Kind, m.HeartbeatRequest)
		case p.id.src != srcNone && m.ID != 1:
			return errf("replies.heartbeat", "the reply carries id %d, not the request's", m.ID)
		}
	}
	return nil
}
