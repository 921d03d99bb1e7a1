package cluster

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Envoy's circuit breaker defaults.
const (
	DefaultMaxRetries          = 3
	DefaultCircuitBreakerLimit = 1024 // max_connections, max_pending_requests, max_requests
)

// fields decodes a JSON object (null is an empty one), refusing fields not
// in allowed with an error naming the field.
func fields(raw json.RawMessage, what string, allowed ...string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: not an object: %s", what, raw)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("%s: unknown field %q", what, k)
		}
	}
	return m, nil
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || strings.TrimSpace(string(v)) == "null" }

// uintField reads an unsigned protobuf JSON value (a wrapper like
// UInt64Value comes as a number or a string) of at most limit; set is false
// when the field is absent or null.
func uintField(m map[string]json.RawMessage, k, what string, limit uint64) (v uint64, set bool, err error) {
	raw, ok := m[k]
	if !ok || isNull(raw) {
		return 0, false, nil
	}
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false, fmt.Errorf("%s.%s: %w", what, k, err)
		}
	}
	v, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f < 0 || f != math.Trunc(f) || f >= 1<<64 {
			return 0, false, fmt.Errorf("%s.%s: not an unsigned integer: %s", what, k, raw)
		}
		v = uint64(f)
	}
	if v > limit {
		return 0, false, fmt.Errorf("%s.%s: %d exceeds %d", what, k, v, limit)
	}
	return v, true, nil
}

// enumField reads a protobuf JSON enum, by name or number; "" when absent.
func enumField(m map[string]json.RawMessage, k, what string, names ...string) (string, error) {
	raw, ok := m[k]
	if !ok || isNull(raw) {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if slices.Contains(names, s) {
			return s, nil
		}
	} else if n, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && n >= 0 && n < len(names) {
		return names[n], nil
	}
	return "", fmt.Errorf("%s.%s: %s is not one of %s", what, k, raw, strings.Join(names, ", "))
}

// parseLBConfig reads ring_hash_lb_config and maglev_lb_config (Envoy's
// lb_config oneof) and checks the policy.
func parseLBConfig(m map[string]json.RawMessage, c *Config) error {
	rh, hasRH := m["ring_hash_lb_config"]
	mg, hasMG := m["maglev_lb_config"]
	if hasRH && hasMG {
		return fmt.Errorf("ring_hash_lb_config and maglev_lb_config are both set: they are one of lb_config")
	}
	if hasRH {
		const what = "ring_hash_lb_config"
		fs, err := fields(rh, what, "minimum_ring_size", "maximum_ring_size", "hash_function")
		if err != nil {
			return err
		}
		v, set, err := uintField(fs, "minimum_ring_size", what, MaxRingSize)
		if err != nil {
			return err
		}
		if set && v == 0 {
			return fmt.Errorf("%s.minimum_ring_size: 0 would make an empty ring", what)
		}
		c.MinRingSize = v
		if v, set, err = uintField(fs, "maximum_ring_size", what, MaxRingSize); err != nil {
			return err
		}
		if set && v == 0 {
			minSize, _ := ringSizes(c)
			return fmt.Errorf("ring hash: minimum_ring_size (%d) > maximum_ring_size (0)", minSize)
		}
		c.MaxRingSize = v
		switch hf, err := enumField(fs, "hash_function", what, "XX_HASH", "MURMUR_HASH_2"); {
		case err != nil:
			return err
		case hf == "MURMUR_HASH_2":
			return fmt.Errorf("%s.hash_function MURMUR_HASH_2 is not supported: use XX_HASH (the default)", what)
		}
	}
	if hasMG {
		const what = "maglev_lb_config"
		fs, err := fields(mg, what, "table_size")
		if err != nil {
			return err
		}
		v, set, err := uintField(fs, "table_size", what, MaxMaglevTableSize)
		if err != nil {
			return err
		}
		if set && !isPrime(v) {
			return fmt.Errorf("%s.table_size %d is not a prime number: the table size of maglev must be prime", what, v)
		}
		c.MaglevTableSize = v
	}
	return checkLB(c)
}

// checkLB checks what New needs of cfg's load balancing.
func checkLB(cfg *Config) error {
	switch cfg.LBPolicy {
	case "", "ROUND_ROBIN", "RANDOM", "LEAST_REQUEST":
	case "RING_HASH":
		minSize, maxSize := ringSizes(cfg)
		if maxSize > MaxRingSize {
			return fmt.Errorf("ring_hash_lb_config.maximum_ring_size %d exceeds %d", maxSize, MaxRingSize)
		}
		if minSize > maxSize {
			return fmt.Errorf("ring hash: minimum_ring_size (%d) > maximum_ring_size (%d)", minSize, maxSize)
		}
	case "MAGLEV":
		if size := maglevSize(cfg); size > MaxMaglevTableSize || !isPrime(size) {
			return fmt.Errorf("maglev_lb_config.table_size %d is not a prime number up to %d: the table size of maglev must be prime", size, MaxMaglevTableSize)
		}
	default:
		return fmt.Errorf("lb_policy %q is not supported: use ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH or MAGLEV", cfg.LBPolicy)
	}
	return nil
}

// ringSizes returns cfg's ring bounds, Envoy's defaults for unset ones.
func ringSizes(cfg *Config) (minSize, maxSize uint64) {
	minSize, maxSize = cfg.MinRingSize, cfg.MaxRingSize
	if minSize == 0 {
		minSize = DefaultMinRingSize
	}
	if maxSize == 0 {
		maxSize = DefaultMaxRingSize
	}
	return minSize, maxSize
}

func maglevSize(cfg *Config) uint64 {
	if cfg.MaglevTableSize == 0 {
		return DefaultMaglevTableSize
	}
	return cfg.MaglevTableSize
}

func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// hashKeyMetadata returns an endpoint's metadata
// filter_metadata["envoy.lb"].hash_key; like Envoy, a hash_key that is not a
// string is ignored.
func hashKeyMetadata(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	fs, err := fields(raw, "metadata", "filter_metadata", "typed_filter_metadata")
	if err != nil {
		return "", err
	}
	fm, ok := fs["filter_metadata"]
	if !ok || isNull(fm) {
		return "", nil
	}
	var filters map[string]json.RawMessage
	if err := json.Unmarshal(fm, &filters); err != nil {
		return "", fmt.Errorf("filter_metadata: not an object")
	}
	lb, ok := filters["envoy.lb"]
	if !ok || isNull(lb) {
		return "", nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(lb, &keys); err != nil {
		return "", fmt.Errorf(`filter_metadata["envoy.lb"]: not an object`)
	}
	var key string
	if json.Unmarshal(keys["hash_key"], &key) != nil {
		return "", nil
	}
	return key, nil
}
