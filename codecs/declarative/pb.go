package declarative

import (
	"errors"

	"github.com/metaproxy/metaproxy/internal/pbwire"
)

// Protobuf regions are read and written with internal/pbwire: in place,
// never allocating.

// Protobuf wire types.
const (
	wireVarint  = pbwire.Varint
	wireFixed64 = pbwire.Fixed64
	wireBytes   = pbwire.Bytes
	wireFixed32 = pbwire.Fixed32
)

var (
	errTruncated   = errors.New("protobuf: truncated field")
	errVarint      = errors.New("protobuf: varint overflows 64 bits")
	errFieldNumber = errors.New("protobuf: invalid field number")
	errWireType    = errors.New("protobuf: invalid wire type")
	errGroup       = errors.New("protobuf: unbalanced or too deeply nested group")
	errUTF8        = errors.New("protobuf: string field is not valid UTF-8")

	pbErrors = pbwire.Errors{Truncated: errTruncated, Varint: errVarint, FieldNumber: errFieldNumber, WireType: errWireType, Group: errGroup, UTF8: errUTF8}
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
type field = pbwire.Field

func readVarint(b []byte, p int) (uint64, int, error) { return pbwire.ReadVarint(b, p, &pbErrors) }

// mapEntry reads a map<string, string|bytes> entry: the last key and
// value fields win, others are skipped. Keys (and string values) must be
// valid UTF-8, every occurrence, as protobuf-go requires.
func mapEntry(b []byte, stringValue bool) (key, value []byte, err error) {
	return pbwire.MapEntry(b, &pbErrors, stringValue)
}

// appendScalar appends field num of type t holding v.
func appendScalar(dst []byte, num int32, t pbType, v uint64) []byte {
	w := t.wire()
	dst = pbwire.AppendVarint(dst, uint64(num)<<3|uint64(w))
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
	return pbwire.AppendVarint(dst, v)
}
