package thrift

import (
	"encoding/binary"
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

// A THeader frame (https://github.com/apache/thrift/blob/master/doc/specs/HeaderFormat.md):
//
//	0      4      6      8          12           14              14+4*words
//	length | 0fff | flags | sequence | header words | header section | message
//
// The header section holds, as compact-protocol varints: the protocol id, the
// transform count and ids, then info sections (type 1: a count of key/value
// string pairs), then zero padding to a multiple of four bytes.

// headerFrame locates the parts of a THeader frame.
type headerFrame struct {
	proto   Protocol
	info    int // offset of the first info section
	end     int // end of the header section: the offset of the message
	flags   uint16
	headSeq uint32
}

// parseHeaderFrame parses the fixed part and the header section of the
// THeader frame f, which must be exactly one frame. Transforms (zlib and
// others) are refused: the proxy must read the message to route it.
func parseHeaderFrame(f []byte) (h headerFrame, err error) { return parseHeader(f, true) }

// headerFrameOf returns the THeader frame of frame f of transport t
// (TransportHeader or TransportFramedHeader): f itself, or f without its
// outer length, which must count the rest of f.
func headerFrameOf(f []byte, t Transport) ([]byte, error) {
	if t != TransportFramedHeader {
		return f, nil
	}
	if len(f) < 4 || int(be32(f)) != len(f)-4 {
		return nil, malformed("bad frame length")
	}
	return f[4:], nil
}

// parseHeaderPrefix is parseHeaderFrame on the first bytes of a THeader
// frame, f, which must hold at least the fixed part and the header section.
func parseHeaderPrefix(f []byte) (h headerFrame, err error) { return parseHeader(f, false) }

// parseHeader parses the THeader frame f, exactly one frame if whole, else
// its first bytes. One function, not a wrapper around another: this is on
// every THeader call's path.
func parseHeader(f []byte, whole bool) (h headerFrame, err error) {
	if len(f) < headerFixedSize {
		return h, malformed("truncated THeader frame")
	}
	if whole && int(be32(f)) != len(f)-4 {
		return h, malformed("bad THeader frame length")
	}
	if binary.BigEndian.Uint16(f[4:]) != headerMagic {
		return h, malformed("THeader magic missing")
	}
	h.flags = binary.BigEndian.Uint16(f[6:])
	h.headSeq = be32(f[8:])
	h.end = headerFixedSize + 4*int(binary.BigEndian.Uint16(f[12:]))
	if h.end > len(f) || h.end-4 > int(be32(f)) {
		return h, malformed("THeader header section longer than its frame")
	}
	sec := f[:h.end]
	id, n, err := uvarint(sec, headerFixedSize, maxVarint32Bytes)
	if err != nil {
		return h, malformed("THeader protocol id: %v", err)
	}
	if id > 0xff {
		return h, malformed("THeader protocol id %d not supported", id)
	}
	if h.proto, err = headerProtocol(byte(id)); err != nil {
		return h, err
	}
	off := headerFixedSize + n
	count, n, err := uvarint(sec, off, maxVarint32Bytes)
	if err != nil {
		return h, malformed("THeader transform count: %v", err)
	}
	off += n
	for i := uint64(0); i < count; i++ {
		t, n, err := uvarint(sec, off, maxVarint32Bytes)
		if err != nil {
			return h, malformed("THeader transform id: %v", err)
		}
		if t != 0 {
			return h, malformed("THeader transform %d not supported", t)
		}
		off += n
	}
	h.info = off
	return h, nil
}

// infoIter walks the key/value info headers of a THeader header section.
// Like Apache Thrift, it stops at padding and at the first info section of
// a type it does not know.
type infoIter struct {
	sec  []byte // the frame up to the end of the header section
	off  int
	left uint64 // pairs left in the current section
	rest int    // after done: offset of an unknown section, or len(sec)
	done bool
}

// next returns the next header. ok is false at the end or on an error.
func (it *infoIter) next() (k, v []byte, ok bool, err error) {
	for it.left == 0 {
		if it.done {
			return nil, nil, false, nil
		}
		if it.off >= len(it.sec) {
			it.done, it.rest = true, len(it.sec)
			return nil, nil, false, nil
		}
		typ, n, err := uvarint(it.sec, it.off, maxVarint32Bytes)
		switch {
		case err != nil:
			return nil, nil, false, malformed("THeader info type: %v", err)
		case typ == 0: // padding
			it.done, it.rest = true, len(it.sec)
			return nil, nil, false, nil
		case typ != headerInfoKV:
			it.done, it.rest = true, it.off
			return nil, nil, false, nil
		}
		count, k, err := uvarint(it.sec, it.off+n, maxVarint32Bytes)
		if err != nil {
			return nil, nil, false, malformed("THeader info count: %v", err)
		}
		if count > uint64(len(it.sec)) {
			return nil, nil, false, malformed("THeader info count %d", count)
		}
		it.off += n + k
		it.left = count
	}
	if k, err = it.str(); err != nil {
		return nil, nil, false, err
	}
	if v, err = it.str(); err != nil {
		return nil, nil, false, err
	}
	it.left--
	return k, v, true, nil
}

func (it *infoIter) str() ([]byte, error) {
	n, k, err := uvarint(it.sec, it.off, maxVarint32Bytes)
	if err != nil {
		return nil, malformed("THeader info string: %v", err)
	}
	start := it.off + k
	if n > uint64(len(it.sec)-start) {
		return nil, malformed("THeader info string longer than the header")
	}
	it.off = start + int(n)
	return it.sec[start:it.off], nil
}

// appendHeaderSection appends the header section of frame f (parsed as h)
// with the info headers changed by edits: a header whose key matches an
// edit, ignoring case as metadata keys do, takes the edit's value; other
// edits are added. Transforms are dropped (parseHeaderFrame accepts only
// "none"). Unknown info sections are kept after the key/value section.
func appendHeaderSection(dst, f []byte, h *headerFrame, edits []codec.KV) ([]byte, error) {
	start := len(dst)
	dst = appendUvarint(dst, protocolID(h.proto))
	dst = append(dst, 0, headerInfoKV) // no transforms; a key/value section
	kept := 0
	it := infoIter{sec: f[:h.end], off: h.info}
	for {
		k, _, ok, err := it.next()
		if err != nil {
			return dst, err
		}
		if !ok {
			break
		}
		if editIndex(edits, k) < 0 {
			kept++
		}
	}
	total := kept
	for i := range edits {
		if lastEdit(edits, i) {
			total++
		}
	}
	dst = appendUvarint(dst, uint64(total))
	it = infoIter{sec: f[:h.end], off: h.info}
	for {
		k, v, ok, _ := it.next()
		if !ok {
			break
		}
		if editIndex(edits, k) < 0 {
			dst = appendInfoString(dst, k)
			dst = appendInfoString(dst, v)
		}
	}
	for i, kv := range edits {
		if lastEdit(edits, i) {
			dst = appendUvarint(dst, uint64(len(kv.Key)))
			dst = append(dst, kv.Key...)
			dst = appendUvarint(dst, uint64(len(kv.Value)))
			dst = append(dst, kv.Value...)
		}
	}
	dst = append(dst, f[it.rest:h.end]...)
	for (len(dst)-start)%4 != 0 {
		dst = append(dst, 0)
	}
	if (len(dst)-start)/4 > headerMaxWords {
		return dst, malformed("THeader header section over %d bytes", 4*headerMaxWords)
	}
	return dst, nil
}

func appendInfoString(dst, s []byte) []byte {
	dst = appendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// editIndex returns the index of the edit for key k, or -1.
func editIndex(edits []codec.KV, k []byte) int {
	for i := range edits {
		if len(edits[i].Key) == len(k) && strings.EqualFold(edits[i].Key, unsafeString(k)) {
			return i
		}
	}
	return -1
}

// lastEdit reports whether edits[i] is the last edit of its key.
func lastEdit(edits []codec.KV, i int) bool {
	for j := i + 1; j < len(edits); j++ {
		if strings.EqualFold(edits[j].Key, edits[i].Key) {
			return false
		}
	}
	return true
}

func protocolID(p Protocol) uint64 {
	if p == ProtocolCompact {
		return headerProtoComp
	}
	return headerProtoBin
}
