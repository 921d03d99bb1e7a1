package thriftcodec

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/metaproxy/metaproxy/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden frames in codecs/thrift/testdata")

// TestGolden checks that the golden frames of codecs/thrift are what the
// Apache library writes for Requests and Responses (byte for byte, except
// that the library writes THeader info headers in map order), or with
// -update rewrites them.
func TestGolden(t *testing.T) {
	for _, w := range Wires {
		t.Run(w.Name, func(t *testing.T) {
			live := map[string][][]byte{"request": frames(t, w, Requests(w)), "response": frames(t, w, Responses(w))}
			path := golden.ThriftFile(w.Name)
			if *update {
				writeGolden(t, path, w, live)
				return
			}
			golden := golden.ReadThrift(t, path)
			for kind, fs := range live {
				if len(golden[kind]) != len(fs) {
					t.Fatalf("%s: %d golden %s frames, want %d (run with -update)", path, len(golden[kind]), kind, len(fs))
				}
				for i, f := range fs {
					want, err := Read(w, f)
					if err != nil {
						t.Fatal(err)
					}
					got, err := Read(w, golden[kind][i])
					if err != nil {
						t.Fatalf("%s %s %d: the library cannot read it: %v", path, kind, i, err)
					}
					if len(f) != len(golden[kind][i]) || !reflect.DeepEqual(got, want) {
						t.Errorf("%s %s %d: stale (run with -update)", path, kind, i)
					}
				}
			}
		})
	}
}

func frames(t *testing.T, w Wire, specs []Spec) [][]byte {
	t.Helper()
	var out [][]byte
	for _, s := range specs {
		f, err := w.Write(s)
		if err != nil {
			t.Fatalf("%s %s: %v", w.Name, s.Method, err)
		}
		out = append(out, f)
	}
	return out
}

func writeGolden(t *testing.T, path string, w Wire, live map[string][][]byte) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s frames written by Apache Thrift v0.17.0 (Go library, code from thrift-compiler 0.17.0).\n", w.Name)
	fmt.Fprintf(&b, "# Regenerate: cd test && go test ./thriftcodec -run TestGolden -update\n")
	for _, kind := range []string{"request", "response"} {
		for _, f := range live[kind] {
			fmt.Fprintf(&b, "%s %x\n", kind, f)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
