package thrift

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// benchFrames are the frames of the benchmarks: a sayHello call (with one
// info header on THeader) and the echoBag call, whose argument has every
// type nested three deep.
func benchFrames(b *testing.B, w wire) (hello, bag []byte) {
	reqs, _ := w.golden(b)
	return reqs[0], reqs[3]
}

// BenchmarkDecode splits and decodes one call per iteration into a reused
// message, the proxy's steady state.
func BenchmarkDecode(b *testing.B) {
	for _, w := range wires {
		hello, bag := benchFrames(b, w)
		for _, fr := range []struct {
			name  string
			frame []byte
		}{{"sayHello", hello}, {"echoBag", bag}} {
			b.Run(w.name+"/"+fr.name, func(b *testing.B) {
				c := mustFactory(b, Config{}).NewCodec()
				if w.nonStrict && w.transport == TransportUnframed {
					c = mustFactory(b, Config{Protocol: "binary"}).NewCodec()
				}
				f := fr.frame
				var m codec.Message
				b.SetBytes(int64(len(f)))
				b.ReportAllocs()
				for b.Loop() {
					m.Reset()
					m.Frame = f
					if n, err := c.Split(f); n != len(f) || err != nil {
						b.Fatal(n, err)
					}
					if err := c.Decode(f, &m); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRewriteID re-encodes a sayHello call with a new sequence id, as
// the proxy does for every request on a shared upstream connection. The
// compact ids grow from one varint byte to three.
func BenchmarkRewriteID(b *testing.B) {
	for _, w := range wires {
		hello, _ := benchFrames(b, w)
		b.Run(w.name, func(b *testing.B) {
			c := mustFactory(b, Config{Transport: w.transport.String(), Protocol: w.protocol.String()}).NewCodec()
			m := &codec.Message{Frame: hello}
			if _, err := c.Split(hello); err != nil {
				b.Fatal(err)
			}
			if err := c.Decode(hello, m); err != nil {
				b.Fatal(err)
			}
			e := &codec.Edit{SetID: true, ID: 0x5a5a}
			dst := make([]byte, 0, 2*len(hello))
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

// BenchmarkHeaderEdit adds two info headers to a THeader call and rewrites
// its sequence id.
func BenchmarkHeaderEdit(b *testing.B) {
	for _, name := range []string{"header-binary", "header-compact"} {
		w := wireNamed(b, name)
		hello, _ := benchFrames(b, w)
		b.Run(name, func(b *testing.B) {
			c := mustFactory(b, Config{}).NewCodec()
			m := &codec.Message{Frame: hello}
			if _, err := c.Split(hello); err != nil {
				b.Fatal(err)
			}
			if err := c.Decode(hello, m); err != nil {
				b.Fatal(err)
			}
			e := &codec.Edit{SetID: true, ID: 7, Headers: []codec.KV{{Key: "x-route", Value: "blue"}, {Key: "x-trace-id", Value: "new"}}}
			dst := make([]byte, 0, 2*len(hello))
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

// BenchmarkSplitTrickled feeds the unframed echoBag call one byte per Split
// call: the cost per byte stays that of one walk because the walker resumes
// where it stopped.
func BenchmarkSplitTrickled(b *testing.B) {
	for _, name := range []string{"unframed-binary", "unframed-compact"} {
		_, bag := benchFrames(b, wireNamed(b, name))
		b.Run(name, func(b *testing.B) {
			c := mustFactory(b, Config{}).NewCodec()
			b.SetBytes(int64(len(bag)))
			b.ReportAllocs()
			for b.Loop() {
				for k := 1; k <= len(bag); k++ {
					if n, err := c.Split(bag[:k]); err != nil || (n != 0) != (k == len(bag)) {
						b.Fatal(k, n, err)
					}
				}
			}
		})
	}
}
