package declarative

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
	"github.com/metaproxy/metaproxy/codecs/declarative/internal/kvpeer"
)

// FuzzDecode feeds arbitrary bytes to the codecs of the tRPC and KVP1
// descriptions, and of QJSON and the features test's (the first byte
// picks one, modulo 4: tRPC, KVP1, QJSON, feat) through
// codectest.FuzzDecode: Split, Decode and Encode never panic, no overlong
// split, accepted frames re-encode to themselves, id and header edits and
// error replies on them do not panic, nor does RejectReply. Seeded with
// the tRPC goldens, KVP1, QJSON and feat frames.
func FuzzDecode(f *testing.F) {
	factories := []codec.Factory{loadExample(f, "trpc.yaml"), loadExample(f, "kv.yaml"), loadExample(f, "qjson.yaml"), featFactory(f)}
	for _, g := range trpcGoldens(f) {
		if len(g.Frame) <= 4096 {
			f.Add(append([]byte{0}, g.Frame...))
		}
	}
	for _, g := range trpcGarbage {
		f.Add(append([]byte{0}, g...))
	}
	for _, k := range []kvpeer.Frame{kvHello, kvEcho, kvOneway, kvPing, kvAnswer, kvFailed, kvPong} {
		b, _ := k.Append([]byte{1})
		f.Add(b)
	}
	for _, g := range kvGarbage {
		f.Add(append([]byte{1}, g...))
	}
	for _, q := range [][]byte{qCall, qEscaped, qBare, qReply, qError} {
		f.Add(append([]byte{2}, q...))
	}
	f.Add(append([]byte{3}, featFrame(1, featMeta(7, 0), "k", "v")...))
	f.Add(append([]byte{3}, featFrame(2, featMeta(7, -1))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		fac := factories[int(data[0])%len(factories)]
		codectest.FuzzDecode(t, fac, data[1:])
		// Bytes Split accepts as a frame must decode or fail cleanly
		// through the other paths too.
		c := fac.NewCodec()
		if n, err := c.Split(data[1:]); err == nil && n > 0 {
			m := &codec.Message{Frame: data[1 : 1+n]}
			if c.Decode(m.Frame, m) == nil {
				_ = c.HeartbeatReply(nil, m)
				e := &codec.Edit{SetID: true, ID: 1 << 30}
				if c.(*Codec).CarriesHeaders(m) {
					e.Headers = []codec.KV{{Key: "x-fuzz", Value: "v"}}
				}
				if out, err := c.Encode(nil, m, e); err == nil {
					d, n2, err := codectest.DecodeOne(fac.NewCodec(), out)
					if err != nil || n2 != len(out) || d.ID != e.ID && d.Kind != codec.KindHeartbeat {
						t.Fatalf("an edited frame does not decode: n=%d/%d err=%v id=%d", n2, len(out), err, d.ID)
					}
				}
			}
		}
	})
}

// FuzzDescription loads arbitrary descriptions (seeded with the examples):
// loading never panics, and a description that loads decodes its seed
// frames, and garbage, without panicking.
func FuzzDescription(f *testing.F) {
	for _, name := range []string{"trpc.yaml", "kv.yaml", "qjson.yaml"} {
		f.Add(exampleJSON(f, name))
	}
	frames := [][]byte{qCall, qReply, featFrame(1, featMeta(7, 0), "k", "v")}
	for _, k := range []kvpeer.Frame{kvHello, kvPing, kvAnswer} {
		b, _ := k.Append(nil)
		frames = append(frames, b)
	}
	for _, g := range trpcGoldens(f) {
		if !g.stream() && len(frames) < 8 {
			// A few frames: each input compiles a description and decodes
			// them all, and a slow input under a loaded CI machine can
			// outlive the fuzz smoke's time (context deadline exceeded).
			frames = append(frames, g.Frame)
		}
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		fac, err := newFromJSON(js)
		if err != nil {
			return
		}
		for _, fr := range frames {
			codectest.FuzzDecode(t, fac, fr)
		}
	})
}
