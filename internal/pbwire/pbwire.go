// Package pbwire is a small allocation-free protobuf wire reader and
// writer for codecs that read a few fields of a message in place (the tRPC
// codec's header, the declarative codec's protobuf regions): values point
// into the message. It accepts what google.golang.org/protobuf's Unmarshal
// accepts (unknown fields of every wire type, groups included; non-minimal
// varints; repeated scalars, of which the last wins) and rejects what it
// rejects (truncated fields, varints over 10 bytes, field number 0 or over
// 2^29-1, unmatched end groups, wire types 6 and 7).
package pbwire

import (
	"math"
	"unicode/utf8"
)

// Wire types.
const (
	Varint     = 0
	Fixed64    = 1
	Bytes      = 2
	StartGroup = 3
	EndGroup   = 4
	Fixed32    = 5

	MaxFieldNumber = 1<<29 - 1 // the largest field number
	// maxGroupDepth bounds nested groups in unknown fields (protobuf-go's
	// own limit is 10000).
	maxGroupDepth = 100
)

// Errors are the errors a reader returns, preallocated by each codec in
// its own error type so that a malformed message costs no allocation.
type Errors struct {
	Truncated, Varint, FieldNumber, WireType, Group error
	UTF8                                            error // a string that is not valid UTF-8
}

// Field is one field of a message, as Next reads it.
type Field struct {
	Num   int32
	Typ   uint8
	V     uint64 // a varint field's value, or a fixed one's (little endian)
	B     []byte // the payload of a length-delimited field
	Start int    // the field's first byte (its tag) in the message
	At    int    // its value's first byte, just past the tag
	End   int    // just past the field
}

// ReadVarint reads the varint at b[p:] and returns it and the position
// after it.
func ReadVarint(b []byte, p int, e *Errors) (uint64, int, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if p >= len(b) {
			return 0, p, e.Truncated
		}
		c := b[p]
		p++
		if i == 9 && c > 1 {
			return 0, p, e.Varint
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, p, nil
		}
	}
	return 0, p, e.Varint
}

// readTag reads a field's tag at b[p:]. Inside a group (depth > 0) field
// numbers up to 2^31-1 pass, as in protobuf-go's skipping of groups.
func readTag(b []byte, p, depth int, e *Errors) (int32, uint8, int, error) {
	t, q, err := ReadVarint(b, p, e)
	if err != nil {
		return 0, 0, q, err
	}
	n, limit := t>>3, uint64(MaxFieldNumber)
	if depth > 0 {
		limit = math.MaxInt32
	}
	if n < 1 || n > limit {
		return 0, 0, q, e.FieldNumber
	}
	return int32(n), uint8(t & 7), q, nil
}

// Next reads the field that starts at b[p:] of a message into f.
func (f *Field) Next(b []byte, p int, e *Errors) error { return f.read(b, p, 0, e) }

func (f *Field) read(b []byte, p, depth int, e *Errors) (err error) {
	f.Start, f.B, f.V = p, nil, 0
	if p < len(b) && b[p] < 0x80 && b[p] >= 8 {
		// A one-byte tag, the common case.
		f.Num, f.Typ = int32(b[p]>>3), b[p]&7
		p++
	} else if f.Num, f.Typ, p, err = readTag(b, p, depth, e); err != nil {
		f.End = p
		return err
	}
	f.At = p
	switch f.Typ {
	case Varint:
		if p < len(b) && b[p] < 0x80 {
			f.V, p = uint64(b[p]), p+1
		} else {
			f.V, p, err = ReadVarint(b, p, e)
		}
	case Fixed64, Fixed32:
		n := 8
		if f.Typ == Fixed32 {
			n = 4
		}
		if len(b)-p < n {
			err = e.Truncated
			break
		}
		for i := n - 1; i >= 0; i-- {
			f.V = f.V<<8 | uint64(b[p+i])
		}
		p += n
	case Bytes:
		var n uint64
		if p < len(b) && b[p] < 0x80 {
			n, p = uint64(b[p]), p+1
		} else if n, p, err = ReadVarint(b, p, e); err != nil {
			break
		}
		if n > uint64(len(b)-p) {
			err = e.Truncated
			break
		}
		f.B = b[p : p+int(n)]
		p += int(n)
	case StartGroup:
		p, err = skipGroup(b, p, f.Num, depth+1, e)
	default:
		err = e.WireType
	}
	f.End = p
	return err
}

// skipGroup skips the fields of a group up to its end-group tag for num.
func skipGroup(b []byte, p int, num int32, depth int, e *Errors) (int, error) {
	if depth > maxGroupDepth {
		return p, e.Group
	}
	for {
		n, typ, q, err := readTag(b, p, depth, e)
		if err != nil {
			return q, err
		}
		if typ == EndGroup {
			if n != num {
				return q, e.Group
			}
			return q, nil
		}
		var f Field
		if err := f.read(b, p, depth, e); err != nil {
			return f.End, err
		}
		p = f.End
	}
}

// VarintLen is the size of v as a varint.
func VarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// AppendVarint appends v as a varint.
func AppendVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// AppendBytesField appends field num with payload s.
func AppendBytesField[S ~string | ~[]byte](dst []byte, num int32, s S) []byte {
	dst = AppendVarint(dst, uint64(num)<<3|Bytes)
	dst = AppendVarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// EntryLen is the size of a map entry's payload holding key and value.
func EntryLen(key, value string) int {
	return 1 + VarintLen(uint64(len(key))) + len(key) + 1 + VarintLen(uint64(len(value))) + len(value)
}

// AppendEntry appends map field num holding the entry key → value.
func AppendEntry(dst []byte, num int32, key, value string) []byte {
	dst = AppendVarint(dst, uint64(num)<<3|Bytes)
	dst = AppendVarint(dst, uint64(EntryLen(key, value)))
	dst = AppendBytesField(dst, 1, key)
	return AppendBytesField(dst, 2, value)
}

// MapEntry reads a map entry message whose key is a string (field 1) and
// whose value (field 2) is length-delimited: the last key and value fields
// win, others are skipped. Every occurrence of the key, and of the value
// when stringValue, must be valid UTF-8 (protobuf-go checks each, not only
// the one that wins), or MapEntry returns e.UTF8.
func MapEntry(b []byte, e *Errors, stringValue bool) (key, value []byte, err error) {
	var f Field
	for p := 0; p < len(b); p = f.End {
		if err := f.Next(b, p, e); err != nil {
			return nil, nil, err
		}
		if f.Typ != Bytes {
			continue
		}
		switch {
		case f.Num == 1:
			key = f.B
		case f.Num == 2:
			value = f.B
		default:
			continue
		}
		if (f.Num == 1 || stringValue) && !utf8.Valid(f.B) {
			return nil, nil, e.UTF8
		}
	}
	return key, value, nil
}
