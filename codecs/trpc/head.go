package trpc

import (
	"encoding/binary"

	"github.com/metaproxy/metaproxy/codec"
)

// The 16-byte frame head (trpc-go's FrameHead, protocol version 1):
//
//	0      2     3     4           8        10          14  15  16
//	+------+-----+-----+-----------+--------+-----------+---+---+------------
//	| 0930 | dft | sft | total len | hdr len| stream id |ver|rsv| header ...
//	+------+-----+-----+-----------+--------+-----------+---+---+------------
//
// dft: data frame type (0 unary, 1 stream); sft: stream frame type (0
// unary, 1 INIT, 2 DATA, 3 FEEDBACK, 4 CLOSE); total len: the whole frame,
// head included, big endian; hdr len: the protobuf header's size (0 in
// stream frames, whose meta is the body); stream id: the stream's id, and in
// version 1 unary frames the request id; ver: the head's version (1 from
// trpc-go, 0 from older peers). A unary frame is the head, a
// RequestProtocol or ResponseProtocol header, the body, and an attachment
// of the header's attachment_size bytes.
const (
	// HeadLen is the size of the fixed frame head.
	HeadLen = 16

	magicHigh = 0x09
	magicLow  = 0x30

	frameUnary  = 0
	frameStream = 1
)

// Stream frame types (trpc.TrpcStreamFrameType).
const (
	streamUnary    = 0
	streamInit     = 1
	streamData     = 2
	streamFeedback = 3
	streamClose    = 4
)

// head is the decoded frame head of one frame.
type head struct {
	frameType  byte
	streamType byte
	total      int
	headerLen  int
	streamID   uint32
	version    byte
}

// checkMagic reports an error unless b starts with (a prefix of) the magic
// and, once the third byte is there, a known data frame type.
func checkMagic(b []byte) error {
	if len(b) > 0 && b[0] != magicHigh || len(b) > 1 && b[1] != magicLow {
		return codec.Malformed(Name, "bad magic % x", b[:min(len(b), 2)])
	}
	if len(b) > 2 && b[2] > frameStream {
		return codec.Malformed(Name, "unknown data frame type %d", b[2])
	}
	return nil
}

// readHead decodes the head at the start of b, which holds at least
// HeadLen bytes, and checks the lengths it announces against each other.
func readHead(b []byte) (head, error) {
	if err := checkMagic(b[:HeadLen]); err != nil {
		return head{}, err
	}
	h := head{
		frameType:  b[2],
		streamType: b[3],
		total:      int(binary.BigEndian.Uint32(b[4:8])),
		headerLen:  int(binary.BigEndian.Uint16(b[8:10])),
		streamID:   binary.BigEndian.Uint32(b[10:14]),
		version:    b[14],
	}
	if uint64(h.total) < HeadLen {
		return head{}, codec.Malformed(Name, "total length %d is shorter than the head", h.total)
	}
	if HeadLen+h.headerLen > h.total {
		return head{}, codec.Malformed(Name, "header length %d does not fit a %d-byte frame", h.headerLen, h.total)
	}
	return h, nil
}

// parseHead reads the head of a complete frame and checks that the frame
// is exactly as long as the head says.
func parseHead(f []byte) (head, error) {
	if len(f) < HeadLen {
		return head{}, codec.Malformed(Name, "frame of %d bytes is shorter than the head", len(f))
	}
	h, err := readHead(f)
	if err == nil && h.total != len(f) {
		err = codec.Malformed(Name, "total length %d in a %d-byte frame", h.total, len(f))
	}
	return h, err
}

// appendHead appends a head with the given lengths.
func appendHead(dst []byte, h head) []byte {
	dst = append(dst, magicHigh, magicLow, h.frameType, h.streamType)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.total))
	dst = binary.BigEndian.AppendUint16(dst, uint16(h.headerLen))
	dst = binary.BigEndian.AppendUint32(dst, h.streamID)
	return append(dst, h.version, 0)
}
