// Package harness starts real peers and proxies for metaproxy's end-to-end
// tests: it builds binaries once per test run, picks free ports, runs
// processes in their own process groups and renders Envoy bootstraps.
//
// A test package that uses Build should call Main from TestMain so that the
// build directory is removed when the run ends:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
package harness

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Module is the import path of the product module; the test module is
// Module + "/test".
const Module = "github.com/metaproxy/metaproxy"

var builds struct {
	mu  sync.Mutex
	dir string
	m   map[string]*build
}

type build struct {
	once sync.Once
	bin  string
	err  error
}

// Main runs the tests of a package and removes the binaries Build made.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		// Every goroutine a test started (process watchers, clients,
		// servers in the test) must have ended with it.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines outlived the tests:", err)
			code = 1
		}
	}
	builds.mu.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.mu.Unlock()
	os.Exit(code)
}

// Build compiles the main package pkg (an import path in the product or the
// test module) with extra `go build` flags and returns the binary's path.
// Each (pkg, flags) pair is built once per test process; concurrent callers
// wait for the same build. A build failure fails t.
func Build(t testing.TB, pkg string, flags ...string) string {
	t.Helper()
	b := buildOnce(pkg+" "+strings.Join(flags, " "), func() (string, error) { return goBuild(t, pkg, flags) })
	if b.err != nil {
		t.Fatalf("build %s: %v", pkg, b.err)
	}
	return b.bin
}

// buildOnce runs do once per key per test process (concurrent callers
// wait for the same run) and returns its build.
func buildOnce(key string, do func() (string, error)) *build {
	builds.mu.Lock()
	if builds.m == nil {
		builds.m = map[string]*build{}
	}
	b, ok := builds.m[key]
	if !ok {
		b = &build{}
		builds.m[key] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.bin, b.err = do() })
	return b
}

// moduleDirOnce builds the module directory rel (see buildModuleDir) once
// per test process.
func moduleDirOnce(t testing.TB, rel, name string) *build {
	return buildOnce("module-dir:"+rel, func() (string, error) { return buildModuleDir(t, rel, name) })
}

func goBuild(t testing.TB, pkg string, flags []string) (string, error) {
	dir, err := buildDir()
	if err != nil {
		return "", err
	}
	modDir, err := moduleDir(pkg)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, fmt.Sprintf("%s-%d", path.Base(pkg), time.Now().UnixNano()))
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = modDir
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, msg)
	}
	t.Logf("built %s in %v", pkg, time.Since(start).Round(time.Millisecond))
	return out, nil
}

// buildDir returns the run's binary directory, creating it on first use.
func buildDir() (string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir == "" {
		d, err := os.MkdirTemp("", "metaproxy-e2e-bin-")
		if err != nil {
			return "", err
		}
		builds.dir = d
	}
	return builds.dir, nil
}

// moduleDir returns the directory of the module that holds pkg: the test
// module for Module/test/..., the product module otherwise. It is found from
// this source file, so tests work from any working directory.
func moduleDir(pkg string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the harness source")
	}
	testDir := filepath.Dir(filepath.Dir(file))
	switch {
	case pkg == Module+"/test" || strings.HasPrefix(pkg, Module+"/test/"):
		return testDir, nil
	case pkg == Module || strings.HasPrefix(pkg, Module+"/"):
		return filepath.Dir(testDir), nil
	}
	return "", fmt.Errorf("package %s is in neither %s nor its test module", pkg, Module)
}
