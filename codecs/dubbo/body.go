package dubbo

import (
	"fmt"
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

// Attachment keys the request body carries outside the attachment map;
// Java's DecodeableRpcInvocation also exposes them as attachments.
const (
	keyDubboVersion = "dubbo"
	keyPath         = "path"
)

// request is the routing part of a Hessian 2 request body:
//
//	dubbo version, path, version, method, parameter descriptor,
//	args (as many as the descriptor names), attachments map
type request struct {
	dubbo, path, version, method string
	att                          int // body offset of the attachments; len(body) when absent
}

// request walks a request body up to its attachments.
func (r *reader) request() (req request, err error) {
	p := 0
	var desc string
	for _, s := range [...]*string{&req.dubbo, &req.path, &req.version, &req.method, &desc} {
		if *s, p, _, err = r.str(p); err != nil {
			return req, err
		}
	}
	for n := countArgs(desc); n > 0; n-- {
		if p, err = r.skip(p); err != nil {
			return req, err
		}
	}
	req.att = p
	return req, nil
}

// response walks a response body with status OK up to its attachments. It
// returns the body type and the offset of the attachments, which is -1 for
// body types without them.
func (r *reader) response() (kind int32, att int, err error) {
	kind, p, err := r.int32At(0)
	if err != nil {
		return kind, -1, err
	}
	switch kind {
	case responseWithException, responseValue, responseWithExceptionWithAttachments, responseValueWithAttachments:
		if p, err = r.skip(p); err != nil {
			return kind, -1, err
		}
	case responseNullValue, responseNullValueWithAttachments:
	default:
		return kind, -1, r.fail(0, fmt.Sprintf("unknown response type %d", kind))
	}
	if kind < responseWithExceptionWithAttachments {
		return kind, -1, nil
	}
	return kind, p, nil
}

// entry is one key/value pair of an attachment map. With keysOnly, value
// is not read and stringValue is false.
type entry struct {
	key, value        string
	stringKey         bool // the key is a string
	stringValue       bool // the value is a string or null (read as "")
	compound          bool // the value is a list, map or object
	valueAt, valueEnd int
}

// mapIter walks the entries of the attachment map at the offset it was
// opened with. Attachments may be absent (the body ends first) or null;
// both read as an empty map.
type mapIter struct {
	r        *reader
	p        int
	empty    bool // absent or null: no entries and no closing 'Z'
	keysOnly bool // skip string values instead of reading them
}

// attachments opens the map at p.
func (r *reader) attachments(p int) (mapIter, error) {
	it := mapIter{r: r, p: p}
	if p == len(r.b) {
		it.empty = true
		return it, nil
	}
	var err error
	switch r.b[p] {
	case 'N':
		it.empty = true
		it.p++
	case 'H':
		r.refs++
		it.p++
	case 'M':
		r.refs++
		it.p, err = r.skipType(p + 1)
	default:
		err = r.fail(p, fmt.Sprintf("attachments start with tag 0x%02x, not a map", r.b[p]))
	}
	return it, err
}

// next reads the next entry into e (which it overwrites). ok is false
// after the closing 'Z', which is then at it.p-1.
func (it *mapIter) next(e *entry) (ok bool, err error) {
	r := it.r
	*e = entry{}
	if it.empty {
		return false, nil
	}
	if err = r.need(it.p, 1); err != nil {
		return false, err
	}
	p := it.p
	if r.b[p] == 'Z' {
		it.p++
		return false, nil
	}
	if isStringTag(r.b[p]) {
		e.key, p, _, err = r.str(p)
		e.stringKey = true
	} else {
		p, err = r.skip(p)
	}
	if err != nil {
		return false, err
	}
	if err = r.need(p, 1); err != nil {
		return false, err
	}
	e.valueAt = p
	switch t := r.b[p]; {
	case it.keysOnly:
		e.compound = isCompound(t)
		p, err = r.skip(p)
	case t == 'N' || isStringTag(t):
		e.value, p, _, err = r.str(p)
		e.stringValue = true
	default:
		e.compound = isCompound(t)
		p, err = r.skip(p)
	}
	e.valueEnd = p
	it.p = p
	return err == nil, err
}

// setAttachments adds every string attachment of the map at p to m.
// Non-string keys and values are skipped: they are forwarded untouched but
// cannot be matched on. In requests, interface and method attachments are
// skipped too: those keys come from the body.
func (r *reader) setAttachments(p int, m *codec.Metadata, request bool) error {
	it, err := r.attachments(p)
	if err != nil {
		return err
	}
	var e entry
	for {
		ok, err := it.next(&e)
		if err != nil || !ok {
			return err
		}
		if e.stringKey && e.stringValue && !(request && reserved(e.key)) {
			m.Set(e.key, e.value)
		}
	}
}

// reserved reports attachment keys whose metadata value comes from the
// request body alone: the provider dispatches on the body's path and
// method, whatever the attachments say.
func reserved(key string) bool {
	switch len(key) {
	case len(codec.KeyService):
		return strings.EqualFold(key, codec.KeyService)
	case len(codec.KeyMethod):
		return strings.EqualFold(key, codec.KeyMethod)
	}
	return false
}
