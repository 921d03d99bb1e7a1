package dubbo

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/metaproxy/metaproxy/codec"
)

// maxDepth bounds the nesting of lists, maps and objects the skipper
// follows, so that hostile input cannot grow the stack without limit.
const maxDepth = 256

// reader walks the Hessian 2 values of one message body without building
// them. It reads strings (aliasing the body when it can), ints and map
// entries, and skips every other value. Class definitions and the count of
// referenceable values (lists, maps, objects) are tracked per body, as a
// Hessian 2 stream scopes them per message in Dubbo.
//
// Every method takes a position in b and returns the position after the
// value; no method reads outside b or panics, whatever b holds.
type reader struct {
	b       []byte
	classes []int32 // field count of each class definition, in order
	refs    int     // lists, maps and objects seen: refs must be below this
	depth   int
}

// reset prepares r for the body b, keeping the class table's capacity.
func (r *reader) reset(b []byte) {
	r.b = b
	r.classes = r.classes[:0]
	r.refs = 0
	r.depth = 0
}

// fail returns the error for malformed Hessian 2 at p.
func (r *reader) fail(p int, reason string) error {
	return &codec.ProtocolError{Protocol: Name, Reason: fmt.Sprintf("hessian2 body offset %d: %s", p, reason)}
}

// need checks that n bytes are readable at p. It is small enough to
// inline: the error is built out of line.
func (r *reader) need(p, n int) error {
	if p < 0 || n > len(r.b)-p {
		return r.truncated(p)
	}
	return nil
}

//go:noinline
func (r *reader) truncated(p int) error { return r.fail(p, "truncated value") }

// asciiAt reports whether the n bytes of b at start (which are in b) are
// all ASCII, eight bytes at a time; a tail shorter than a word is read
// as one word where b has the bytes after it.
func asciiAt(b []byte, start, n int) bool {
	const high = 0x8080808080808080
	i, end := start, start+n
	for ; end-i >= 8; i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&high != 0 {
			return false
		}
	}
	r := end - i
	if r == 0 {
		return true
	}
	if len(b)-i >= 8 {
		return binary.LittleEndian.Uint64(b[i:])&high&(1<<(8*uint(r))-1) == 0
	}
	for ; i < end; i++ {
		if b[i] >= 0x80 {
			return false
		}
	}
	return true
}

// shortASCII reads the common string at p: one final chunk of a short
// (tag 0x00-0x1f) or compact (0x30-0x33) string, all ASCII, so its units
// are its bytes. ok is false for any other string, which the general path
// reads.
func (r *reader) shortASCII(p int) (start, end int, ok bool) {
	b := r.b
	if p < 0 || p >= len(b) {
		return 0, 0, false
	}
	switch t := b[p]; {
	case t <= 0x1f:
		start, end = p+1, p+1+int(t)
	case t >= 0x30 && t <= 0x33 && p+1 < len(b):
		start = p + 2
		end = start + (int(t-0x30)<<8 | int(b[p+1]))
	default:
		return 0, 0, false
	}
	if end > len(b) || !asciiAt(b, start, end-start) {
		return 0, 0, false
	}
	return start, end, true
}

// int32At reads an int in any of its four encodings.
func (r *reader) int32At(p int) (int32, int, error) {
	if err := r.need(p, 1); err != nil {
		return 0, p, err
	}
	b := r.b
	t := b[p]
	switch {
	case t >= 0x80 && t <= 0xbf:
		return int32(t) - 0x90, p + 1, nil
	case t >= 0xc0 && t <= 0xcf:
		if err := r.need(p, 2); err != nil {
			return 0, p, err
		}
		return (int32(t)-0xc8)<<8 | int32(b[p+1]), p + 2, nil
	case t >= 0xd0 && t <= 0xd7:
		if err := r.need(p, 3); err != nil {
			return 0, p, err
		}
		return (int32(t)-0xd4)<<16 | int32(b[p+1])<<8 | int32(b[p+2]), p + 3, nil
	case t == 'I':
		if err := r.need(p, 5); err != nil {
			return 0, p, err
		}
		return int32(binary.BigEndian.Uint32(b[p+1:])), p + 5, nil
	}
	return 0, p, r.fail(p, fmt.Sprintf("tag 0x%02x is not an int", t))
}

// count reads a non-negative int used as a length or an index.
func (r *reader) count(p int) (int, int, error) {
	v, q, err := r.int32At(p)
	if err == nil && v < 0 {
		err = r.fail(p, "negative length or index")
	}
	return int(v), q, err
}

// isStringTag reports whether t starts a string chunk.
func isStringTag(t byte) bool {
	return t <= 0x1f || (t >= 0x30 && t <= 0x33) || t == 'S' || t == 'R'
}

// chunk reads the header of a string chunk at p: where its characters
// start, how many UTF-16 units it holds and whether it is the last chunk.
func (r *reader) chunk(p int) (start, units int, final bool, err error) {
	if err = r.need(p, 1); err != nil {
		return
	}
	b := r.b
	switch t := b[p]; {
	case t <= 0x1f:
		return p + 1, int(t), true, nil
	case t >= 0x30 && t <= 0x33:
		if err = r.need(p, 2); err != nil {
			return
		}
		return p + 2, int(t-0x30)<<8 | int(b[p+1]), true, nil
	case t == 'S' || t == 'R':
		if err = r.need(p, 3); err != nil {
			return
		}
		return p + 3, int(binary.BigEndian.Uint16(b[p+1:])), t == 'S', nil
	default:
		return p, 0, false, r.fail(p, fmt.Sprintf("tag 0x%02x is not a string", t))
	}
}

// chars walks n UTF-16 units of Hessian's modified UTF-8 from p and
// returns where they end and whether they hold surrogate halves (characters
// beyond U+FFFF, which Hessian writes as two 3-byte halves). On error it
// returns p.
func (r *reader) chars(p, n int) (end int, surrogates bool, err error) {
	b := r.b
	q := p
	// ASCII runs, eight bytes at a time: one byte per unit.
	for n >= 8 && len(b)-q >= 8 && binary.LittleEndian.Uint64(b[q:])&0x8080808080808080 == 0 {
		q, n = q+8, n-8
	}
	for ; n > 0; n-- {
		if q >= len(b) {
			return p, false, r.fail(q, "truncated string")
		}
		switch c := b[q]; {
		case c < 0x80:
			q++
		case c&0xe0 == 0xc0:
			q += 2
		case c&0xf0 == 0xe0:
			if c == 0xed && q+1 < len(b) && b[q+1] >= 0xa0 {
				surrogates = true
			}
			q += 3
		default:
			return p, false, r.fail(q, fmt.Sprintf("bad utf-8 lead byte 0x%02x in string", c))
		}
	}
	if q > len(b) {
		return p, false, r.fail(len(b), "truncated string")
	}
	return q, surrogates, nil
}

// str reads a string at p; null reads as "" with null set. A string held in
// one chunk without surrogates aliases r.b; others are copied and
// converted to UTF-8.
func (r *reader) str(p int) (s string, next int, null bool, err error) {
	if p < len(r.b) && r.b[p] == 'N' {
		return "", p + 1, true, nil
	}
	if start, end, ok := r.shortASCII(p); ok {
		return r.alias(start, end), end, false, nil
	}
	start, units, final, err := r.chunk(p)
	if err != nil {
		return "", p, false, err
	}
	end, surrogates, err := r.chars(start, units)
	if err != nil {
		return "", p, false, err
	}
	if final && !surrogates {
		return r.alias(start, end), end, false, nil
	}
	s, next, err = r.strSlow(p)
	return s, next, false, err
}

// alias returns r.b[start:end] as a string sharing r.b's memory.
func (r *reader) alias(start, end int) string {
	if end == start {
		return ""
	}
	return unsafe.String(&r.b[start], end-start)
}

// strSlow reads a chunked or non-BMP string into new memory.
func (r *reader) strSlow(p int) (string, int, error) {
	var raw []byte
	for {
		start, units, final, err := r.chunk(p)
		if err != nil {
			return "", p, err
		}
		end, _, err := r.chars(start, units)
		if err != nil {
			return "", p, err
		}
		raw = append(raw, r.b[start:end]...)
		p = end
		if final {
			break
		}
	}
	out := joinSurrogates(raw)
	if len(out) == 0 {
		return "", p, nil
	}
	return unsafe.String(&out[0], len(out)), p, nil
}

// joinSurrogates rewrites, in place, each pair of 3-byte surrogate halves
// in b as the 4-byte UTF-8 form of the character they encode. Unpaired
// halves are kept as they are.
func joinSurrogates(b []byte) []byte {
	w := 0
	for i := 0; i < len(b); {
		if i+6 <= len(b) && b[i] == 0xed && b[i+1]&0xf0 == 0xa0 && b[i+3] == 0xed && b[i+4]&0xf0 == 0xb0 {
			hi := rune(b[i+1]&0x0f)<<6 | rune(b[i+2]&0x3f)
			lo := rune(b[i+4]&0x0f)<<6 | rune(b[i+5]&0x3f)
			c := 0x10000 + hi<<10 + lo
			b[w] = byte(0xf0 | c>>18)
			b[w+1] = byte(0x80 | (c>>12)&0x3f)
			b[w+2] = byte(0x80 | (c>>6)&0x3f)
			b[w+3] = byte(0x80 | c&0x3f)
			w, i = w+4, i+6
			continue
		}
		b[w] = b[i]
		w, i = w+1, i+1
	}
	return b[:w]
}

// skipString skips a string (all its chunks) at p.
func (r *reader) skipString(p int) (int, error) {
	if _, end, ok := r.shortASCII(p); ok {
		return end, nil
	}
	for {
		start, units, final, err := r.chunk(p)
		if err != nil {
			return p, err
		}
		if p, _, err = r.chars(start, units); err != nil || final {
			return p, err
		}
	}
}

// skipBinary skips binary data (all its chunks) at p.
func (r *reader) skipBinary(p int) (int, error) {
	for {
		if err := r.need(p, 1); err != nil {
			return p, err
		}
		var start, n int
		final := true
		switch t := r.b[p]; {
		case t >= 0x20 && t <= 0x2f:
			start, n = p+1, int(t-0x20)
		case t >= 0x34 && t <= 0x37:
			if err := r.need(p, 2); err != nil {
				return p, err
			}
			start, n = p+2, int(t-0x34)<<8|int(r.b[p+1])
		case t == 'A' || t == 'B':
			if err := r.need(p, 3); err != nil {
				return p, err
			}
			start, n, final = p+3, int(binary.BigEndian.Uint16(r.b[p+1:])), t == 'B'
		default:
			return p, r.fail(p, fmt.Sprintf("tag 0x%02x is not a binary chunk", t))
		}
		if err := r.need(start, n); err != nil {
			return p, err
		}
		if p = start + n; final {
			return p, nil
		}
	}
}

// skipType skips the type of a typed list or map: a string or a type index.
func (r *reader) skipType(p int) (int, error) {
	if p < len(r.b) && isStringTag(r.b[p]) {
		return r.skipString(p)
	}
	_, p, err := r.count(p)
	return p, err
}

// classDef reads a class definition at p ('C' name field-count names...)
// and records its field count.
func (r *reader) classDef(p int) (int, error) {
	p, err := r.skipString(p + 1)
	if err != nil {
		return p, err
	}
	fields, p, err := r.count(p)
	if err != nil {
		return p, err
	}
	for i := 0; i < fields; i++ {
		if p, err = r.skipString(p); err != nil {
			return p, err
		}
	}
	r.classes = append(r.classes, int32(fields))
	return p, nil
}

// isCompound reports whether the value starting with tag t is a list, map
// or object (or a class definition preceding one): a value that takes a
// slot in the reference table.
func isCompound(t byte) bool {
	return (t >= 0x55 && t <= 0x58) || t >= 0x60 && t <= 0x7f || t == 'M' || t == 'H' || t == 'O' || t == 'C'
}
