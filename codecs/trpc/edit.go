package trpc

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/internal/pbwire"
)

// unsupported returns an error wrapping codec.ErrUnsupported.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", Name, fmt.Sprintf(format, args...), codec.ErrUnsupported)
}

// Encode appends msg.Frame with e applied. SetID rewrites a unary frame's
// request_id, and the head's stream id when it held the request id (as
// version 1 heads do); it rewrites a stream frame's stream id. Headers are
// merged into a unary request's or response's trans_info: an entry whose
// key equals an edited key (exactly, as in a Go map) gets the new value,
// new keys are added at the end of the header. The protobuf header is
// rewritten field by field and the head's lengths fixed; the body and the
// attachment are copied unchanged.
func (c *Codec) Encode(dst []byte, msg *codec.Message, e *codec.Edit) ([]byte, error) {
	f := msg.Frame
	if e.Empty() {
		return append(dst, f...), nil
	}
	if e.SetID && e.ID > math.MaxUint32 {
		return dst, fmt.Errorf("%s: id %d does not fit the protocol's 32 bits", Name, e.ID)
	}
	for _, kv := range e.Headers {
		if !utf8.ValidString(kv.Key) {
			return dst, fmt.Errorf("%s: trans_info key %q is not valid UTF-8", Name, kv.Key)
		}
	}
	h, err := parseHead(f)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	if h.frameType == frameStream {
		if len(e.Headers) > 0 {
			return dst, unsupported("stream frames take no trans_info edits")
		}
		dst = append(dst, f...)
		putStreamID(dst[start:], uint32(e.ID))
		return dst, nil
	}
	if h.headerLen == 0 {
		return dst, codec.Malformed(Name, "unary frame without a protobuf header")
	}
	hb := f[HeadLen : HeadLen+h.headerLen]
	ids, at, end, old, err := scanID(hb)
	if err != nil {
		return dst, err
	}
	if len(e.Headers) > 0 {
		// Which trans_info field (9 or 8) depends on the message.
		if err := c.hdr.parse(hb); err != nil {
			return dst, err
		}
	}
	id, sid := old, h.streamID
	if e.SetID {
		id = uint32(e.ID)
		if sid == old {
			sid = id
		}
	}
	if len(e.Headers) == 0 && ids == 1 && end-at == pbwire.VarintLen(uint64(id)) {
		// The common case: the id keeps its size and is patched in place.
		dst = append(dst, f...)
		// Overwrites the old varint: the slice's capacity is the frame's.
		pbwire.AppendVarint(dst[start+HeadLen+at:start+HeadLen+at], uint64(id))
		putStreamID(dst[start:], sid)
		return dst, nil
	}
	dst = append(dst, f[:HeadLen]...)
	dst = c.appendHeader(dst, hb, e, id)
	hl := len(dst) - start - HeadLen
	if hl > math.MaxUint16 {
		return dst[:start], fmt.Errorf("%s: edited protobuf header of %d bytes exceeds 65535", Name, hl)
	}
	dst = append(dst, f[HeadLen+h.headerLen:]...)
	n := len(dst) - start
	if n > c.maxFrame {
		return dst[:start], fmt.Errorf("%s: edited frame of %d bytes exceeds the maximum of %d", Name, n, c.maxFrame)
	}
	out := dst[start:]
	binary.BigEndian.PutUint32(out[4:8], uint32(n))
	binary.BigEndian.PutUint16(out[8:10], uint16(hl))
	putStreamID(out, sid)
	return dst, nil
}

// appendHeader appends header hb rewritten by e: one request_id field
// holding id where the first was (at the end if there was none) when
// e.SetID, trans_info entries of edited keys replaced, new ones appended.
// Every other field is copied as it is. c.hdr describes hb.
func (c *Codec) appendHeader(dst, hb []byte, e *codec.Edit, id uint32) []byte {
	num := c.hdr.transInfo
	matched := c.resetMatched(len(e.Headers))
	idDone := !e.SetID
	var fl field
	for p := 0; p < len(hb); p = fl.End {
		_ = fl.Next(hb, p, &pbErrors) // scanID validated hb
		switch {
		case e.SetID && fl.Num == fieldRequestID && fl.Typ == wireVarint:
			if !idDone {
				dst = appendVarintField(dst, fieldRequestID, uint64(id))
				idDone = true
			}
			continue
		case len(e.Headers) > 0 && fl.Num == num && fl.Typ == wireBytes:
			k, _, _ := mapEntry(fl.B)
			if j := lastIndex(e.Headers, str(k)); j >= 0 {
				if !matched[j] {
					dst = pbwire.AppendEntry(dst, num, e.Headers[j].Key, e.Headers[j].Value)
					matched[j] = true
				}
				continue
			}
		}
		dst = append(dst, hb[fl.Start:fl.End]...)
	}
	if !idDone {
		dst = appendVarintField(dst, fieldRequestID, uint64(id))
	}
	for i, kv := range e.Headers {
		if !matched[i] && lastIndex(e.Headers, kv.Key) == i {
			dst = pbwire.AppendEntry(dst, num, kv.Key, kv.Value)
		}
	}
	return dst
}

// scanID walks header b and returns how many request_id fields it has,
// and where the value of the last (the one that counts) starts and ends,
// and that value.
func scanID(b []byte) (n, at, end int, id uint32, err error) {
	var f field
	for p := 0; p < len(b); p = f.End {
		if err := f.Next(b, p, &pbErrors); err != nil {
			return 0, 0, 0, 0, err
		}
		if f.Num == fieldRequestID && f.Typ == wireVarint {
			n++
			at, end, id = f.At, f.End, uint32(f.V)
		}
	}
	return n, at, end, id, nil
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
