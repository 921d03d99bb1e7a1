package thriftpeer

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the Go code from hello.thrift with
// the installed thrift compiler and compares it with gen/.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if _, err := exec.LookPath("thrift"); err != nil {
		t.Skip("thrift compiler not installed (apt install thrift-compiler)")
	}
	out := t.TempDir()
	cmd := exec.Command("thrift", "--gen", "go:package_prefix=github.com/metaproxy/metaproxy/test/peers/thrift/gen/", "-out", out, "hello.thrift")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("thrift: %v\n%s", err, msg)
	}
	if err := os.RemoveAll(filepath.Join(out, "hello", "hello-remote")); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command("gofmt", "-w", out).CombinedOutput(); err != nil {
		t.Fatalf("gofmt: %v\n%s", err, msg)
	}
	fresh, err := filepath.Glob(filepath.Join(out, "hello", "*"))
	if err != nil {
		t.Fatal(err)
	}
	kept, err := filepath.Glob(filepath.Join("gen", "hello", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != len(kept) {
		t.Fatalf("the compiler writes %d files, gen/hello has %d: run go generate", len(fresh), len(kept))
	}
	for _, f := range fresh {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("gen", "hello", filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("gen/hello/%s is stale (%v): run go generate in test/peers/thrift", filepath.Base(f), err)
		}
	}
}
