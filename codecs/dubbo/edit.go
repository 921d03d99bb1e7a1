package dubbo

import (
	"encoding/binary"
	"fmt"

	"github.com/metaproxy/metaproxy/codec"
)

// unsupported returns an error wrapping codec.ErrUnsupported.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", Name, fmt.Sprintf(format, args...), codec.ErrUnsupported)
}

// appendEdited appends frame f with hs merged into its attachment map: the
// value of an existing key is replaced (keys compare exactly, as in a Java
// HashMap), new keys are added before the map's end. The bytes around the
// map are copied unchanged and the body length is fixed.
func (c *Codec) appendEdited(dst []byte, h header, f []byte, hs []codec.KV) ([]byte, error) {
	att, err := c.attachmentsAt(h, f[HeaderLen:])
	if err != nil {
		return dst, err
	}
	body := f[HeaderLen:]
	it, err := c.r.attachments(att)
	if err != nil {
		return dst, err
	}
	it.keysOnly = true
	matched := c.resetMatched(len(hs))
	start := len(dst)
	dst = append(dst, f[:HeaderLen]...)
	if it.empty {
		dst = append(dst, body[:att]...)
		dst = append(dst, 'H')
		dst = appendAdded(dst, hs, matched)
		dst = append(dst, 'Z')
		dst = append(dst, body[it.p:]...)
	} else {
		cursor := 0
		var e entry
		for {
			ok, err := it.next(&e)
			if err != nil {
				return dst, err
			}
			if !ok {
				break
			}
			j := -1
			if e.stringKey {
				j = lastIndex(hs, e.key)
			}
			if j < 0 {
				continue
			}
			if e.compound {
				// Replacing a list, map or object would renumber the
				// references that follow it.
				return dst, unsupported("attachment %q holds a list, map or object", e.key)
			}
			dst = append(dst, body[cursor:e.valueAt]...)
			dst = appendString(dst, hs[j].Value)
			cursor = e.valueEnd
			matched[j] = true
		}
		end := it.p - 1 // the map's closing 'Z'
		dst = append(dst, body[cursor:end]...)
		dst = appendAdded(dst, hs, matched)
		dst = append(dst, body[end:]...)
	}
	n := len(dst) - start
	if n > c.maxFrame {
		return dst, fmt.Errorf("%s: edited frame of %d bytes exceeds the maximum of %d", Name, n, c.maxFrame)
	}
	binary.BigEndian.PutUint32(dst[start+12:start+16], uint32(n-HeaderLen))
	return dst, nil
}

// attachmentsAt returns the body offset of the attachment map of a frame
// that can carry one, leaving c.r positioned in the body.
func (c *Codec) attachmentsAt(h header, body []byte) (int, error) {
	switch {
	case h.event():
		return 0, unsupported("events carry no attachments")
	case h.serial() != serialHessian2:
		return 0, unsupported("attachments of serialization %d", h.serial())
	case !h.request() && h.status != StatusOK:
		return 0, unsupported("a response with status %d carries no attachments", h.status)
	}
	c.r.reset(body)
	if h.request() {
		req, err := c.r.request()
		return req.att, err
	}
	kind, att, err := c.r.response()
	if err == nil && att < 0 {
		err = unsupported("response body type %d carries no attachments", kind)
	}
	return att, err
}

// resetMatched returns c.matched with n false entries.
func (c *Codec) resetMatched(n int) []bool {
	if cap(c.matched) < n {
		c.matched = make([]bool, n)
	}
	c.matched = c.matched[:n]
	clear(c.matched)
	return c.matched
}

// lastIndex returns the index of the last header with key k, or -1: when
// an edit names a key twice, the later value wins.
func lastIndex(hs []codec.KV, k string) int {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == k {
			return i
		}
	}
	return -1
}

// appendAdded appends the headers that replaced no existing attachment as
// new map entries.
func appendAdded(dst []byte, hs []codec.KV, matched []bool) []byte {
	for i, kv := range hs {
		if matched[i] || lastIndex(hs, kv.Key) != i {
			continue
		}
		dst = appendString(dst, kv.Key)
		dst = appendString(dst, kv.Value)
	}
	return dst
}

// CarriesHeaders implements codec.HeaderCarrier: a request carries
// attachment edits when its body is Hessian 2 and it is not an event.
func (c *Codec) CarriesHeaders(m *codec.Message) bool {
	h, err := parseHeader(m.Frame)
	return err == nil && !h.event() && h.serial() == serialHessian2
}
