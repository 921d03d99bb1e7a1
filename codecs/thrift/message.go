package thrift

import (
	"encoding/binary"

	"github.com/metaproxy/metaproxy/codec"
)

const protocolName = "thrift"

func malformed(format string, args ...any) error {
	return codec.Malformed(protocolName, format, args...)
}

// head is the start of a Thrift message: everything before the argument or
// result struct. Offsets are relative to the start of the message.
type head struct {
	nameOff, nameLen int
	typ              uint8
	seq              uint32
	seqOff, seqLen   int
	body             int // offset of the struct
}

// parseHead parses the message head at the start of m in protocol p. It
// returns errShort if m ends inside the head, and an error for a head that
// is malformed or announces a name longer than limit bytes.
func parseHead(m []byte, p Protocol, limit int) (h head, err error) {
	if p == ProtocolCompact {
		h, err = parseCompactHead(m, limit)
	} else {
		h, err = parseBinaryHead(m, limit)
	}
	if err == nil && (h.typ < msgCall || h.typ > msgOneway) {
		return h, malformed("unknown message type %d", h.typ)
	}
	return h, err
}

// parseBinaryHead parses a strict (version word first) or non-strict (name
// first) binary-protocol message head.
func parseBinaryHead(m []byte, limit int) (h head, err error) {
	if len(m) < 4 {
		return h, errShort
	}
	w := be32(m)
	if int32(w) < 0 {
		if w&binaryVersionMask != binaryVersion1 {
			return h, malformed("bad binary protocol version %#08x", w)
		}
		h.typ = uint8(w)
		if len(m) < 8 {
			return h, errShort
		}
		h.nameOff = 8
		w = be32(m[4:])
	} else {
		h.nameOff = 4
	}
	if int32(w) < 0 || int(w) > limit {
		return h, malformed("method name of %d bytes", int32(w))
	}
	h.nameLen = int(w)
	h.seqOff = h.nameOff + h.nameLen
	if h.nameOff == 4 { // non-strict: the type byte follows the name
		if len(m) <= h.seqOff {
			return h, errShort
		}
		h.typ = m[h.seqOff]
		h.seqOff++
	}
	h.seqLen = 4
	h.body = h.seqOff + 4
	if len(m) < h.body {
		return h, errShort
	}
	h.seq = be32(m[h.seqOff:])
	return h, nil
}

// parseCompactHead parses a compact-protocol message head: protocol id,
// version and type, varint sequence id, name.
func parseCompactHead(m []byte, limit int) (h head, err error) {
	if len(m) < 2 {
		return h, errShort
	}
	if m[0] != compactProtocolID || m[1]&compactVersionMask != compactVersion {
		return h, malformed("not a compact protocol message (% x)", m[:2])
	}
	h.typ = m[1] >> compactTypeShift
	h.seqOff = 2
	seq, n, err := uvarint(m, h.seqOff, maxVarint32Bytes)
	if err != nil {
		return h, varintErr(err, "sequence id")
	}
	if seq > 0xffffffff {
		return h, malformed("sequence id %d out of range", seq)
	}
	h.seq, h.seqLen = uint32(seq), n
	nameLen, k, err := uvarint(m, h.seqOff+n, maxVarint32Bytes)
	if err != nil {
		return h, varintErr(err, "name length")
	}
	if nameLen > uint64(limit) {
		return h, malformed("method name of %d bytes", nameLen)
	}
	h.nameOff = h.seqOff + n + k
	h.nameLen = int(nameLen)
	h.body = h.nameOff + h.nameLen
	if len(m) < h.body {
		return h, errShort
	}
	return h, nil
}

// varintErr passes nil and errShort through and turns other varint errors
// into protocol errors naming what was read.
func varintErr(err error, what string) error {
	if err == nil || err == errShort {
		return err
	}
	return malformed("%s: %v", what, err)
}

// replyFailed reports whether the result struct at m[body:] starts with a
// field other than 0, the success field: a declared exception.
func replyFailed(m []byte, body int, p Protocol) (bool, error) {
	if len(m) <= body {
		return false, malformed("reply without a result struct")
	}
	b := m[body]
	if p == ProtocolBinary {
		if b == 0 {
			return false, nil // void success
		}
		if len(m) < body+3 {
			return false, malformed("truncated result field")
		}
		return binary.BigEndian.Uint16(m[body+1:]) != 0, nil
	}
	if b&0x0f == 0 {
		return false, nil
	}
	if b>>4 != 0 {
		return true, nil // a delta from field 0 names a field above 0
	}
	id, _, err := uvarint(m, body+1, 3)
	if err != nil {
		return false, malformed("result field id: %v", err)
	}
	return unzigzag(id) != 0, nil
}
