package abihost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShimMatchesEnvoy: the plugin's shim (plugin/shim) declares the C
// functions of Envoy's network filter itself, copied from Envoy's api.h.
// Every declaration must still be there, word for word, in the api.h of
// the Envoy module go.mod names, so a new Envoy that changes one fails
// here instead of calling it wrongly.
func TestShimMatchesEnvoy(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	envoy, err := EnvoyDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ours := readFile(t, filepath.Join(root, "plugin", "shim", "capi.h"))
	theirs := normalize(readFile(t, filepath.Join(envoy, "contrib", "golang", "common", "go", "api", "api.h")))
	n := 0
	for _, decl := range strings.SplitAfter(ours, ";") {
		decl = normalize(decl[strings.LastIndex(decl, "\n\n")+1:])
		if !strings.Contains(decl, "envoyGoFilter") {
			continue
		}
		n++
		if !strings.Contains(theirs, decl) {
			t.Errorf("plugin/shim/capi.h declares %q, which Envoy's api.h does not", decl)
		}
	}
	if n != 12 {
		t.Errorf("plugin/shim/capi.h declares %d Envoy functions, want the 12 the shim calls", n)
	}
	for _, s := range []string{"CAPIYield = -6"} {
		if !strings.Contains(theirs, s) {
			t.Errorf("Envoy's api.h has no %q, which plugin/shim/capi.h assumes", s)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// normalize drops // comments and folds whitespace to single spaces.
func normalize(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte(' ')
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
