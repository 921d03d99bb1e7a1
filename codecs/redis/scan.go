package redis

import (
	"bytes"
	"math"

	"github.com/metaproxy/metaproxy/codec"
)

// Split's modes for the frame it is walking.
const (
	modeIdle uint8 = iota
	modeRESP
	modeInline
)

// maxLenLine is the longest length line ("-9223372036854775808").
const maxLenLine = 20

// unbounded stands for no limit in token.
const unbounded = math.MaxInt >> 2

// minElement is the fewest bytes one element can take ("_\r\n").
const minElement = 3

// scanner is Split's state across calls for one frame: the bytes already
// walked and the elements each open aggregate still expects, so that a
// large frame arriving read by read is walked once, not once per read.
type scanner struct {
	mode  uint8
	pos   int
	stack []int
}

func (s *scanner) reset() {
	s.mode, s.pos, s.stack = modeIdle, 0, s.stack[:0]
}

// isType reports whether b starts a RESP2 or RESP3 value.
func isType(b byte) bool {
	switch b {
	case '+', '-', ':', '$', '*', '_', ',', '#', '!', '=', '(', '%', '~', '>', '|':
		return true
	}
	return false
}

func malformed(format string, args ...any) error { return codec.Malformed(Name, format, args...) }

// line returns the end of the CRLF-terminated line starting at p (the
// index after its LF) and its content; end is 0 while the line is
// incomplete. A line longer than max without its CR is an error, and so
// is a CR or LF inside it.
func line(buf []byte, p, max int) (content []byte, end int, err error) {
	rest := buf[p:]
	i := crOrLF(rest)
	switch {
	case i < 0:
		if len(rest) > max {
			return nil, 0, malformed("line longer than %d bytes", max)
		}
		return nil, 0, nil
	case i > max:
		return nil, 0, malformed("line longer than %d bytes", max)
	case rest[i] == '\n':
		return nil, 0, malformed("line feed without carriage return")
	case i+1 == len(rest):
		return nil, 0, nil
	case rest[i+1] != '\n':
		return nil, 0, malformed("carriage return without line feed")
	}
	return rest[:i], p + i + 2, nil
}

// shortLine is how far crOrLF looks byte by byte: most lines (lengths,
// OK, integers) are shorter, and a loop beats two IndexByte calls there.
const shortLine = 32

// crOrLF returns the index of the first CR or LF in b, or -1.
func crOrLF(b []byte) int {
	for i := 0; i < min(len(b), shortLine); i++ {
		if c := b[i]; c == '\r' || c == '\n' {
			return i
		}
	}
	if len(b) <= shortLine {
		return -1
	}
	rest := b[shortLine:]
	i := bytes.IndexByte(rest, '\r')
	lf := rest
	if i >= 0 {
		lf = rest[:i]
	}
	if j := bytes.IndexByte(lf, '\n'); j >= 0 {
		return shortLine + j
	}
	if i < 0 {
		return -1
	}
	return shortLine + i
}

// parseLen parses a length: digits without leading zeros, or "-1" (as
// Redis' string2ll reads them); ok is false for anything else.
func parseLen(b []byte) (n int64, ok bool) {
	if len(b) == 2 && b[0] == '-' && b[1] == '1' {
		return -1, true
	}
	if len(b) == 0 || len(b) > 18 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// digits reports whether b is an optional minus and at least one digit.
func digits(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isDouble reports whether b can be a RESP3 double: inf, -inf, nan, or
// a decimal number with an optional exponent.
func isDouble(b []byte) bool {
	switch string(b) {
	case "inf", "-inf", "nan", "+inf", "-nan":
		return true
	}
	if len(b) == 0 {
		return false
	}
	seen := false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			seen = true
		case c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-':
		default:
			return false
		}
	}
	return seen
}

// token reads the RESP token at p: a whole scalar, or an aggregate's
// header (elems is then its element count: twice the pairs of a map, and
// one more for the value an attribute describes). end is 0 while the token
// is incomplete. max bounds the frame, maxElems an aggregate's length.
func token(buf []byte, p, max, maxElems int) (end int, elems int64, err error) {
	t := buf[p]
	var v []byte
	switch t {
	case '+', '-', ':', '(', ',', '#', '_':
		if v, end, err = line(buf, p+1, max); err != nil || end == 0 {
			return 0, 0, err
		}
		switch {
		case t == ':' && (len(v) > maxLenLine || !digits(v)):
			err = malformed("invalid integer %q", v)
		case t == '(' && !digits(v):
			err = malformed("invalid big number")
		case t == ',' && !isDouble(v):
			err = malformed("invalid double %q", v)
		case t == '#' && (len(v) != 1 || (v[0] != 't' && v[0] != 'f')):
			err = malformed("invalid boolean")
		case t == '_' && len(v) != 0:
			err = malformed("invalid null")
		}
		return end, 0, err
	case '$', '!', '=':
		if v, end, err = line(buf, p+1, maxLenLine); err != nil || end == 0 {
			return 0, 0, err
		}
		n, ok := parseLen(v)
		switch {
		case ok && n == -1 && t == '$':
			return end, 0, nil // RESP2's null bulk string
		case !ok || n < 0:
			return 0, 0, malformed("invalid bulk length")
		case n > int64(max-end-2):
			return 0, 0, malformed("bulk string of %d bytes exceeds the %d-byte frame limit", n, max)
		case int64(len(buf)-end) < n+2:
			return 0, 0, nil // the payload is still coming
		case buf[end+int(n)] != '\r' || buf[end+int(n)+1] != '\n':
			return 0, 0, malformed("bulk string not terminated by CRLF")
		case t == '=' && (n < 4 || buf[end+3] != ':'):
			return 0, 0, malformed("invalid verbatim string")
		}
		return end + int(n) + 2, 0, nil
	case '*', '%', '~', '>', '|':
		if v, end, err = line(buf, p+1, maxLenLine); err != nil || end == 0 {
			return 0, 0, err
		}
		n, ok := parseLen(v)
		switch {
		case ok && n == -1 && t == '*':
			return end, 0, nil // RESP2's null array
		case !ok || n < 0 || n > int64(maxElems):
			return 0, 0, malformed("invalid multibulk length")
		}
		elems = n
		if t == '%' || t == '|' {
			elems *= 2
		}
		if t == '|' {
			elems++
		}
		if elems > int64(max-end)/minElement {
			return 0, 0, malformed("%d elements cannot fit in the %d-byte frame limit", n, max)
		}
		return end, elems, nil
	}
	return 0, 0, malformed("unexpected byte %q", t)
}

// scan walks RESP values from the saved position; it returns the frame's
// length once the top-level value is complete, 0 while it is not.
func (c *Codec) scan(buf []byte) (int, error) {
	s := &c.sc
	p := s.pos
	max := c.o.MaxFrame
	for p < len(buf) {
		if c.side == codec.SideDownstream && len(s.stack) > 0 && buf[p] != '$' {
			return 0, malformed("expected '$', got '%c'", buf[p])
		}
		end, elems, err := token(buf, p, max, c.o.MaxElements)
		if err != nil {
			return 0, err
		}
		if end == 0 {
			break
		}
		if c.side == codec.SideDownstream && len(s.stack) > 0 && buf[p+1] == '-' {
			return 0, malformed("invalid bulk length") // $-1: Redis takes no null argument
		}
		if elems > 0 && len(s.stack) >= c.o.MaxDepth {
			return 0, malformed("aggregates nested deeper than %d", c.o.MaxDepth)
		}
		p = end
		if elems > 0 {
			s.stack = append(s.stack, int(elems))
			s.pos = p
			continue
		}
		// A value is complete: it completes its parents in turn.
		for len(s.stack) > 0 {
			top := len(s.stack) - 1
			if s.stack[top]--; s.stack[top] > 0 {
				break
			}
			s.stack = s.stack[:top]
		}
		if len(s.stack) == 0 {
			return p, nil
		}
		s.pos = p
	}
	s.pos = p
	if len(buf) >= max {
		return 0, malformed("frame exceeds the %d-byte limit", max)
	}
	return 0, nil
}

// skip returns the end of the complete value at p in b, a frame Split
// accepted; anything incomplete or malformed is an error.
func skip(b []byte, p int) (int, error) {
	for want := int64(1); want > 0; want-- {
		if p >= len(b) {
			return 0, malformed("truncated value")
		}
		end, elems, err := token(b, p, unbounded, unbounded)
		if err != nil {
			return 0, err
		}
		if end == 0 {
			return 0, malformed("truncated value")
		}
		p, want = end, want+elems
	}
	return p, nil
}
