package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
)

// Factory makes the codecs of one configured protocol. It must be safe for
// concurrent use.
type Factory interface {
	NewCodec() Codec
}

// FactoryFunc adapts a function to Factory.
type FactoryFunc func() Codec

// NewCodec calls f.
func (f FactoryFunc) NewCodec() Codec { return f() }

// Protocol describes a codec to the registry.
type Protocol struct {
	// Name is the short name, such as "dubbo".
	Name string
	// Aliases are other names accepted in config, such as Aeraki's
	// "aeraki.meta_protocol.codec.dubbo".
	Aliases []string
	// New validates the codec's config and returns its Factory. config is
	// the JSON form of the codec config, or nil when there is none. New
	// should reject unknown fields.
	New func(config json.RawMessage) (Factory, error)
}

var (
	mu        sync.RWMutex
	protocols = map[string]*Protocol{}
)

// Register adds p to the registry. Registering a name or alias twice is an
// error, never a silent overwrite.
func Register(p Protocol) error {
	if p.Name == "" || p.New == nil {
		return fmt.Errorf("codec: register: protocol needs a name and a New function")
	}
	mu.Lock()
	defer mu.Unlock()
	names := append([]string{p.Name}, p.Aliases...)
	for _, n := range names {
		if _, dup := protocols[n]; dup {
			return fmt.Errorf("codec: register %q: name %q already registered", p.Name, n)
		}
	}
	for _, n := range names {
		protocols[n] = &p
	}
	return nil
}

// MustRegister is Register for init functions: it panics on error.
func MustRegister(p Protocol) {
	if err := Register(p); err != nil {
		panic(err)
	}
}

// Lookup finds a protocol by name or alias.
func Lookup(name string) (*Protocol, bool) {
	mu.RLock()
	defer mu.RUnlock()
	p, ok := protocols[name]
	return p, ok
}

// Names lists the registered names and aliases, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(protocols))
	for n := range protocols {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DecodeConfig decodes a codec's JSON config (null, {} or an object of v's
// fields) into v strictly: unknown fields and trailing data are errors.
// Empty config leaves v as it is.
func DecodeConfig(config json.RawMessage, v any) error {
	if len(bytes.TrimSpace(config)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}
