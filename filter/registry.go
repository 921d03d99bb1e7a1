package filter

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

// RouterName is the name of the router, which ends every chain. It is not a
// Filter: the proxy routes after the last configured filter. Listing it (by
// this name or Aeraki's "aeraki.meta_protocol.filters.router") is allowed and
// must be last.
const RouterName = "router"

// RouterAliases are other names of the router.
var RouterAliases = []string{"aeraki.meta_protocol.filters.router", "envoy.filters.meta_protocol.router"}

// IsRouter reports whether name names the router.
func IsRouter(name string) bool {
	if name == RouterName {
		return true
	}
	for _, a := range RouterAliases {
		if a == name {
			return true
		}
	}
	return false
}

// Definition describes a filter to the registry.
type Definition struct {
	// Name is the short name, such as "local_ratelimit".
	Name string
	// Aliases are other accepted names, such as Aeraki's
	// "aeraki.meta_protocol.filters.local_ratelimit".
	Aliases []string
	// New validates config (JSON, nil when absent; unknown fields are an
	// error) and builds the filter. A filter that holds resources implements
	// io.Closer; the proxy closes it when the configuration is retired.
	New func(config json.RawMessage, env Env) (Filter, error)
}

var (
	mu   sync.RWMutex
	defs = map[string]*Definition{}
)

// Register adds d. A duplicate name or alias is an error.
func Register(d Definition) error {
	if d.Name == "" || d.New == nil {
		return fmt.Errorf("filter: register: definition needs a name and New")
	}
	mu.Lock()
	defer mu.Unlock()
	names := append([]string{d.Name}, d.Aliases...)
	for _, n := range names {
		if _, dup := defs[n]; dup || IsRouter(n) {
			return fmt.Errorf("filter: register %q: name %q already registered", d.Name, n)
		}
	}
	for _, n := range names {
		defs[n] = &d
	}
	return nil
}

// MustRegister is Register for init functions.
func MustRegister(d Definition) {
	if err := Register(d); err != nil {
		panic(err)
	}
}

// Lookup finds a filter by name or alias.
func Lookup(name string) (*Definition, bool) {
	mu.RLock()
	defer mu.RUnlock()
	d, ok := defs[name]
	return d, ok
}

// Names lists registered names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := []string{RouterName}
	for n := range defs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
