// Package kvpeer is a client and a server of KVP1, the small private
// protocol that codecs/declarative/examples/kv.yaml describes. It is
// written by hand from the protocol's definition, not from the
// description, so that tests can check the declarative codec against an
// independent implementation:
//
//	0      4     5       6        8            12         16
//	| KVP1 | ver | flags | status | request id | body len | body
//
// The body is key/value pairs: a 1-byte key length, the key, a 2-byte
// value length, the value. Integers are big endian.
package kvpeer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Magic starts every frame.
const Magic = "KVP1"

// Version is the only protocol version.
const Version = 1

// HeaderLen is the size of the fixed header.
const HeaderLen = 16

// MaxFrame is the largest frame a peer reads.
const MaxFrame = 1 << 20

// Flags bits.
const (
	FlagRequest   = 0x01
	FlagResponse  = 0x02
	FlagOneway    = 0x04
	FlagHeartbeat = 0x08
)

// Statuses.
const (
	StatusOK          = 0
	StatusAppError    = 1 // the server's own "no"
	StatusNoRoute     = 2
	StatusUnavailable = 3
	StatusOverloaded  = 4
	StatusTimeout     = 5
	StatusInternal    = 6
	StatusBadRequest  = 7
	StatusDenied      = 8
)

// Pair is one key/value pair of a body.
type Pair struct{ Key, Value string }

// Frame is one KVP1 frame.
type Frame struct {
	Version byte
	Flags   byte
	Status  uint16
	ID      uint32
	Pairs   []Pair
}

// Get returns the value of the last pair of key.
func (f *Frame) Get(key string) (string, bool) {
	for i := len(f.Pairs) - 1; i >= 0; i-- {
		if f.Pairs[i].Key == key {
			return f.Pairs[i].Value, true
		}
	}
	return "", false
}

// Map returns the pairs as a map (later pairs win).
func (f *Frame) Map() map[string]string {
	m := make(map[string]string, len(f.Pairs))
	for _, p := range f.Pairs {
		m[p.Key] = p.Value
	}
	return m
}

// Append appends f's wire form to dst; a version of 0 is written as
// Version.
func (f *Frame) Append(dst []byte) ([]byte, error) {
	start := len(dst)
	v := f.Version
	if v == 0 {
		v = Version
	}
	dst = append(dst, Magic...)
	dst = append(dst, v, f.Flags)
	dst = binary.BigEndian.AppendUint16(dst, f.Status)
	dst = binary.BigEndian.AppendUint32(dst, f.ID)
	dst = append(dst, 0, 0, 0, 0)
	for _, p := range f.Pairs {
		if len(p.Key) > 0xff || len(p.Value) > 0xffff {
			return dst[:start], fmt.Errorf("kvpeer: pair %q too long", p.Key)
		}
		dst = append(dst, byte(len(p.Key)))
		dst = append(dst, p.Key...)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(p.Value)))
		dst = append(dst, p.Value...)
	}
	n := len(dst) - start
	if n > MaxFrame {
		return dst[:start], fmt.Errorf("kvpeer: frame of %d bytes too large", n)
	}
	binary.BigEndian.PutUint32(dst[start+12:], uint32(n-HeaderLen))
	return dst, nil
}

// ErrMalformed is wrapped by the errors of bytes that are no KVP1 frame.
var ErrMalformed = errors.New("kvpeer: malformed frame")

// Parse reads the frame at the start of b. n is 0 when b holds only part
// of one.
func Parse(b []byte) (f Frame, n int, err error) {
	for i := 0; i < len(Magic) && i < len(b); i++ {
		if b[i] != Magic[i] {
			return f, 0, fmt.Errorf("%w: bad magic", ErrMalformed)
		}
	}
	if len(b) < HeaderLen {
		return f, 0, nil
	}
	f = Frame{Version: b[4], Flags: b[5], Status: binary.BigEndian.Uint16(b[6:]), ID: binary.BigEndian.Uint32(b[8:])}
	if f.Version != Version {
		return f, 0, fmt.Errorf("%w: version %d", ErrMalformed, f.Version)
	}
	body := binary.BigEndian.Uint32(b[12:])
	if body > MaxFrame-HeaderLen {
		return f, 0, fmt.Errorf("%w: body of %d bytes", ErrMalformed, body)
	}
	n = HeaderLen + int(body)
	if len(b) < n {
		return f, 0, nil
	}
	for p := HeaderLen; p < n; {
		kl := int(b[p])
		if p+1+kl+2 > n {
			return f, 0, fmt.Errorf("%w: truncated pair", ErrMalformed)
		}
		key := string(b[p+1 : p+1+kl])
		p += 1 + kl
		vl := int(binary.BigEndian.Uint16(b[p:]))
		p += 2
		if p+vl > n {
			return f, 0, fmt.Errorf("%w: truncated pair", ErrMalformed)
		}
		f.Pairs = append(f.Pairs, Pair{key, string(b[p : p+vl])})
		p += vl
	}
	return f, n, nil
}

// ReadFrame reads one frame from r.
func ReadFrame(r *bufio.Reader) (Frame, error) {
	head, err := r.Peek(HeaderLen)
	if err != nil {
		if len(head) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	if _, _, err := Parse(head); err != nil {
		return Frame{}, err
	}
	buf := make([]byte, HeaderLen+int(binary.BigEndian.Uint32(head[12:])))
	if _, err := io.ReadFull(r, buf); err != nil {
		return Frame{}, err
	}
	f, _, err := Parse(buf)
	return f, err
}
