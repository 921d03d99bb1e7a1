package cluster

import (
	"testing"
	"time"
)

// BenchmarkPick is one Pick of 10 hosts by each policy; _weighted has
// weights 1-10 (the policies that change algorithm with weights).
func BenchmarkPick(b *testing.B) {
	for _, bc := range benchPolicies() {
		b.Run(bc.name, func(b *testing.B) {
			c := newBenchCluster(b, bc.policy, bc.weighted)
			now := time.Now()
			ctx := LBContext{HasHash: bc.hash}
			b.ReportAllocs()
			for i := uint64(0); b.Loop(); i++ {
				ctx.Hash = i * 0x9e3779b97f4a7c15
				c.Pick(now, &ctx)
			}
		})
	}
}

// BenchmarkPickParallel is BenchmarkPick from every core at once.
func BenchmarkPickParallel(b *testing.B) {
	for _, bc := range benchPolicies() {
		b.Run(bc.name, func(b *testing.B) {
			c := newBenchCluster(b, bc.policy, bc.weighted)
			now := time.Now()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := LBContext{HasHash: bc.hash}
				for i := uint64(0); pb.Next(); i++ {
					ctx.Hash = i * 0x9e3779b97f4a7c15
					c.Pick(now, &ctx)
				}
			})
		})
	}
}

type benchPolicy struct {
	name, policy   string
	weighted, hash bool
}

func benchPolicies() []benchPolicy {
	return []benchPolicy{
		{"ROUND_ROBIN", "ROUND_ROBIN", false, false},
		{"ROUND_ROBIN_weighted", "ROUND_ROBIN", true, false},
		{"LEAST_REQUEST", "LEAST_REQUEST", false, false},
		{"LEAST_REQUEST_weighted", "LEAST_REQUEST", true, false},
		{"RANDOM", "RANDOM", false, false},
		{"RING_HASH", "RING_HASH", false, true},
		{"MAGLEV", "MAGLEV", false, true},
	}
}

func newBenchCluster(b *testing.B, policy string, weighted bool) *Cluster {
	eps := tenHosts()
	if weighted {
		for i := range eps {
			eps[i].Weight = uint32(i + 1)
		}
	}
	c, err := New(Config{Name: "c", Type: Static, LBPolicy: policy, Endpoints: eps}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}
