package abihost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Root returns the directory of the metaproxy repository (the root module).
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/metaproxy/metaproxy\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("abihost: not inside the metaproxy repository")
		}
		dir = parent
	}
}

// ShippedConfig returns the file name of the repository's envoy-configs.
func ShippedConfig(name string) ([]byte, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(root, "envoy-configs", name))
}

// EnvoyDir returns the directory of the Envoy Go module the plugin is built
// against; the host compiles against its C headers. It downloads the module
// when the cache lacks it (go list -m gives no directory then, and a fresh
// clone that has not built the plugin yet has not fetched it).
func EnvoyDir(root string) (string, error) {
	out, err := run(root, nil, "go", "mod", "download", "-json", "github.com/envoyproxy/envoy")
	if err != nil {
		return "", err
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return "", fmt.Errorf("abihost: go mod download github.com/envoyproxy/envoy: %w", err)
	}
	if m.Dir == "" {
		return "", fmt.Errorf("abihost: go mod download github.com/envoyproxy/envoy: no directory (%s)", m.Error)
	}
	return m.Dir, nil
}

// BuildHost compiles the C host into dir and returns its path. The host
// exports exactly the symbols Envoy's exported_symbols.txt lets Envoy
// export (envoyGo*), as Envoy's own link does.
func BuildHost(root, dir string) (string, error) {
	envoy, err := EnvoyDir(root)
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "test", "abihost", "host")
	files, err := filepath.Glob(filepath.Join(src, "*.c"))
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "abihost")
	args := []string{"-O2", "-g", "-std=gnu11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
		"-I" + filepath.Join(envoy, "contrib", "golang", "common", "go", "api"),
		"-I" + filepath.Join(envoy, "contrib", "golang", "common", "dso"),
		"-Wl,--dynamic-list=" + filepath.Join(envoy, "bazel", "exported_symbols.txt"),
		"-o", bin}
	args = append(args, files...)
	args = append(args, "-ldl", "-lpthread")
	if _, err := run(src, nil, "gcc", args...); err != nil {
		return "", err
	}
	return bin, nil
}

// BuildPlugin builds metaprotocol.so into dir with plugin/build.sh, the
// script `make so` and the Dockerfile run, adding build tags.
func BuildPlugin(root, dir string, tags ...string) (string, error) {
	so := filepath.Join(dir, "metaprotocol.so")
	env := []string{"GO_TAGS=" + strings.Join(tags, ",")}
	if _, err := run(root, env, filepath.Join(root, "plugin", "build.sh"), so); err != nil {
		return "", err
	}
	return so, nil
}

func run(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// Artifacts are a built host and plugin.
type Artifacts struct {
	Root, Host, Plugin string
}

var builds struct {
	mu   sync.Mutex
	host string
	m    map[string]*Artifacts
}

// Build returns the host and a plugin built with tags into dir, building
// them once per test binary and set of tags; dir must outlive the tests
// that use them. The plugin takes a minute or more when Go's build cache is
// cold. ABIHOST_PLUGIN names a prebuilt plugin to use instead of building
// one without tags.
func Build(t testing.TB, dir string, tags ...string) *Artifacts {
	t.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	key := strings.Join(tags, ",")
	if a := builds.m[key]; a != nil {
		return a
	}
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if builds.host == "" {
		if builds.host, err = BuildHost(root, dir); err != nil {
			t.Fatal(err)
		}
	}
	a := &Artifacts{Root: root, Host: builds.host}
	sub := filepath.Join(dir, "plugin-"+strings.Join(append([]string{"default"}, tags...), "-"))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if p := os.Getenv("ABIHOST_PLUGIN"); p != "" && len(tags) == 0 {
		a.Plugin = p
	} else if a.Plugin, err = BuildPlugin(root, sub, tags...); err != nil {
		t.Fatal(err)
	}
	if builds.m == nil {
		builds.m = map[string]*Artifacts{}
	}
	builds.m[key] = a
	return a
}
