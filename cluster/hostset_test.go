package cluster

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func TestUpdateKeepsHostsAndWatchReportsRemovals(t *testing.T) {
	c := newPolicy(t, Config{LBPolicy: "ROUND_ROBIN"}, tenHosts()[:3])
	now := time.Now()
	old := slices.Clone(c.Hosts())
	old[0].Begin()
	defer old[0].End()
	old[1].ConnectFailed(now)

	var mu sync.Mutex
	var calls [][]*Host
	cancel := c.Watch(func(removed []*Host) {
		mu.Lock()
		calls = append(calls, removed)
		mu.Unlock()
	})
	// Keep hosts 0 and 1 (host 1 with a new weight), drop host 2, add one.
	eps := tenHosts()[:2]
	eps[1].Weight = 5
	eps = append(eps, tenHosts()[5])
	if err := c.Update(eps); err != nil {
		t.Fatal(err)
	}
	hs := c.Hosts()
	if len(hs) != 3 || hs[0] != old[0] || hs[1] != old[1] || hs[2].Addr != "10.0.0.6:80" {
		t.Fatalf("hosts after the update: %v", hs)
	}
	if hs[0].Active() != 1 || hs[1].Healthy(now) {
		t.Error("the kept hosts lost their live state")
	}
	if w := c.set.Load().weights; w[1] != 5 {
		t.Errorf("kept host balanced with weight %d, want the new 5", w[1])
	}
	if _, ok := c.set.Load().lb.(*weightedRoundRobin); !ok {
		t.Error("the balancer was not rebuilt for the new weights")
	}
	mu.Lock()
	if len(calls) != 1 || len(calls[0]) != 1 || calls[0][0] != old[2] {
		t.Errorf("Watch calls %v, want one reporting %v", calls, old[2])
	}
	mu.Unlock()
	for range 20 {
		if c.Pick(now, nil) == old[2] {
			t.Fatal("a removed host was picked")
		}
	}

	// The same endpoints again: no swap, no call.
	if err := c.Update(eps); err != nil {
		t.Fatal(err)
	}
	// A bad endpoint changes nothing.
	if err := c.Update([]Endpoint{{Host: "localhost", Port: 1}}); err == nil {
		t.Error("Update accepted a host name")
	}
	cancel()
	if err := c.Update(nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(calls) != 1 {
		t.Errorf("%d Watch calls, want 1 (no change, an error, then cancelled)", len(calls))
	}
	mu.Unlock()
	if len(c.Hosts()) != 0 {
		t.Error("Update(nil) left hosts")
	}
}

func TestUpdateRefusesStrictDNS(t *testing.T) {
	c := hosts(t, Config{Name: "c", Type: StrictDNS, DNSRefreshRate: time.Hour, Endpoints: []Endpoint{{Host: "localhost", Port: 7, Weight: 1}}})
	if err := c.Update(tenHosts()); err == nil {
		t.Error("Update of a STRICT_DNS cluster accepted")
	}
}

// TestConcurrentPickAndUpdate runs picks of every policy while the host set
// is swapped, for the race detector.
func TestConcurrentPickAndUpdate(t *testing.T) {
	for _, p := range policies {
		c := newPolicy(t, Config{LBPolicy: p, MaglevTableSize: 251}, tenHosts(1, 2, 3))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := &LBContext{}
				for i := uint64(0); ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					ctx.Hash, ctx.HasHash = i, i%2 == 0
					if h := c.Pick(time.Now(), ctx); h != nil {
						h.Begin()
						h.End()
					}
				}
			}()
		}
		for i := range 50 {
			if err := c.Update(tenHosts(1, 2, 3)[:2+i%8]); err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		wg.Wait()
	}
}
