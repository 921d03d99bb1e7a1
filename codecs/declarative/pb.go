package declarative

import (
	"errors"
	"math"
)

// An allocation-free protobuf wire reader, as in codecs/trpc: fields are
// read in place and values point into the frame. It accepts what
// protobuf-go's Unmarshal accepts (unknown fields of every wire type,
// groups, non-minimal varints, repeated scalars of which the last wins)
// and rejects truncated fields, overlong varints, field number 0,
// unbalanced groups and wire types 6 and 7.

// Protobuf wire types.
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5

	maxFieldNumber = 1<<29 - 1
	maxGroupDepth  = 100
)

var (
	errTruncated   = errors.New("protobuf: truncated field")
	errVarint      = errors.New("protobuf: varint overflows 64 bits")
	errFieldNumber = errors.New("protobuf: invalid field number")
	errWireType    = errors.New("protobuf: invalid wire type")
	errGroup       = errors.New("protobuf: unbalanced or too deeply nested group")
	errUTF8        = errors.New("protobuf: string field is not valid UTF-8")
)

// pbType is a protobuf field type of a description.
type pbType uint8

const (
	tUint32 pbType = iota
	tUint64
	tInt32
	tInt64
	tSint32
	tSint64
	tBool
	tEnum
	tFixed32
	tFixed64
	tSfixed32
	tSfixed64
	tString
	tBytes
	tMapString // map<string,string>
	tMapBytes  // map<string,bytes>
)

var pbTypes = map[string]pbType{
	"uint32": tUint32, "uint64": tUint64, "int32": tInt32, "int64": tInt64,
	"sint32": tSint32, "sint64": tSint64, "bool": tBool, "enum": tEnum,
	"fixed32": tFixed32, "fixed64": tFixed64, "sfixed32": tSfixed32, "sfixed64": tSfixed64,
	"string": tString, "bytes": tBytes,
	"map<string,string>": tMapString, "map<string,bytes>": tMapBytes,
}

func (t pbType) wire() uint8 {
	switch t {
	case tFixed32, tSfixed32:
		return wireFixed32
	case tFixed64, tSfixed64:
		return wireFixed64
	case tString, tBytes, tMapString, tMapBytes:
		return wireBytes
	}
	return wireVarint
}

func (t pbType) integer() bool { return t <= tSfixed64 }
func (t pbType) isMap() bool   { return t == tMapString || t == tMapBytes }
func (t pbType) signed() bool {
	return t == tInt32 || t == tInt64 || t == tSint32 || t == tSint64 || t == tEnum || t == tSfixed32 || t == tSfixed64
}

// value converts a field's raw wire value as protobuf-go reads type t.
func (t pbType) value(raw uint64) uint64 {
	switch t {
	case tUint32, tFixed32:
		return uint64(uint32(raw))
	case tInt32, tEnum, tSfixed32:
		return uint64(int64(int32(raw)))
	case tSint32:
		u := uint32(raw)
		return uint64(int64(int32(u>>1) ^ -int32(u&1)))
	case tSint64:
		return uint64(int64(raw>>1) ^ -int64(raw&1))
	case tBool:
		if raw != 0 {
			return 1
		}
	}
	return raw
}

// field is one field of a protobuf message.
type field struct {
	num   int32
	typ   uint8
	v     uint64 // varint or fixed value
	b     []byte // payload of a length-delimited field
	start int    // the tag's first byte
	at    int    // the value's first byte
	end   int    // just past the field
}

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

func readTag(b []byte, p, depth int) (int32, uint8, int, error) {
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

// next reads the field at b[p:] into f.
func (f *field) next(b []byte, p int) error { return f.read(b, p, 0) }

func (f *field) read(b []byte, p, depth int) (err error) {
	f.start, f.b, f.v = p, nil, 0
	if p < len(b) && b[p] < 0x80 && b[p] >= 8 {
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
		f.v = readUint(b[p:p+n], true)
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

// mapEntry reads a map<string, string|bytes> entry: the last key and
// value fields win, others are skipped. Keys (and string values) must be
// valid UTF-8, as protobuf-go requires.
func mapEntry(b []byte, stringValue bool) (key, value []byte, err error) {
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
	if !validUTF8(key) || stringValue && !validUTF8(value) {
		return nil, nil, errUTF8
	}
	return key, value, nil
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// appendScalar appends field num of type t holding v.
func appendScalar(dst []byte, num int32, t pbType, v uint64) []byte {
	w := t.wire()
	dst = appendVarint(dst, uint64(num)<<3|uint64(w))
	switch w {
	case wireFixed32:
		return append(dst, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	case wireFixed64:
		for i := 0; i < 8; i++ {
			dst = append(dst, byte(v>>(8*i)))
		}
		return dst
	}
	switch t {
	case tSint32:
		v = uint64(uint32(int32(v)<<1 ^ int32(v)>>31))
	case tSint64:
		v = uint64(int64(v)<<1 ^ int64(v)>>63)
	case tUint32:
		v = uint64(uint32(v))
	}
	return appendVarint(dst, v)
}

func appendBytesField[S ~string | ~[]byte](dst []byte, num int32, s S) []byte {
	dst = appendVarint(dst, uint64(num)<<3|wireBytes)
	dst = appendVarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendEntry appends map field num holding key → value.
func appendEntry(dst []byte, num int32, key, value string) []byte {
	n := 1 + varintLen(uint64(len(key))) + len(key) + 1 + varintLen(uint64(len(value))) + len(value)
	dst = appendVarint(dst, uint64(num)<<3|wireBytes)
	dst = appendVarint(dst, uint64(n))
	dst = appendBytesField(dst, 1, key)
	return appendBytesField(dst, 2, value)
}
