package harness

import (
	"testing"

	"github.com/metaproxy/metaproxy/test/abihost"
)

// ABIHost runs the bootstrap with metaprotocol.so, the Envoy plugin, loaded
// in the ABI host (test/abihost): a C program that plays Envoy's side of the
// golang network filter. Each MetaProtocolProxy listener becomes the golang
// filter with the MetaProtocolProxy and the static clusters as its
// plugin_config, and the plainText cluster is added, as a real Envoy
// deployment is configured.
type ABIHost struct {
	// Tags are extra build tags for the plugin (abitest adds test-only
	// codecs and filters).
	Tags []string
	// Env is added to the host's environment.
	Env []string
	// KeepEnv runs the host without GODEBUG=cgocheck=0, as Istio runs Envoy.
	KeepEnv bool
}

// Name implements Proxy.
func (ABIHost) Name() string { return "abihost" }

// Start implements Proxy.
func (p ABIHost) Start(t testing.TB, bootstrapYAML string) string {
	t.Helper()
	h := p.StartHost(t, bootstrapYAML)
	return h.FirstAddr()
}

// StartHost is Start returning the running host, for tests that look at
// its log or counters.
func (p ABIHost) StartHost(t testing.TB, bootstrapYAML string) *abihost.Host {
	t.Helper()
	dir, err := buildDir()
	if err != nil {
		t.Fatal(err)
	}
	a := abihost.Build(t, dir, p.Tags...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("abihost bootstrap (before conversion to the golang filter):\n%s", bootstrapYAML)
		}
	})
	return abihost.StartBootstrap(t, a, []byte(bootstrapYAML), abihost.Options{}, abihost.StartOptions{Env: p.Env, KeepEnv: p.KeepEnv})
}
