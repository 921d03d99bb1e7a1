package declarative

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codecs/declarative/internal/kvpeer"
)

// benchDecode splits and decodes frame over and over with one codec and
// one message, as a proxy connection does.
func benchDecode(b *testing.B, f codec.Factory, frame []byte) {
	c := f.NewCodec()
	var m codec.Message
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		m.Reset()
		m.Frame = frame
		if n, err := c.Split(frame); err != nil || n != len(frame) {
			b.Fatal(n, err)
		}
		if err := c.Decode(frame, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func goldenNamed(b *testing.B, name string) []byte {
	for _, g := range trpcGoldens(b) {
		if g.Name == name {
			return g.Frame
		}
	}
	b.Fatalf("no golden %s", name)
	return nil
}

// BenchmarkDecode compares the native tRPC codec with examples/trpc.yaml
// on the same golden frames (a call with four trans_info entries, a
// plain call, a response), and decodes a KVP1 request.
func BenchmarkDecode(b *testing.B) {
	decl, native := loadExample(b, "trpc.yaml"), nativeTRPC(b)
	for _, name := range []string{"req_trans_info", "req_hello", "rsp_hello"} {
		frame := goldenNamed(b, name)
		b.Run("trpc-native/"+name, func(b *testing.B) { benchDecode(b, native, frame) })
		b.Run("trpc-declarative/"+name, func(b *testing.B) { benchDecode(b, decl, frame) })
	}
	kv, _ := kvHello.Append(nil)
	b.Run("kv-declarative/hello", func(b *testing.B) { benchDecode(b, loadExample(b, "kv.yaml"), kv) })
	rf := kvpeer.Frame{Flags: kvpeer.FlagResponse, ID: 1, Pairs: kvAnswer.Pairs}
	resp, _ := rf.Append(nil)
	b.Run("kv-declarative/response", func(b *testing.B) { benchDecode(b, loadExample(b, "kv.yaml"), resp) })
}

// BenchmarkEncodeRewriteID: the id rewrite of every multiplexed upstream
// request, in place.
func BenchmarkEncodeRewriteID(b *testing.B) {
	decl, native := loadExample(b, "trpc.yaml"), nativeTRPC(b)
	frame := goldenNamed(b, "req_trans_info")
	for _, f := range []struct {
		name string
		f    codec.Factory
	}{{"trpc-native", native}, {"trpc-declarative", decl}} {
		b.Run(f.name, func(b *testing.B) {
			c := f.f.NewCodec()
			m := decode(b, f.f, frame)
			dst := make([]byte, 0, 2*len(frame))
			e := &codec.Edit{SetID: true, ID: 77}
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = c.Encode(dst[:0], m, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDecodeAllocatesNothing: decoding the tRPC goldens and KVP1 frames,
// and rewriting their ids in place, allocates nothing.
func TestDecodeAllocatesNothing(t *testing.T) {
	kv, _ := kvEcho.Append(nil)
	frames := map[string][]byte{"kv": kv}
	for _, g := range trpcGoldens(t) {
		if !g.stream() {
			frames[g.Name] = g.Frame
		}
	}
	for name, frame := range frames {
		f := loadExample(t, "trpc.yaml")
		if name == "kv" {
			f = loadExample(t, "kv.yaml")
		}
		c := f.NewCodec()
		var m codec.Message
		dst := make([]byte, 0, 2*len(frame))
		e := &codec.Edit{SetID: true, ID: 9}
		if n := testing.AllocsPerRun(100, func() {
			m.Reset()
			m.Frame = frame
			if _, err := c.Split(frame); err != nil || c.Decode(frame, &m) != nil {
				t.Fatal("decode failed")
			}
			if _, err := c.Encode(dst[:0], &m, e); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}
