package abihost

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildDir holds the host and plugins built for this test binary.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "abihost-test-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// entryPoints are the ten functions Envoy's dso.cc looks up in the plugin.
var entryPoints = []string{
	"envoyGoFilterOnNetworkFilterConfig",
	"envoyGoFilterOnDownstreamConnection",
	"envoyGoFilterOnDownstreamData",
	"envoyGoFilterOnDownstreamEvent",
	"envoyGoFilterOnDownstreamWrite",
	"envoyGoFilterOnUpstreamConnectionReady",
	"envoyGoFilterOnUpstreamConnectionFailure",
	"envoyGoFilterOnUpstreamData",
	"envoyGoFilterOnUpstreamEvent",
	"envoyGoFilterOnSemaDec",
}

// dynSymbols lists the envoyGo* dynamic symbols of an ELF file.
func dynSymbols(t *testing.T, file, which string) []string {
	t.Helper()
	out, err := exec.Command("nm", "-D", which, file).Output()
	if err != nil {
		t.Fatalf("nm %s %s: %v", which, file, err)
	}
	var syms []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[len(f)-1], "envoyGo") {
			syms = append(syms, f[len(f)-1])
		}
	}
	slices.Sort(syms)
	return syms
}

// TestSymbols checks the plugin against the host's side of the ABI: every
// Envoy function the plugin calls is one the host exports (lazy binding
// would otherwise load the plugin and die at the first call), and the
// plugin exports the ten entry points.
func TestSymbols(t *testing.T) {
	a := Build(t, buildDir)
	calls := dynSymbols(t, a.Plugin, "--undefined-only")
	exported := dynSymbols(t, a.Host, "--defined-only")
	if !slices.Equal(calls, exported) {
		t.Errorf("the plugin calls %v\nthe host exports %v", calls, exported)
	}
	defined := dynSymbols(t, a.Plugin, "--defined-only")
	want := slices.Clone(entryPoints)
	slices.Sort(want)
	if !slices.Equal(defined, want) {
		t.Errorf("the plugin exports %v, want the entry points %v", defined, want)
	}
}

// TestGlibc checks that the plugin loads in Envoy images built on glibc
// 2.36 (Debian bookworm, distroless) and later (Ubuntu noble proxyv2).
func TestGlibc(t *testing.T) {
	a := Build(t, buildDir)
	out, err := exec.Command("objdump", "-T", a.Plugin).Output()
	if err != nil {
		t.Fatal(err)
	}
	highest := [2]int{}
	for _, m := range regexp.MustCompile(`GLIBC_(\d+)\.(\d+)`).FindAllStringSubmatch(string(out), -1) {
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		if major > highest[0] || major == highest[0] && minor > highest[1] {
			highest = [2]int{major, minor}
		}
	}
	if highest[0] != 2 || highest[1] > 36 {
		t.Errorf("the plugin needs GLIBC_%d.%d, more than bookworm's 2.36", highest[0], highest[1])
	}
}

// TestBadConfigRefusesConnections runs a listener whose plugin_config is
// invalid: the host must stay up and every connection must be closed
// without an answer, with one error line each.
func TestBadConfigRefusesConnections(t *testing.T) {
	a := Build(t, buildDir)
	bootstrap := readConfig(t, "dubbo.yaml")
	bootstrap = bytes.Replace(bootstrap, []byte("aeraki.meta_protocol.codec.dubbo"), []byte("no.such.codec"), 1)
	bootstrap, err := Localize(bootstrap, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := StartBootstrap(t, a, bootstrap, Options{}, StartOptions{})
	const conns = 3
	for range conns {
		c, err := net.Dial("tcp", h.Addr("dubbo"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("not even a frame"))
		got, err := io.ReadAll(c)
		if err != nil && !isReset(err) {
			t.Errorf("read: %v", err)
		}
		if len(got) > 0 {
			t.Errorf("a refused connection answered %q", got)
		}
		c.Close()
	}
	waitFor(t, "the refusals to be logged", func() bool {
		return strings.Count(h.Log(), "refusing connection") >= conns
	})
	if n := strings.Count(h.Log(), "refusing connection"); n != conns {
		t.Errorf("%d refusal lines for %d connections:\n%s", n, conns, h.Log())
	}
	if !strings.Contains(h.Log(), `unknown codec \"no.such.codec\"`) {
		t.Errorf("the log does not name the bad codec:\n%s", h.Log())
	}
	if !h.Alive() {
		t.Fatal("the host died")
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// waitFor polls cond until it holds. It bounds the wait only to fail
// instead of hanging; nothing is asserted about time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readConfig(t *testing.T, name string) []byte {
	t.Helper()
	b, err := ShippedConfig(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShippedConfigsLoad runs every shipped bootstrap and the bootstrap the
// shipped Istio EnvoyFilters make: the host must take them (one filter
// chain ending in the golang filter, a plainText ORIGINAL_DST cluster) and
// the plugin must accept every plugin_config. Their clusters point at a
// local address, since the shipped ones name hosts of a real deployment.
func TestShippedConfigsLoad(t *testing.T) {
	istio := func(names ...string) []byte {
		var docs [][]byte
		for _, n := range names {
			docs = append(docs, readConfig(t, filepath.Join("istio", n)))
		}
		b, err := EnvoyFilterBootstrap(docs...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name      string
		bootstrap []byte
		clusters  []string
	}{
		{"dubbo.yaml", readConfig(t, "dubbo.yaml"), []string{"dubbo-provider"}},
		{"thrift.yaml", readConfig(t, "thrift.yaml"), []string{"thrift-server"}},
		{"istio", istio("plaintext-cluster.yaml", "dubbo-outbound.yaml", "dubbo-inbound.yaml"), []string{"dubbo-provider", "local-app"}},
	}
	a := Build(t, buildDir)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eps := map[string][]string{}
			for _, cl := range c.clusters {
				eps[cl] = []string{"127.0.0.1:1"}
			}
			b, err := Localize(c.bootstrap, eps)
			if err != nil {
				t.Fatal(err)
			}
			h := StartBootstrap(t, a, b, Options{}, StartOptions{})
			// The host's log reaches the test through a pipe: wait for the
			// lines before counting them.
			waitFor(t, "every listener's configuration to be logged", func() bool {
				return strings.Count(h.Log(), "metaprotocol: listener configured") >= len(h.order)
			})
			if n := strings.Count(h.Log(), "metaprotocol: listener configured"); n != len(h.order) {
				t.Errorf("%d listeners configured, want %d:\n%s", n, len(h.order), h.Log())
			}
			if strings.Contains(h.Log(), "invalid plugin_config") {
				t.Errorf("the plugin refused a shipped config:\n%s", h.Log())
			}
		})
	}
}

// TestTranslateRefuses checks that bootstraps the host would not run as
// Envoy does are errors.
func TestTranslateRefuses(t *testing.T) {
	good := string(readConfig(t, "dubbo.yaml"))
	cases := map[string]struct{ old, new, want string }{
		"not terminal":       {"is_terminal_filter: true", "is_terminal_filter: false", "is_terminal_filter"},
		"plainText type":     {"type: ORIGINAL_DST", "type: STATIC", "ORIGINAL_DST"},
		"bad timeout":        {"connect_timeout: 5s", "connect_timeout: 5", "connect_timeout"},
		"other filter":       {"name: envoy.filters.network.golang", "name: envoy.filters.network.tcp_proxy", "only filter"},
		"plugin config type": {"type.googleapis.com/xds.type.v3.TypedStruct", "type.googleapis.com/no.such.Type", "plugin_config"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := strings.Replace(good, c.old, c.new, 1)
			if b == good {
				t.Fatalf("%q is not in dubbo.yaml", c.old)
			}
			_, err := Translate([]byte(b), Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error about %s", err, c.want)
			}
		})
	}
}
