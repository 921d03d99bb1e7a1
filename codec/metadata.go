package codec

import "strings"

// Well-known metadata keys. Codecs fill those that their protocol carries so
// that one route configuration reads the same across protocols.
const (
	KeyService = "interface" // Aeraki's key for the service / interface name
	KeyMethod  = "method"
	KeyVersion = "version"
	KeyGroup   = "group"
)

// KV is one metadata entry.
type KV struct {
	Key, Value string
}

// Metadata is a small ordered string map with case-insensitive keys, as
// Aeraki's metadata is seen by Envoy header matchers. It is a slice, not a
// map: messages carry a handful of keys and reuse the storage.
type Metadata struct {
	kv []KV
	// lens has bit len(key)%64 set for each key held (more after a
	// Delete): a key whose length bit is clear is absent without a scan,
	// so filling a message with distinct keys is linear, not quadratic.
	lens uint64
}

func lenBit(n int) uint64 { return 1 << (uint(n) & 63) }

// Get returns the value of key and whether it is present.
func (m *Metadata) Get(key string) (string, bool) {
	if m.lens&lenBit(len(key)) == 0 {
		return "", false
	}
	for i := range m.kv {
		if len(m.kv[i].Key) == len(key) && (m.kv[i].Key == key || strings.EqualFold(m.kv[i].Key, key)) {
			return m.kv[i].Value, true
		}
	}
	return "", false
}

// Value returns the value of key, or "" if it is absent.
func (m *Metadata) Value(key string) string {
	v, _ := m.Get(key)
	return v
}

// Set adds key or replaces its value.
func (m *Metadata) Set(key, value string) {
	bit := lenBit(len(key))
	if m.lens&bit != 0 {
		for i := range m.kv {
			if len(m.kv[i].Key) == len(key) && (m.kv[i].Key == key || strings.EqualFold(m.kv[i].Key, key)) {
				m.kv[i].Value = value
				return
			}
		}
	}
	m.kv = append(m.kv, KV{key, value})
	m.lens |= bit
}

// Delete removes key.
func (m *Metadata) Delete(key string) {
	for i := range m.kv {
		if strings.EqualFold(m.kv[i].Key, key) {
			m.kv = append(m.kv[:i], m.kv[i+1:]...)
			return
		}
	}
}

// Len returns the number of entries.
func (m *Metadata) Len() int { return len(m.kv) }

// All returns the entries in insertion order. The slice is shared with m.
func (m *Metadata) All() []KV { return m.kv }

// Reset removes every entry, keeping capacity.
func (m *Metadata) Reset() { m.kv, m.lens = m.kv[:0], 0 }
