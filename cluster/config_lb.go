package cluster

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// Envoy's circuit breaker defaults.
const (
	DefaultMaxRetries          = 3
	DefaultCircuitBreakerLimit = 1024 // max_connections, max_pending_requests, max_requests
)

// lbConfigFromProto reads ring_hash_lb_config and maglev_lb_config
// (Envoy's lb_config oneof) and checks the policy.
func lbConfigFromProto(pb *clusterv3.Cluster, c *Config) error {
	if rh := pb.GetRingHashLbConfig(); rh != nil {
		const what = "ring_hash_lb_config"
		if v := rh.GetMinimumRingSize(); v != nil {
			if v.GetValue() > MaxRingSize {
				return fmt.Errorf("%s.minimum_ring_size: %d exceeds %d", what, v.GetValue(), MaxRingSize)
			}
			if v.GetValue() == 0 {
				return fmt.Errorf("%s.minimum_ring_size: 0 would make an empty ring", what)
			}
			c.MinRingSize = v.GetValue()
		}
		if v := rh.GetMaximumRingSize(); v != nil {
			if v.GetValue() > MaxRingSize {
				return fmt.Errorf("%s.maximum_ring_size: %d exceeds %d", what, v.GetValue(), MaxRingSize)
			}
			if v.GetValue() == 0 {
				minSize, _ := ringSizes(c)
				return fmt.Errorf("ring hash: minimum_ring_size (%d) > maximum_ring_size (0)", minSize)
			}
			c.MaxRingSize = v.GetValue()
		}
		switch hf := rh.GetHashFunction(); hf {
		case clusterv3.Cluster_RingHashLbConfig_XX_HASH:
		case clusterv3.Cluster_RingHashLbConfig_MURMUR_HASH_2:
			return fmt.Errorf("%s.hash_function MURMUR_HASH_2 is not supported: use XX_HASH (the default)", what)
		default:
			return fmt.Errorf("%s.hash_function: %d is not one of XX_HASH, MURMUR_HASH_2", what, hf)
		}
	}
	if mg := pb.GetMaglevLbConfig(); mg != nil {
		const what = "maglev_lb_config"
		if v := mg.GetTableSize(); v != nil {
			if v.GetValue() > MaxMaglevTableSize {
				return fmt.Errorf("%s.table_size: %d exceeds %d", what, v.GetValue(), MaxMaglevTableSize)
			}
			if !isPrime(v.GetValue()) {
				return fmt.Errorf("%s.table_size %d is not a prime number: the table size of maglev must be prime", what, v.GetValue())
			}
			c.MaglevTableSize = v.GetValue()
		}
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
