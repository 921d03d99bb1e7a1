package harness

import (
	"testing"
)

// Proxy is a way to run metaproxy from an Envoy bootstrap. End-to-end tests
// are table-driven over Proxies() so that every case runs against every
// host of the engine.
type Proxy interface {
	// Name names the implementation in subtest names.
	Name() string
	// Start runs a proxy from bootstrapYAML until the test ends and returns
	// the address of the bootstrap's first listener once it accepts
	// connections. It fails t if the proxy does not come up.
	Start(t testing.TB, bootstrapYAML string) (listenAddr string)
}

// Proxies returns the proxy implementations end-to-end tests run against.
func Proxies() []Proxy { return []Proxy{Standalone{}, ABIHost{}} }

// Standalone runs the metaproxy binary (cmd/metaproxy) with -c <bootstrap>.
type Standalone struct{}

// Name implements Proxy.
func (Standalone) Name() string { return "standalone" }

// Start implements Proxy.
func (p Standalone) Start(t testing.TB, bootstrapYAML string) string {
	t.Helper()
	addr, _ := p.StartProcess(t, bootstrapYAML)
	return addr
}
