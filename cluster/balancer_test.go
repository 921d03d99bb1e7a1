package cluster

import (
	"fmt"
	"math/bits"
	"testing"
	"time"
)

var policies = []string{"ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"}

func tenHosts(weights ...uint32) []Endpoint {
	eps := make([]Endpoint, 10)
	for i := range eps {
		eps[i] = Endpoint{Host: fmt.Sprintf("10.0.0.%d", i+1), Port: 80, Weight: 1}
		if i < len(weights) {
			eps[i].Weight = weights[i]
		}
	}
	return eps
}

func TestRoundRobinUniform(t *testing.T) {
	c := newPolicy(t, Config{LBPolicy: "ROUND_ROBIN"}, tenHosts()[:3])
	now := time.Now()
	for cycle := range 10 {
		seen := map[*Host]bool{}
		for range 3 {
			seen[c.Pick(now, nil)] = true
		}
		if len(seen) != 3 {
			t.Fatalf("cycle %d took %d distinct hosts of 3", cycle, len(seen))
		}
	}
}

// TestWeightedRoundRobinExact: every run of W picks (W the sum of the
// weights) gives each host exactly its weight, from any starting point, and
// the picks of the heavy host are spread out.
func TestWeightedRoundRobinExact(t *testing.T) {
	c := newPolicy(t, Config{LBPolicy: "ROUND_ROBIN"}, tenHosts(1, 2, 5)[:3])
	now := time.Now()
	const w = 8
	var seq []*Host
	for range 10 * w {
		seq = append(seq, c.Pick(now, nil))
	}
	for start := 0; start+w <= len(seq); start++ {
		n := map[*Host]int{}
		for _, h := range seq[start : start+w] {
			n[h]++
		}
		for i, h := range c.Hosts() {
			if want := int([]uint32{1, 2, 5}[i]); n[h] != want {
				t.Fatalf("picks %d-%d: %s %d times, want %d", start, start+w, h.Addr, n[h], want)
			}
		}
	}
	for i := 2; i < len(seq); i++ {
		if seq[i] == seq[i-1] && seq[i-1] == seq[i-2] {
			t.Fatalf("weight 5 of 8 picked three times in a row at %d: not smooth", i)
		}
	}
}

func TestWeightedRoundRobinSkipsUnhealthy(t *testing.T) {
	c := newPolicy(t, Config{LBPolicy: "ROUND_ROBIN"}, tenHosts(1, 2, 3)[:3])
	now := time.Now()
	c.Hosts()[2].ConnectFailed(now)
	n := map[*Host]int{}
	for range 300 {
		n[c.Pick(now, nil)]++
	}
	// The round robin's state when the host went down shifts one pick.
	if a, b := n[c.Hosts()[0]], n[c.Hosts()[1]]; a < 99 || a > 101 || a+b != 300 {
		t.Fatalf("with the weight-3 host down: %d and %d of 300, want 100 and 200", a, b)
	}
}

func TestLeastRequestWeighted(t *testing.T) {
	c := newPolicy(t, Config{LBPolicy: "LEAST_REQUEST"}, tenHosts(1, 3)[:2])
	if b, ok := c.set.Load().lb.(*edf); !ok || !b.byActive {
		t.Fatal("differing weights did not make Envoy's weighted least request")
	}
	now := time.Now()
	a, b := c.Hosts()[0], c.Hosts()[1]
	// Idle hosts: picks follow the weights.
	n := map[*Host]int{}
	for range 400 {
		n[c.Pick(now, nil)]++
	}
	if n[a] < 95 || n[a] > 105 {
		t.Errorf("idle hosts weighted 1 and 3: %d and %d of 400", n[a], n[b])
	}
	// The heavy host busy with 10 requests weighs 3/11 against the idle
	// light host's 1: the idle one takes most.
	for range 10 {
		b.Begin()
	}
	defer func() {
		for range 10 {
			b.End()
		}
	}()
	clear(n)
	for range 400 {
		n[c.Pick(now, nil)]++
	}
	if n[a] < 250 {
		t.Errorf("idle light host %d of 400 against a busy heavy one", n[a])
	}
}

func TestLeastRequestPrefersIdle(t *testing.T) {
	c := newPolicy(t, Config{LBPolicy: "LEAST_REQUEST"}, tenHosts()[:4])
	now := time.Now()
	idle := c.Hosts()[3]
	for _, h := range c.Hosts()[:3] {
		h.Begin()
		defer h.End()
	}
	n := 0
	for range 1000 {
		if c.Pick(now, nil) == idle {
			n++
		}
	}
	// Two draws of four: the idle host wins when drawn, 1-(3/4)^2 = 44 %.
	if n < 350 || n > 530 {
		t.Fatalf("idle host picked %d/1000 times, want about 440", n)
	}
}

func TestRandomSpreads(t *testing.T) {
	c := newPolicy(t, Config{LBPolicy: "RANDOM"}, tenHosts())
	now := time.Now()
	n := map[*Host]int{}
	for range 10000 {
		n[c.Pick(now, nil)]++
	}
	for _, h := range c.Hosts() {
		if n[h] < 800 || n[h] > 1200 {
			t.Errorf("%s picked %d of 10000 times", h.Addr, n[h])
		}
	}
}

// TestPanicAndExclude: every policy skips the Exclude host and unhealthy
// hosts; with every host down it still picks, avoiding Exclude.
func TestPanicAndExclude(t *testing.T) {
	for _, p := range policies {
		for _, w := range [][]uint32{nil, {1, 2, 3}} {
			t.Run(fmt.Sprintf("%s/%v", p, w), func(t *testing.T) {
				c := newPolicy(t, Config{LBPolicy: p}, tenHosts(w...)[:3])
				now := time.Now()
				hs := c.Hosts()
				ctx := &LBContext{HasHash: true}
				for i := range 300 {
					ctx.Hash, ctx.Exclude = HashString(fmt.Sprint(i)), hs[i%3]
					if h := c.Pick(now, ctx); h == ctx.Exclude {
						t.Fatalf("picked the excluded host for hash %d", ctx.Hash)
					}
				}
				hs[0].ConnectFailed(now)
				for i := range 300 {
					ctx.Hash, ctx.Exclude = HashString(fmt.Sprint(i)), hs[1]
					if h := c.Pick(now, ctx); h != hs[2] {
						t.Fatalf("host 0 down, host 1 excluded: picked %v", h)
					}
				}
				for _, h := range hs {
					h.ConnectFailed(now)
				}
				seen := map[*Host]bool{}
				for i := range 300 {
					ctx.Hash, ctx.Exclude = HashString(fmt.Sprint(i)), hs[0]
					h := c.Pick(now, ctx)
					if h == nil || h == hs[0] {
						t.Fatalf("panic mode: picked %v", h)
					}
					seen[h] = true
					if c.Pick(now, nil) == nil {
						t.Fatal("panic mode: no host without a context")
					}
				}
				if len(seen) != 2 {
					t.Errorf("panic mode used %d of the 2 hosts left", len(seen))
				}
			})
		}
	}
}

func TestOneHostAndNone(t *testing.T) {
	for _, p := range policies {
		c := newPolicy(t, Config{LBPolicy: p}, tenHosts()[:1])
		h := c.Hosts()[0]
		h.ConnectFailed(time.Now())
		if got := c.Pick(time.Now(), &LBContext{Exclude: h}); got != h {
			t.Errorf("%s: a cluster of one host returned %v", p, got)
		}
		if err := c.Update(nil); err != nil {
			t.Fatal(err)
		}
		if got := c.Pick(time.Now(), nil); got != nil {
			t.Errorf("%s: a cluster of no hosts returned %v", p, got)
		}
	}
}

// TestConsistentHashing: one key always lands on one host, and removing
// one of 10 hosts moves about a tenth of 10,000 keys.
//
// Ring hash: Envoy scales the hashes per host so that the ring keeps at
// least minimum_ring_size entries: 10 hosts get ceil(1024/10) = 103 each, 9
// get 114, and the 11 new hashes of each staying host take keys from the
// others too: about 17 % of the keys move. With the hashes per host
// unchanged (a minimum ring of 103 per host), exactly the removed host's
// keys move.
func TestConsistentHashing(t *testing.T) {
	const keys = 10000
	hash := func(k int) uint64 { return HashString(fmt.Sprintf("key-%d", k)) }
	nine := append(tenHosts()[:3], tenHosts()[4:]...)
	for _, tc := range []struct {
		name             string
		cfg, after       Config // after: the cluster of nine hosts, if not an Update
		maxMoved, maxOff int    // keys moved; of those, between staying hosts
	}{
		{"MAGLEV", Config{LBPolicy: "MAGLEV"}, Config{}, keys * 12 / 100, keys / 50},
		{"RING_HASH", Config{LBPolicy: "RING_HASH"}, Config{}, keys * 20 / 100, keys / 10},
		{"RING_HASH/same hashes per host", Config{LBPolicy: "RING_HASH", MinRingSize: 1030},
			Config{LBPolicy: "RING_HASH", MinRingSize: 9 * 103}, keys * 12 / 100, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newPolicy(t, tc.cfg, tenHosts())
			now := time.Now()
			ctx := &LBContext{HasHash: true}
			before := make([]string, keys)
			for k := range keys {
				ctx.Hash = hash(k)
				h := c.Pick(now, ctx)
				before[k] = h.Addr
				for range 3 {
					if c.Pick(now, ctx) != h {
						t.Fatalf("key %d went to two hosts", k)
					}
				}
			}
			gone := c.Hosts()[3].Addr
			if tc.after.LBPolicy != "" {
				c = newPolicy(t, tc.after, nine)
			} else if err := c.Update(nine); err != nil {
				t.Fatal(err)
			}
			moved, off, onGone := 0, 0, 0
			for k := range keys {
				ctx.Hash = hash(k)
				if c.Pick(now, ctx).Addr != before[k] {
					moved++
					if before[k] != gone {
						off++
					}
				}
				if before[k] == gone {
					onGone++
				}
			}
			t.Logf("removing 1 of 10 hosts moved %d of %d keys: the %d it had, and %d between staying hosts", moved, keys, onGone, off)
			if moved < onGone || moved > tc.maxMoved || off > tc.maxOff {
				t.Errorf("removing 1 of 10 hosts moved %d of %d keys (%d between staying hosts), want at most %d (%d)", moved, keys, off, tc.maxMoved, tc.maxOff)
			}
		})
	}
}

func TestCombineHash(t *testing.T) {
	a, b := HashString("foo"), HashString("bar")
	if CombineHash(12345, a, true) != a {
		t.Error("the first part's hash is not taken as is")
	}
	if got, want := CombineHash(a, b, false), bits.RotateLeft64(a, 1)^b; got != want {
		t.Errorf("CombineHash(a, b) = %d, want Envoy's ((a << 1) | (a >> 63)) ^ b = %d", got, want)
	}
	if got, want := CombineHash(a, b, false), (a<<1|a>>63)^b; got != want {
		t.Errorf("CombineHash(a, b) = %d, want %d", got, want)
	}
	if CombineHash(CombineHash(0, a, true), a, false) == 0 {
		t.Error("two equal parts cancel out")
	}
	if CombineHash(a, b, false) == CombineHash(b, a, false) {
		t.Error("the parts' order does not matter")
	}
	if n := testing.AllocsPerRun(100, func() { CombineHash(HashString("x"), HashString("y"), false) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// TestPickDoesNotAllocate also checks that the caller's LBContext does not
// escape to the heap through Cluster.Pick.
func TestPickDoesNotAllocate(t *testing.T) {
	for _, p := range policies {
		for _, w := range [][]uint32{nil, {1, 2, 3}} {
			c := newPolicy(t, Config{LBPolicy: p}, tenHosts(w...))
			now := time.Now()
			ex := c.Hosts()[0]
			if n := testing.AllocsPerRun(1000, func() {
				ctx := LBContext{Hash: 42, HasHash: true, Exclude: ex}
				c.Pick(now, &ctx)
			}); n != 0 {
				t.Errorf("%s %v: %v allocations per Pick", p, w, n)
			}
		}
	}
}
