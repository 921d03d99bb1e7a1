package redis

import (
	"bytes"
	"unsafe"

	"github.com/metaproxy/metaproxy/codec"
)

// argIter reads the arguments of one request frame, a RESP array of bulk
// strings or an inline line, without copying them. Arguments are read
// forward; asking for an earlier one starts over, which costs little for
// the few arguments a key lookup reads.
type argIter struct {
	f      []byte
	inline bool
	argc   int
	start  int // where argument 0 starts
	end    int // inline: the end of the line, CR LF excluded
	i, p   int // the next argument and where it starts
}

// init reads the shape of frame. req is false when frame is a reply, which
// is only possible when strict is false: a frame starting with a RESP type
// byte other than '*', or a non-empty array that is not all bulk strings. strict
// reads as redis-server does: an array must hold only bulk strings and
// anything else is an inline command.
func (a *argIter) init(frame []byte, strict bool) (req bool, err error) {
	*a = argIter{f: frame}
	if frame[0] != '*' {
		if !strict && isType(frame[0]) {
			return false, nil
		}
		return true, a.initInline()
	}
	v, end, err := line(frame, 1, maxLenLine)
	n, ok := parseLen(v)
	if err != nil || end == 0 || !ok {
		return false, malformed("invalid multibulk length")
	}
	if n <= 0 {
		// Redis skips "*0" and "*-1" without a reply. (As replies they are
		// an empty and a null array: only an upstream codec reads them so.)
		if end != len(frame) {
			return false, malformed("trailing bytes after the frame")
		}
		return true, nil
	}
	p := end
	for i := int64(0); i < n; i++ {
		if p >= len(frame) || frame[p] != '$' {
			if strict || p >= len(frame) {
				return false, malformed("expected '$' in a command")
			}
			return false, nil
		}
		e, _, err := token(frame, p, unbounded, 0)
		if err != nil || e == 0 {
			return false, malformed("invalid bulk string")
		}
		if frame[p+1] == '-' { // $-1: a null, never an argument
			if strict {
				return false, malformed("invalid bulk length")
			}
			return false, nil
		}
		p = e
	}
	if p != len(frame) {
		return false, malformed("trailing bytes after the frame")
	}
	a.argc, a.start, a.p = int(n), end, end
	return true, nil
}

// initInline counts the words of an inline line.
func (a *argIter) initInline() error {
	if bytes.IndexByte(a.f, '\n') != len(a.f)-1 {
		return malformed("inline request not one line")
	}
	a.inline = true
	a.end = len(inlineLine(a.f))
	for p := 0; ; a.argc++ {
		start, _, next, _, err := word(a.f[:a.end], p)
		if err != nil {
			return err
		}
		if start < 0 {
			return nil
		}
		p = next
	}
}

// arg returns argument i's raw bytes (nil past the last one); quoted
// means an inline word that needs unquote.
func (a *argIter) arg(i int) (b []byte, quoted bool) {
	if i < 0 || i >= a.argc {
		return nil, false
	}
	if i < a.i {
		a.i, a.p = 0, a.start
	}
	for {
		if a.inline {
			start, end, next, q, err := word(a.f[:a.end], a.p)
			if err != nil || start < 0 {
				return nil, false
			}
			if a.i == i {
				return a.f[start:end], q
			}
			a.i, a.p = a.i+1, next
			continue
		}
		v, end, _ := line(a.f, a.p+1, maxLenLine)
		n, _ := parseLen(v)
		if a.i == i {
			return a.f[end : end+int(n)], false
		}
		a.i, a.p = a.i+1, end+int(n)+2
	}
}

// bytes returns argument i's value: aliasing the frame unless quoted.
func (a *argIter) bytes(i int) []byte {
	b, q := a.arg(i)
	if q {
		return unquote(b)
	}
	return b
}

// alias returns b as a string sharing its bytes.
func alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// decodeRequest sets the kind, method and key of a request.
func decodeRequest(a *argIter, msg *codec.Message) error {
	if a.argc == 0 {
		msg.Kind = codec.KindOneway // Redis answers nothing
		return nil
	}
	msg.Kind = codec.KindRequest
	name := a.bytes(0)
	cmd := lookup(name)
	if cmd == nil {
		msg.Meta.Set(codec.KeyMethod, alias(name))
		return nil
	}
	msg.Meta.Set(codec.KeyMethod, cmd.name)
	var r [maxRanges]keyRange
	if n := cmd.resolve(a, r[:0]); len(n) > 0 {
		k := a.bytes(n[0].first)
		msg.Meta.Set(KeyKey, alias(k))
		msg.Meta.Set(KeyHash, alias(HashTag(k)))
	}
	return nil
}

// request reads the arguments of the request m; ok is false when m is not
// a request with arguments.
func request(m *codec.Message) (a argIter, ok bool) {
	if m.Kind != codec.KindRequest || len(m.Frame) == 0 {
		return a, false
	}
	// A frame decoded as a request is an array of bulk strings or else
	// an inline line: the strict reading.
	req, err := a.init(m.Frame, true)
	return a, err == nil && req && a.argc > 0
}

// Args appends the arguments of the request m (the command name first) to
// dst. They alias m.Frame, except inline words in quotes, which are
// unquoted into new slices.
func Args(dst [][]byte, m *codec.Message) ([][]byte, error) {
	a, ok := request(m)
	if !ok {
		return dst, malformed("not a command")
	}
	for i := 0; i < a.argc; i++ {
		dst = append(dst, a.bytes(i))
	}
	return dst, nil
}
