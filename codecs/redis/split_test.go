package redis

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// TestSplitTypes splits one value of every RESP2 and RESP3 type, followed
// by the start of the next frame, which must not be counted.
func TestSplitTypes(t *testing.T) {
	for _, v := range []string{
		"+OK\r\n", "-ERR x\r\n", ":-42\r\n", "$0\r\n\r\n", "$-1\r\n", "$5\r\na\r\nb\n\r\n", "*-1\r\n", "*0\r\n",
		"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", "_\r\n", ",3.14\r\n", ",-inf\r\n", ",nan\r\n", ",1e-5\r\n", "#t\r\n", "#f\r\n",
		"!5\r\nERR x\r\n", "=8\r\ntxt:a\r\nb\r\n", "(-123456789012345678901234567890\r\n", "%1\r\n+k\r\n*1\r\n+v\r\n",
		"~2\r\n+a\r\n+b\r\n", ">2\r\n+pubsub\r\n+x\r\n", "|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
		"*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n", "|0\r\n|1\r\n+a\r\n+b\r\n+OK\r\n", "%0\r\n", "~0\r\n",
	} {
		c := newTestFactory(t).NewCodecFor(codec.SideUpstream)
		if n, err := c.Split([]byte(v + "+NEXT\r\n")); n != len(v) || err != nil {
			t.Errorf("%q: n=%d err=%v", v, n, err)
		}
	}
}

// TestSplitErrors: each malformed value is refused as a *codec.ProtocolError
// as soon as the bytes show it.
func TestSplitErrors(t *testing.T) {
	for _, v := range append(append([][]byte(nil), garbage...),
		[]byte("@x\r\n"), []byte("$?\r\n;3\r\n"), []byte("#tt\r\n"), []byte("=2\r\nab\r\n"), []byte("=4\r\ntxtx\r\n"),
		[]byte("$"+strings.Repeat("1", 30)), []byte("*1\r\n\r\n"), []byte(":"+strings.Repeat("9", 21)+"\r\n"),
		[]byte("~-1\r\n"), []byte("%-1\r\n"), []byte("!-1\r\n")) {
		c := newTestFactory(t).NewCodecFor(codec.SideUpstream)
		var pe *codec.ProtocolError
		if _, err := c.Split(v); !errors.As(err, &pe) {
			t.Errorf("%q: err=%v, want a protocol error", v, err)
		}
	}
}

// TestSplitLimits: frame size, depth and element count are bounded, and
// a frame is refused as soon as its headers announce too much.
func TestSplitLimits(t *testing.T) {
	f, err := NewFactory(Options{MaxFrame: 64, MaxDepth: 2, MaxElements: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"$50\r\n" + strings.Repeat("x", 50) + "\r\n", true}, // 57 bytes
		{"$58\r\n", false},                       // 65 bytes announced
		{"+" + strings.Repeat("x", 70), false},   // a line past the limit
		{"*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n", true}, // 4 elements
		{"*5\r\n", false},                        // too many elements
		{"%3\r\n", true},                         // 3 pairs announced: partial
		{"%5\r\n", false},                        // 5 pairs
		{"*1\r\n*1\r\n:1\r\n", true},             // depth 2
		{"*1\r\n*1\r\n*1\r\n", false},            // depth 3
		{"*1\r\n*0\r\n", true},                   // an empty array opens nothing
		{"*4\r\n$26\r\n" + strings.Repeat("y", 26) + "\r\n$26\r\n" + strings.Repeat("y", 26) + "\r\n", false},
	} {
		c := f.NewCodecFor(codec.SideUpstream)
		_, err := c.Split([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%.30q: err=%v, want ok=%v", tc.in, err, tc.ok)
		}
	}
	// Inline lines are bounded by MaxInline and by the frame limit.
	c := f.NewCodecFor(codec.SideDownstream)
	if _, err := c.Split([]byte("GET " + strings.Repeat("k", 61))); err == nil {
		t.Errorf("a 65-byte inline line under a 64-byte frame limit was accepted")
	}
	d := newTestFactory(t).NewCodecFor(codec.SideDownstream)
	if n, err := d.Split([]byte("GET " + strings.Repeat("k", MaxInline-10))); n != 0 || err != nil {
		t.Errorf("an inline line under 64 KiB: n=%d err=%v", n, err)
	}
	if _, err := d.Split([]byte("GET " + strings.Repeat("k", MaxInline))); err == nil {
		t.Errorf("an inline line over 64 KiB was accepted")
	}
}

// TestSplitResumes: a large frame trickled in read by read is split right,
// and Split does not walk it again from the start each time.
func TestSplitResumes(t *testing.T) {
	var frame []byte
	frame = append(frame, "*10000\r\n"...)
	for i := 0; i < 10000; i++ {
		frame = append(frame, "$3\r\nabc\r\n"...)
	}
	c := newTestFactory(t).NewCodecFor(codec.SideUpstream)
	for k := 1; k < len(frame); k += 7 {
		if n, err := c.Split(frame[:k]); n != 0 || err != nil {
			t.Fatalf("at %d: n=%d err=%v", k, n, err)
		}
		if c.sc.pos > k || k-c.sc.pos > 9 {
			t.Fatalf("at %d bytes the walk stands at %d", k, c.sc.pos)
		}
	}
	if n, err := c.Split(frame); n != len(frame) || err != nil {
		t.Fatalf("whole frame: n=%d err=%v", n, err)
	}
	if c.sc.pos != 0 || len(c.sc.stack) != 0 {
		t.Fatalf("state kept after a frame: %+v", c.sc)
	}
	// A shorter buffer than the walk (another frame) starts over.
	if n, err := c.Split(frame[:20]); n != 0 || err != nil {
		t.Fatal(n, err)
	}
	if n, err := c.Split([]byte("+OK\r\n")); n != 5 || err != nil {
		t.Fatalf("after a reset: n=%d err=%v", n, err)
	}
}

// TestInlineSplit: inline lines end at LF, refuse control bytes at once,
// and follow Redis' quoting.
func TestInlineSplit(t *testing.T) {
	c := newTestFactory(t).NewCodecFor(codec.SideDownstream)
	for _, tc := range []struct {
		in string
		n  int
		ok bool
	}{
		{"PING\r\n", 6, true},
		{"PING\n+x", 5, true},
		{"PING", 0, true},
		{"SET k \"a\\\"b\"\r\n", 14, true},
		{"SET k 'a\\'b'\r\n", 14, true},
		{"SET k \"a\\\r\n", 0, false},
		{"SET k a\"b c\"\r\n", 14, true},
		{"SET k a\"b c\"d\r\n", 0, false},
		{"SET k a\"b c\" d\r\n", 16, true},
		{"\x01", 0, false},
		{"GET\x1bk", 0, false},
		{"Post /", 0, true}, // not yet known to be a whole word
		{"Post /\r\n", 0, false},
		{"HOST: x\r\n", 0, false},
		{"hostname\r\n", 10, true},
		{"+OK\r\n", 5, true}, // a downstream codec reads it as Redis does: an inline command
	} {
		n, err := c.Split([]byte(tc.in))
		c.sc.reset()
		if n != tc.n || (err == nil) != tc.ok {
			t.Errorf("%q: n=%d err=%v, want n=%d ok=%v", tc.in, n, err, tc.n, tc.ok)
		}
	}
}

// TestInlineWords: words and their values, as sdssplitargs gives them.
func TestInlineWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"  SET  k \t v  \r\n", []string{"SET", "k", "v"}},
		{"SET \"a b\" 'c d'\n", []string{"SET", "a b", "c d"}},
		{"SET k \"\\x41\\x4a\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n", []string{"SET", "k", "AJ\n\r\t\b\a\\\"q"}},
		{"SET k '\\x41\\n'\r\n", []string{"SET", "k", "\\x41\\n"}},
		{"SET k \"\\x4\"\r\n", []string{"SET", "k", "x4"}},
		{"SET k a\"b c\" d\r\n", []string{"SET", "k", "ab c", "d"}},
		{"SET k \"\"\r\n", []string{"SET", "k", ""}},
		{"\r\n", nil},
	} {
		m := decode(t, newTestFactory(t).NewCodec().(*Codec), []byte(tc.in))
		if len(tc.want) == 0 {
			if m.Kind != codec.KindOneway {
				t.Errorf("%q: kind %v", tc.in, m.Kind)
			}
			continue
		}
		args, err := Args(nil, m)
		if err != nil || len(args) != len(tc.want) {
			t.Fatalf("%q: %q %v", tc.in, args, err)
		}
		for i := range args {
			if string(args[i]) != tc.want[i] {
				t.Errorf("%q: arg %d = %q, want %q", tc.in, i, args[i], tc.want[i])
			}
		}
		if k := m.Meta.Value(KeyKey); k != tc.want[1] {
			t.Errorf("%q: key %q", tc.in, k)
		}
	}
}

// TestDownstream: a downstream codec reads as redis-server reads: arrays
// of bulk strings only (with Redis' error words), everything else inline.
func TestDownstream(t *testing.T) {
	f := newTestFactory(t)
	for _, g := range append(clientGarbage, []byte("*1\r\n:1\r\n"), []byte("*1\r\n$-1\r\n"), []byte("*2\r\n$3\r\nGET\r\n*1\r\n$1\r\na\r\n")) {
		c := f.NewCodecFor(codec.SideDownstream)
		if _, err := c.Split(g); err == nil {
			t.Errorf("%q accepted", g)
		}
	}
	c := f.NewCodecFor(codec.SideDownstream)
	for _, in := range []string{"+OK\r\n", "$3\r\n", ":1\r\n"} {
		if m := decode(t, c, []byte(in)); m.Kind != codec.KindRequest || m.Meta.Value(codec.KeyMethod) != strings.TrimSuffix(in, "\r\n") {
			t.Errorf("%q: %v %v", in, m.Kind, m.Meta.All())
		}
	}
	var m codec.Message
	if err := c.Decode([]byte("*1\r\n$-1\r\n"), &m); err == nil {
		t.Errorf("a null argument decoded")
	}
	if err := c.Decode([]byte("GET a\r\nGET b\r\n"), &m); err == nil {
		t.Errorf("two inline lines decoded as one frame")
	}
	if err := c.Decode([]byte("*1\r\n$3\r\nGET\r\n+x"), &m); err == nil {
		t.Errorf("trailing bytes decoded")
	}
	if !bytes.Equal(c.HeartbeatReply([]byte("x"), &m), []byte("x")) {
		t.Errorf("HeartbeatReply wrote something")
	}
}
