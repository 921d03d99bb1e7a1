package cluster

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// How cost grows with a cluster's size: for 10, 1,000 and 10,000
// endpoints, a Pick by each policy, the memory a cluster holds, and the time
// to apply an endpoint update (one endpoint replaced: the host set and the
// balancer — ring, Maglev table, scheduler — are rebuilt).

func scaleEndpoints(n int, weighted bool, shift int) []Endpoint {
	eps := make([]Endpoint, n)
	for i := range eps {
		j := i + shift
		eps[i] = Endpoint{Host: fmt.Sprintf("10.%d.%d.%d", j>>16&255, j>>8&255, j&255), Port: 20880, Weight: 1}
		if weighted {
			eps[i].Weight = uint32(1 + i%10)
		}
	}
	return eps
}

func BenchmarkScalePick(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		for _, bc := range benchPolicies() {
			b.Run(fmt.Sprintf("endpoints=%d/%s", n, bc.name), func(b *testing.B) {
				c, err := New(Config{Name: "c", Type: Static, LBPolicy: bc.policy, Endpoints: scaleEndpoints(n, bc.weighted, 0)}, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
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
}

func BenchmarkScaleUpdate(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		for _, bc := range benchPolicies() {
			b.Run(fmt.Sprintf("endpoints=%d/%s", n, bc.name), func(b *testing.B) {
				a, z := scaleEndpoints(n, bc.weighted, 0), scaleEndpoints(n, bc.weighted, 1)
				c, err := New(Config{Name: "c", Type: Static, LBPolicy: bc.policy, Endpoints: a}, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					eps := a
					if i%2 == 1 {
						eps = z
					}
					if err := c.Update(eps); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(clusterHeap(b, bc.policy, bc.weighted, n))/1024, "KiB/cluster")
			})
		}
	}
}

// clusterHeap returns the heap a cluster of n endpoints holds.
func clusterHeap(b *testing.B, policy string, weighted bool, n int) uint64 {
	eps := scaleEndpoints(n, weighted, 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := New(Config{Name: "c", Type: Static, LBPolicy: policy, Endpoints: eps}, nil)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(c)
	c.Close()
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// Beyond maxSmoothHosts, weighted round robin is Envoy's EDF scheduler:
// the picks still follow the weights.
func TestLargeWeightedRoundRobinFollowsWeights(t *testing.T) {
	c, err := New(Config{Name: "c", Type: Static, LBPolicy: "ROUND_ROBIN", Endpoints: scaleEndpoints(100, true, 0)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.set.Load().lb.(*edf); !ok {
		t.Fatal("100 weighted hosts are not balanced by the EDF scheduler")
	}
	n := map[*Host]int{}
	const rounds = 20
	total := 0
	for _, ep := range scaleEndpoints(100, true, 0) {
		total += int(ep.Weight)
	}
	for range rounds * total {
		n[c.Pick(time.Now(), nil)]++
	}
	for i, h := range c.Hosts() {
		if want := rounds * int(1+i%10); n[h] < want-1 || n[h] > want+1 {
			t.Fatalf("host %d (weight %d): %d picks, want %d", i, 1+i%10, n[h], want)
		}
	}
}
