package trpc

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec/codectest"
)

// FuzzDecode feeds arbitrary bytes to the codec (codectest.FuzzDecode:
// Split, Decode and Encode never panic, no overlong split, accepted frames
// re-encode to themselves, id and trans_info edits and error replies on
// them do not panic, nor does RejectReply on refused bytes), seeded with
// the golden frames.
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
	for _, g := range garbage {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		codectest.FuzzDecode(t, factory, data)
	})
}
