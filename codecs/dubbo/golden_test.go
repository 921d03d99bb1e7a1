package dubbo

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// golden is a frame from testdata: built or captured by the real Dubbo
// libraries, with its meaning as dubbo-go-hessian2 decodes it. The files
// are written by test/dubbocodec (go test ./dubbocodec -update in test/),
// which also cross-checks them against the library.
type golden struct {
	Name   string `json:"-"`
	Origin string `json:"origin"`
	Hex    string `json:"frame"`
	Frame  []byte `json:"-"`
	Want   struct {
		Kind             string            `json:"kind"`
		ID               uint64            `json:"id"`
		Status           string            `json:"status"`
		HeartbeatRequest bool              `json:"heartbeat_request"`
		Meta             map[string]string `json:"meta"`
	} `json:"want"`
}

// loadGoldens reads testdata/*.json, failing the test if there are none.
func loadGoldens(tb testing.TB) []golden {
	tb.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no golden frames in testdata: %v", err)
	}
	gs := make([]golden, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(b, &g); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		if g.Frame, err = hex.DecodeString(g.Hex); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		g.Name = strings.TrimSuffix(filepath.Base(f), ".json")
		gs = append(gs, g)
	}
	return gs
}

// goldenFrame returns the frame of the named golden.
func goldenFrame(tb testing.TB, name string) []byte {
	tb.Helper()
	for _, g := range loadGoldens(tb) {
		if g.Name == name {
			return g.Frame
		}
	}
	tb.Fatalf("no golden %q", name)
	return nil
}

// isRequest reports whether a golden frame travels client to server.
func (g *golden) isRequest() bool { return g.Frame[2]&flagRequest != 0 }

func newTestCodec(tb testing.TB) *Codec {
	tb.Helper()
	f, err := NewFactory(Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return f.NewCodec().(*Codec)
}

// decodeFrame splits and decodes one whole frame with a fresh codec.
func decodeFrame(tb testing.TB, frame []byte) *codec.Message {
	tb.Helper()
	c := newTestCodec(tb)
	if n, err := c.Split(frame); err != nil || n != len(frame) {
		tb.Fatalf("split: n=%d of %d, err=%v", n, len(frame), err)
	}
	m := &codec.Message{Frame: frame}
	if err := c.Decode(frame, m); err != nil {
		tb.Fatalf("decode: %v", err)
	}
	return m
}
