package trpc

import (
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/internal/pbwire"
)

// The few header fields the codec needs are read and written with
// internal/pbwire: in place, never allocating.

// Wire types.
const (
	wireVarint = pbwire.Varint
	wireBytes  = pbwire.Bytes
)

// Preallocated errors: a malformed header costs no allocation either.
var (
	errTruncated   = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: truncated field"}
	errVarint      = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: varint overflows 64 bits"}
	errFieldNumber = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: invalid field number"}
	errWireType    = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: invalid wire type"}
	errGroup       = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: unbalanced or too deeply nested group"}

	pbErrors = pbwire.Errors{Truncated: errTruncated, Varint: errVarint, FieldNumber: errFieldNumber, WireType: errWireType, Group: errGroup, UTF8: errKeyUTF8}
)

// field is one field of a protobuf message, as read by read.
type field = pbwire.Field

// readVarint reads the varint at b[p:] and returns it and the position after it.
func readVarint(b []byte, p int) (uint64, int, error) { return pbwire.ReadVarint(b, p, &pbErrors) }

// mapEntry reads a map<string, bytes> entry (trans_info): the last key
// and value fields win, other fields are skipped. Every key must be valid
// UTF-8, as protobuf-go requires of proto3 strings.
func mapEntry(b []byte) (key, value []byte, err error) { return pbwire.MapEntry(b, &pbErrors, false) }

var errKeyUTF8 = &codec.ProtocolError{Protocol: Name, Reason: "protobuf header: trans_info key is not valid UTF-8"}

// appendVarintField appends field num with varint value v.
func appendVarintField(dst []byte, num int32, v uint64) []byte {
	return pbwire.AppendVarint(pbwire.AppendVarint(dst, uint64(num)<<3|wireVarint), v)
}
