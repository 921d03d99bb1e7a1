package dubbo

import (
	"encoding/binary"

	"github.com/metaproxy/metaproxy/codec"
)

// The 16-byte Dubbo header:
//
//	0      2      3       4            12          16
//	+------+------+-------+------------+-----------+---------
//	| dabb | flag |status | request id | body len  | body...
//	+------+------+-------+------------+-----------+---------
//
// flag: 0x80 request, 0x40 two-way, 0x20 event, low 5 bits serialization id.
// status: the response status (20 = OK); zero in requests.
const (
	// HeaderLen is the size of the fixed Dubbo header.
	HeaderLen = 16

	magicHigh = 0xda
	magicLow  = 0xbb

	flagRequest = 0x80
	flagTwoWay  = 0x40
	flagEvent   = 0x20
	serialMask  = 0x1f

	// serialHessian2 is the serialization id of Hessian 2, the only body
	// format this codec reads.
	serialHessian2 = 2
)

// Response status codes (org.apache.dubbo.remoting.exchange.Response).
const (
	StatusOK                        = 20
	StatusClientTimeout             = 30
	StatusServerTimeout             = 31
	StatusBadRequest                = 40
	StatusBadResponse               = 50
	StatusServiceNotFound           = 60
	StatusServiceError              = 70
	StatusServerError               = 80
	StatusClientError               = 90
	StatusServerThreadpoolExhausted = 100
)

// Hessian response body types (org.apache.dubbo.rpc.protocol.dubbo.DubboCodec).
const (
	responseWithException = iota
	responseValue
	responseNullValue
	responseWithExceptionWithAttachments
	responseValueWithAttachments
	responseNullValueWithAttachments
)

// header is the decoded fixed header of one frame.
type header struct {
	flags   byte
	status  byte
	id      uint64
	bodyLen int
}

func (h header) request() bool { return h.flags&flagRequest != 0 }
func (h header) twoWay() bool  { return h.flags&flagTwoWay != 0 }
func (h header) event() bool   { return h.flags&flagEvent != 0 }
func (h header) serial() byte  { return h.flags & serialMask }

// checkMagic reports an error unless b starts with (a prefix of) the magic.
func checkMagic(b []byte) error {
	if len(b) > 0 && b[0] != magicHigh || len(b) > 1 && b[1] != magicLow {
		return codec.Malformed(Name, "bad magic % x", b[:min(len(b), 2)])
	}
	return nil
}

// parseHeader reads the header of a complete frame and checks that the
// frame holds exactly the announced body.
func parseHeader(f []byte) (header, error) {
	if len(f) < HeaderLen {
		return header{}, codec.Malformed(Name, "frame of %d bytes is shorter than the header", len(f))
	}
	if err := checkMagic(f); err != nil {
		return header{}, err
	}
	h := header{
		flags:   f[2],
		status:  f[3],
		id:      binary.BigEndian.Uint64(f[4:12]),
		bodyLen: int(binary.BigEndian.Uint32(f[12:16])),
	}
	if h.bodyLen != len(f)-HeaderLen {
		return header{}, codec.Malformed(Name, "body length %d in a %d-byte frame", h.bodyLen, len(f))
	}
	return h, nil
}
