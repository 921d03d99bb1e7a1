package redis

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// benchDecode splits and decodes frames (one read holding them all) over
// and over with one codec and one message, as a proxy connection does.
func benchDecode(b *testing.B, side codec.Side, frames ...[]byte) {
	var buf []byte
	for _, f := range frames {
		buf = append(buf, f...)
	}
	c := newTestFactory(b).NewCodecFor(side)
	var m codec.Message
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		for rest := buf; len(rest) > 0; {
			n, err := c.Split(rest)
			if err != nil || n == 0 {
				b.Fatal(n, err)
			}
			m.Reset()
			m.Frame = rest[:n]
			if err := c.Decode(m.Frame, &m); err != nil {
				b.Fatal(err)
			}
			rest = rest[n:]
		}
	}
}

func cmdFrame(args ...string) []byte { return AppendCommand(nil, bytesOf(args)...) }

// BenchmarkDecodeGet: GET key.
func BenchmarkDecodeGet(b *testing.B) { benchDecode(b, codec.SideBoth, cmdFrame("GET", "user:1000")) }

// BenchmarkDecodeSet: SET key value EX 60.
func BenchmarkDecodeSet(b *testing.B) {
	benchDecode(b, codec.SideBoth, cmdFrame("SET", "user:1000", "a value of some thirty bytes..", "EX", "60"))
}

// BenchmarkDecodeMget10: MGET of 10 keys.
func BenchmarkDecodeMget10(b *testing.B) { benchDecode(b, codec.SideBoth, cmdFrame(tenKeys()...)) }

// BenchmarkDecodeEval: EVAL with numkeys (8 arguments).
func BenchmarkDecodeEval(b *testing.B) {
	benchDecode(b, codec.SideBoth, cmdFrame("EVAL", "return 1", "2", "k1", "k2", "a1", "a2", "a3"))
}

// BenchmarkDecodeInline: an inline SET as telnet sends it.
func BenchmarkDecodeInline(b *testing.B) {
	benchDecode(b, codec.SideDownstream, []byte("SET user:1000 value\r\n"))
}

// BenchmarkPipeline16: 16 commands in one read, as redis-benchmark -P 16
// sends them (recorded in testdata/clients.json).
func BenchmarkPipeline16(b *testing.B) {
	benchDecode(b, codec.SideDownstream, splitAll(b, newTestFactory(b).NewCodecFor(codec.SideDownstream), benchmarkPipeline(b))...)
}

// BenchmarkDecodeReplyMget10: the reply to MGET of 10 keys, upstream.
func BenchmarkDecodeReplyMget10(b *testing.B) {
	r := []byte("*10\r\n")
	for i := 0; i < 10; i++ {
		r = append(r, "$16\r\nsome value bytes\r\n"...)
	}
	benchDecode(b, codec.SideUpstream, r)
}

func tenKeys() []string {
	a := []string{"MGET"}
	for i := 0; i < 10; i++ {
		a = append(a, "user:100"+string(rune('0'+i)))
	}
	return a
}

// TestDecodeAllocs: splitting and decoding requests of up to 11 arguments
// (and replies) allocates nothing once the message has its capacity.
func TestDecodeAllocs(t *testing.T) {
	f := newTestFactory(t)
	for _, tc := range []struct {
		side   codec.Side
		frames [][]byte
	}{
		{codec.SideBoth, [][]byte{cmdFrame("GET", "k")}},
		{codec.SideBoth, [][]byte{cmdFrame("SET", "k", "v", "EX", "60", "NX")}},
		{codec.SideBoth, [][]byte{cmdFrame(tenKeys()...)}},
		{codec.SideBoth, [][]byte{cmdFrame("EVAL", "s", "2", "k1", "k2", "a", "b", "c")}},
		{codec.SideBoth, [][]byte{cmdFrame("XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0")}},
		{codec.SideDownstream, [][]byte{[]byte("SET k v\r\n"), cmdFrame("unknown", "x")}},
		{codec.SideDownstream, splitAll(t, f.NewCodecFor(codec.SideDownstream), benchmarkPipeline(t))},
		{codec.SideUpstream, [][]byte{[]byte("*2\r\n$1\r\na\r\n%1\r\n+k\r\n:1\r\n"), []byte("-ERR x\r\n")}},
	} {
		c := f.NewCodecFor(tc.side)
		var m codec.Message
		run := func() {
			for _, fr := range tc.frames {
				if n, err := c.Split(fr); n != len(fr) || err != nil {
					t.Fatal(n, err)
				}
				m.Reset()
				m.Frame = fr
				if err := c.Decode(fr, &m); err != nil {
					t.Fatal(err)
				}
			}
		}
		run()
		if a := testing.AllocsPerRun(100, run); a != 0 {
			t.Errorf("%.40q: %v allocations", tc.frames[0], a)
		}
	}
}
