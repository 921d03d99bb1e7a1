package declarative

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/metaproxy/metaproxy/codec"
)

// exampleJSON returns examples/<name> as JSON.
func exampleJSON(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("examples", name))
	if err != nil {
		tb.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(b)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return js
}

// loadExample compiles examples/<name> through the codec registry, as a
// listener's config does.
func loadExample(tb testing.TB, name string) codec.Factory {
	tb.Helper()
	p, ok := codec.Lookup("declarative")
	if !ok {
		tb.Fatal("declarative codec not registered")
	}
	f, err := p.New(exampleJSON(tb, name))
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return f
}

// golden is a frame of codecs/trpc/testdata, captured between real
// trpc-go v1.1.0 peers.
type golden struct {
	Name   string `json:"-"`
	Origin string `json:"origin"`
	Hex    string `json:"frame"`
	Frame  []byte `json:"-"`
}

func (g *golden) stream() bool { return len(g.Frame) > 2 && g.Frame[2] == 1 }

func (g *golden) fromClient() bool { return strings.Contains(g.Origin, " client,") }

func trpcGoldens(tb testing.TB) []golden {
	tb.Helper()
	files, err := filepath.Glob("../trpc/testdata/*.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no tRPC goldens: %v", err)
	}
	var gs []golden
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

// decode splits and decodes one whole frame with a fresh codec of f.
func decode(tb testing.TB, f codec.Factory, frame []byte) *codec.Message {
	tb.Helper()
	c := f.NewCodec()
	if n, err := c.Split(frame); err != nil || n != len(frame) {
		tb.Fatalf("split: n=%d of %d, err=%v", n, len(frame), err)
	}
	m := &codec.Message{Frame: frame}
	if err := c.Decode(frame, m); err != nil {
		tb.Fatalf("decode: %v", err)
	}
	return m
}

// metaMap returns m's metadata as a map.
func metaMap(m *codec.Message) map[string]string {
	out := map[string]string{}
	for _, kv := range m.Meta.All() {
		out[kv.Key] = kv.Value
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
