// Package golden reads the golden frames the codecs keep in their testdata
// directories, for the tests of any package in the repository (the test
// module included). Frames are written by the protocols' own libraries; see
// codecs/dubbo/testdata and codecs/thrift/testdata.
package golden

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// root is the repository root, found from this file's location so that
// callers in any directory read the same files.
func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// DubboFrame returns the frame of codecs/dubbo/testdata/<name>.json.
func DubboFrame(tb testing.TB, name string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(root(), "codecs", "dubbo", "testdata", name+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	var g struct{ Frame string }
	if err := json.Unmarshal(raw, &g); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	f, err := hex.DecodeString(g.Frame)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return f
}

// ThriftFile is the path of codecs/thrift/testdata/<wire>.txt.
func ThriftFile(wire string) string {
	return filepath.Join(root(), "codecs", "thrift", "testdata", wire+".txt")
}

// ReadThrift parses a Thrift golden file: "# comment" lines, then
// "request <hex>" and "response <hex>" lines. It returns the frames by kind.
func ReadThrift(tb testing.TB, path string) map[string][][]byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][][]byte{}
	for _, line := range strings.Split(string(data), "\n") {
		kind, h, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		f, err := hex.DecodeString(h)
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		out[kind] = append(out[kind], f)
	}
	return out
}

// ThriftFrames returns the request and response frames of one wire
// (transport × protocol, e.g. "framed-binary").
func ThriftFrames(tb testing.TB, wire string) (reqs, rsps [][]byte) {
	tb.Helper()
	g := ReadThrift(tb, ThriftFile(wire))
	if len(g["request"]) == 0 || len(g["response"]) == 0 {
		tb.Fatalf("%s: no golden frames", wire)
	}
	return g["request"], g["response"]
}
