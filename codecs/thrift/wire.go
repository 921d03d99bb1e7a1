package thrift

import (
	"encoding/binary"
	"errors"
)

// Transport is the Thrift transport, the layer that delimits messages.
type Transport uint8

// Transports. TransportAuto is only a configuration value: every decoded
// message has a concrete transport.
const (
	TransportAuto     Transport = iota
	TransportFramed             // 4-byte big-endian length, then the message
	TransportUnframed           // the bare message ("buffered"); its end is found by walking it
	TransportHeader             // THeader: framed, with info headers and an inner protocol id
	// TransportFramedHeader is THeader inside a framed transport: every
	// THeader frame behind a second 4-byte length, what Apache's clients
	// write with a THeaderProtocol over a TFramedTransport (--transport
	// framed --protocol header).
	TransportFramedHeader
)

var transportNames = [...]string{"auto", "framed", "unframed", "header", "framed_header"}

func (t Transport) String() string {
	if int(t) < len(transportNames) {
		return transportNames[t]
	}
	return "invalid"
}

// Protocol is the Thrift protocol, the encoding of the message itself.
type Protocol uint8

// Protocols. ProtocolBinary covers both the strict encoding (a version word
// first) and the old non-strict one; the codec tells them apart per message.
const (
	ProtocolAuto Protocol = iota
	ProtocolBinary
	ProtocolCompact
)

var protocolNames = [...]string{"auto", "binary", "compact"}

func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return "invalid"
}

// isHeader reports whether t carries THeader frames, bare or framed.
func (t Transport) isHeader() bool { return t == TransportHeader || t == TransportFramedHeader }

// Variant returns the codec.Message.Variant of messages with transport t and
// protocol p: t<<4 | p. Both must be concrete (not auto).
func Variant(t Transport, p Protocol) uint16 { return uint16(t)<<4 | uint16(p) }

// SplitVariant is the inverse of Variant. ok is false for values that are not
// the variant of a concrete transport and protocol.
func SplitVariant(v uint16) (t Transport, p Protocol, ok bool) {
	t, p = Transport(v>>4), Protocol(v&0xf)
	ok = v>>8 == 0 && t >= TransportFramed && t <= TransportFramedHeader && p >= ProtocolBinary && p <= ProtocolCompact
	return t, p, ok
}

// Thrift message types.
const (
	msgCall      = 1
	msgReply     = 2
	msgException = 3
	msgOneway    = 4
)

// Wire constants of the binary and compact protocols and of THeader.
const (
	binaryVersionMask = 0xffff0000
	binaryVersion1    = 0x80010000

	compactProtocolID  = 0x82
	compactVersion     = 1
	compactVersionMask = 0x1f
	compactTypeShift   = 5

	headerMagic      = 0x0fff
	headerFixedSize  = 14 // length, magic, flags, sequence id, header words
	headerMaxFrame   = 0x3fffffff
	maxLength        = 0x7fffffff // the largest frame length: Apache's libraries read longer ones as negative
	headerProtoBin   = 0
	headerProtoComp  = 2
	headerInfoKV     = 1
	headerMaxWords   = 0xffff
	defaultMaxFrame  = 16384000 // Apache Thrift's DEFAULT_MAX_FRAME_SIZE
	maxNestingDepth  = 64       // Apache Thrift's DEFAULT_RECURSION_DEPTH
	maxVarint32Bytes = 5
	maxVarint64Bytes = 10
)

// Value types, common to both protocols (the wire ids differ).
const (
	tStop = iota
	tBool
	tByte
	tI16
	tI32
	tI64
	tDouble
	tString
	tStruct
	tMap
	tSet
	tList
	tUUID
	tInvalid
)

// binaryTypes maps binary-protocol type ids to value types.
var binaryTypes = [...]uint8{
	0: tStop, 1: tInvalid, 2: tBool, 3: tByte, 4: tDouble, 5: tInvalid, 6: tI16, 7: tInvalid,
	8: tI32, 9: tInvalid, 10: tI64, 11: tString, 12: tStruct, 13: tMap, 14: tSet, 15: tList, 16: tUUID,
}

// compactTypes maps compact-protocol type nibbles to value types. 1 and 2
// are the booleans true and false.
var compactTypes = [16]uint8{
	0: tStop, 1: tBool, 2: tBool, 3: tByte, 4: tI16, 5: tI32, 6: tI64, 7: tDouble,
	8: tString, 9: tList, 10: tSet, 11: tMap, 12: tStruct, 13: tUUID, 14: tInvalid, 15: tInvalid,
}

func binaryType(id byte) uint8 {
	if int(id) < len(binaryTypes) {
		return binaryTypes[id]
	}
	return tInvalid
}

// errShort reports that more bytes are needed. It never leaves the package.
var errShort = errors.New("thrift: short buffer")

// errVarint reports a varint longer than its type allows.
var errVarint = errors.New("varint too long")

// uvarint reads an unsigned varint of at most maxBytes bytes at b[off:]. It
// returns errShort if b ends inside the varint.
func uvarint(b []byte, off, maxBytes int) (v uint64, n int, err error) {
	for i := 0; i < maxBytes; i++ {
		if off+i >= len(b) {
			return 0, 0, errShort
		}
		c := b[off+i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errVarint
}

// appendUvarint appends v as an unsigned varint.
func appendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

func zigzag32(v int32) uint64 { return uint64(uint32((v << 1) ^ (v >> 31))) }

func unzigzag(v uint64) int64 { return int64(v>>1) ^ -int64(v&1) }

func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
