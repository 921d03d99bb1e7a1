package trpc

import (
	"math"
	"unicode/utf8"

	"github.com/metaproxy/metaproxy/codec"
)

// A small protobuf wire reader and writer for the few header fields the
// codec needs. It never allocates: fields are read in place and values
// point into the message. It accepts what google.golang.org/protobuf's
// Unmarshal accepts (unknown fields of every wire type, groups included;
// non-minimal varints; repeated scalars, of which the last wins) and
// rejects what it rejects (truncated fields, varints over 10 bytes, field
// number 0 or over 2^29-1, unmatched end groups, wire types 6 and 7).

// Protobuf wire types.
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5

	maxFieldNumber = 1<<29 - 1
	// maxGroupDepth bounds nested groups in unknown fields (protobuf-go's
	// own limit is 10000; no tRPC peer sends groups at all).
	maxGroupDepth = 100
)

// Preallocated errors: a malformed header costs no allocation either.
var (
	errTruncated   = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: truncated field"}
	errVarint      = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: varint overflows 64 bits"}
	errFieldNumber = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: invalid field number"}
	errWireType    = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: invalid wire type"}
	errGroup       = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: unbalanced or too deeply nested group"}
)

// field is one field of a protobuf message, as read by read.
type field struct {
	num   int32
	typ   uint8
	v     uint64 // the value of a varint field
	b     []byte // the payload of a length-delimited field
	start int    // the field's first byte (its tag) in the message
	at    int    // its value's first byte, just past the tag
	end   int    // just past the field
}

// readVarint reads the varint at b[p:] and returns it and the position after it.
func readVarint(b []byte, p int) (uint64, int, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if p >= len(b) {
			return 0, p, errTruncated
		}
		c := b[p]
		p++
		if i == 9 && c > 1 {
			return 0, p, errVarint
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, p, nil
		}
	}
	return 0, p, errVarint
}

// readTag reads a field's tag at b[p:]. Inside a group (depth > 0) field
// numbers up to 2^31-1 pass, as in protobuf-go's skipping of groups.
func readTag(b []byte, p, depth int) (num int32, typ uint8, q int, err error) {
	t, q, err := readVarint(b, p)
	if err != nil {
		return 0, 0, q, err
	}
	n, limit := t>>3, uint64(maxFieldNumber)
	if depth > 0 {
		limit = math.MaxInt32
	}
	if n < 1 || n > limit {
		return 0, 0, q, errFieldNumber
	}
	return int32(n), uint8(t & 7), q, nil
}

// next reads the field that starts at b[p:] of a message into f.
func (f *field) next(b []byte, p int) error { return f.read(b, p, 0) }

// read reads the field at b[p:], depth groups deep, into f.
func (f *field) read(b []byte, p, depth int) (err error) {
	f.start, f.b = p, nil
	if p < len(b) && b[p] < 0x80 && b[p] >= 8 {
		// A one-byte tag, the common case.
		f.num, f.typ = int32(b[p]>>3), b[p]&7
		p++
	} else if f.num, f.typ, p, err = readTag(b, p, depth); err != nil {
		f.end = p
		return err
	}
	f.at = p
	switch f.typ {
	case wireVarint:
		if p < len(b) && b[p] < 0x80 {
			f.v, p = uint64(b[p]), p+1
		} else {
			f.v, p, err = readVarint(b, p)
		}
	case wireFixed64, wireFixed32:
		n := 8
		if f.typ == wireFixed32 {
			n = 4
		}
		if len(b)-p < n {
			err = errTruncated
			break
		}
		p += n
	case wireBytes:
		var n uint64
		if p < len(b) && b[p] < 0x80 {
			n, p = uint64(b[p]), p+1
		} else if n, p, err = readVarint(b, p); err != nil {
			break
		}
		if n > uint64(len(b)-p) {
			err = errTruncated
			break
		}
		f.b = b[p : p+int(n)]
		p += int(n)
	case wireStartGroup:
		p, err = skipGroup(b, p, f.num, depth+1)
	default:
		err = errWireType
	}
	f.end = p
	return err
}

// skipGroup skips the fields of a group up to its end-group tag for num.
func skipGroup(b []byte, p int, num int32, depth int) (int, error) {
	if depth > maxGroupDepth {
		return p, errGroup
	}
	for {
		n, typ, q, err := readTag(b, p, depth)
		if err != nil {
			return q, err
		}
		if typ == wireEndGroup {
			if n != num {
				return q, errGroup
			}
			return q, nil
		}
		var f field
		if err := f.read(b, p, depth); err != nil {
			return f.end, err
		}
		p = f.end
	}
}

// mapEntry reads a map<string, bytes> entry (trans_info): the last key
// and value fields win, other fields are skipped. The key must be valid
// UTF-8, as protobuf-go requires of proto3 strings.
func mapEntry(b []byte) (key, value []byte, err error) {
	var f field
	for p := 0; p < len(b); p = f.end {
		if err := f.next(b, p); err != nil {
			return nil, nil, err
		}
		if f.typ != wireBytes {
			continue
		}
		switch f.num {
		case 1:
			key = f.b
		case 2:
			value = f.b
		}
	}
	if !utf8.Valid(key) {
		return nil, nil, errKeyUTF8
	}
	return key, value, nil
}

var errKeyUTF8 = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: trans_info key is not valid UTF-8"}

// varintLen is the size of v as a varint.
func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendVarint appends v as a varint.
func appendVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// appendVarintField appends field num with varint value v.
func appendVarintField(dst []byte, num int32, v uint64) []byte {
	return appendVarint(appendVarint(dst, uint64(num)<<3|wireVarint), v)
}

// appendBytesField appends field num with payload s.
func appendBytesField[S ~string | ~[]byte](dst []byte, num int32, s S) []byte {
	dst = appendVarint(dst, uint64(num)<<3|wireBytes)
	dst = appendVarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// entryLen is the size of a map entry's payload holding key and value.
func entryLen(key, value string) int {
	return 1 + varintLen(uint64(len(key))) + len(key) + 1 + varintLen(uint64(len(value))) + len(value)
}

// appendEntry appends field num holding the map entry key → value.
func appendEntry(dst []byte, num int32, key, value string) []byte {
	dst = appendVarint(dst, uint64(num)<<3|wireBytes)
	dst = appendVarint(dst, uint64(entryLen(key, value)))
	dst = appendBytesField(dst, 1, key)
	return appendBytesField(dst, 2, value)
}
