package dubbo

import (
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/codec/codectest"
)

// FuzzDecode feeds arbitrary bytes to the codec (codectest.FuzzDecode: no
// panic, no overlong split, accepted frames re-encode to themselves, edits
// and error replies on them do not panic), seeded with the golden frames.
func FuzzDecode(f *testing.F) {
	factory, err := NewFactory(Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, g := range loadGoldens(f) {
		if len(g.Frame) <= 4096 {
			f.Add(g.Frame)
		}
	}
	f.Add(requestFrame(cat('H', 0x01, "k", 0x79, 0x91, 'Z')))
	f.Add(requestFrame(cat('M', 0x07, "HashMap", 0x01, "k", 0x91, 'Z')))
	f.Fuzz(func(t *testing.T, data []byte) {
		codectest.FuzzDecode(t, factory, data)
	})
}

// FuzzSkip runs the Hessian 2 skipper on arbitrary bytes: it never panics
// and never reports a position outside the input.
func FuzzSkip(f *testing.F) {
	for _, v := range skipValues {
		f.Add(v.b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r reader
		r.reset(data)
		for p := 0; p < len(data); {
			n, err := r.skip(p)
			if n < p || n > len(data) {
				t.Fatalf("skip at %d returned %d for %d bytes", p, n, len(data))
			}
			if err != nil {
				return
			}
			p = n
		}
	})
}

// FuzzStringFastPath: where the short-ASCII fast path reads a string, the
// general path (chunks and UTF-8 units) reads the same string and ends at
// the same place.
func FuzzStringFastPath(f *testing.F) {
	for _, s := range []string{"", "a", "sayHello", "org.apache.dubbo.samples.basic.api.DemoService", strings.Repeat("x", 300)} {
		f.Add(appendString(nil, s))
	}
	f.Add([]byte{0x05, 'a', 0xc3, 0xa9, 'b', 'c'})
	f.Add([]byte{0x31, 0x00, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r reader
		r.reset(data)
		start, end, ok := r.shortASCII(0)
		if !ok {
			return
		}
		want, next, err := r.strSlow(0)
		if err != nil || next != end || want != string(data[start:end]) {
			t.Fatalf("fast path read %q ending at %d; general path %q ending at %d (%v)", data[start:end], end, want, next, err)
		}
	})
}
