package cluster

// Envoy's published load balancer vectors, from Envoy v1.36.2's
// test/extensions/load_balancing_policies/ring_hash/ring_hash_lb_test.cc and
// maglev/maglev_lb_test.cc, and test/common/common/hash_test.cc. Envoy's
// test hosts are "tcp://127.0.0.1:90" URLs; Envoy hashes the host's
// address()->asString(), "127.0.0.1:90", which is metaproxy's Host.Addr,
// or the endpoint's envoy.lb hash_key metadata when set (Envoy's
// makeTestHostWithHashKey; its use_hostname_for_hashing tests hash the same
// strings, "90".."95"). Envoy's host indexes are the indexes of the
// endpoints here.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestEnvoyXXHash64(t *testing.T) {
	for s, want := range map[string]uint64{
		"foo": 3728699739546630719, "bar": 5234164152756840025, "foo\nbar": 8917841378505826757,
		"lyft": 4400747396090729504, "": 17241709254077376921,
	} {
		if got := HashString(s); got != want {
			t.Errorf("HashString(%q) = %d, want Envoy's %d", s, got, want)
		}
	}
}

// ports returns STATIC endpoints 127.0.0.1:<port>, with weights if given.
func ports(ps []int, weights ...uint32) []Endpoint {
	eps := make([]Endpoint, len(ps))
	for i, p := range ps {
		eps[i] = Endpoint{Host: "127.0.0.1", Port: p, Weight: 1}
		if len(weights) > 0 {
			eps[i].Weight = weights[i]
		}
	}
	return eps
}

func withHashKeys(eps []Endpoint) []Endpoint {
	for i := range eps {
		eps[i].HashKey = fmt.Sprint(eps[i].Port)
	}
	return eps
}

func newPolicy(t *testing.T, cfg Config, eps []Endpoint) *Cluster {
	t.Helper()
	cfg.Name, cfg.Type, cfg.Endpoints = "c", Static, eps
	return hosts(t, cfg)
}

// hostIndex is the index in c's hosts of the host picked for hash h.
func hostIndex(t *testing.T, c *Cluster, h uint64, ex *Host) int {
	t.Helper()
	got := c.Pick(time.Now(), &LBContext{Hash: h, HasHash: true, Exclude: ex})
	for i, x := range c.Hosts() {
		if x == got {
			return i
		}
	}
	t.Fatalf("hash %d: picked %v, not a host of the cluster", h, got)
	return -1
}

type ringEntry struct {
	key  string // the hash key of the host at hash
	hash uint64
}

func checkRing(t *testing.T, c *Cluster, want []ringEntry) {
	t.Helper()
	hs := c.set.Load()
	r := hs.lb.(*ringHash)
	if len(r.hashes) != len(want) {
		t.Fatalf("ring of %d entries, want %d", len(r.hashes), len(want))
	}
	for i, w := range want {
		if r.hashes[i] != w.hash || hs.keys[r.owner[i]] != w.key {
			t.Errorf("ring[%d] = %s at %d, want %s at %d", i, hs.keys[r.owner[i]], r.hashes[i], w.key, w.hash)
		}
	}
}

// ringStats is Envoy's ring_hash_lb stats: size, min and max hashes per host.
func ringStats(owner []uint32, hosts int) (size, minPer, maxPer int) {
	per := make([]int, hosts)
	for _, o := range owner {
		per[o]++
	}
	minPer = len(owner)
	for _, n := range per {
		minPer, maxPer = min(minPer, n), max(maxPer, n)
	}
	return len(owner), minPer, maxPer
}

func checkRingStats(t *testing.T, owner []uint32, hosts, size, minPer, maxPer int) {
	t.Helper()
	if s, lo, hi := ringStats(owner, hosts); s != size || lo != minPer || hi != maxPer {
		t.Errorf("ring size %d, hashes per host %d-%d; Envoy: %d, %d-%d", s, lo, hi, size, minPer, maxPer)
	}
}

func TestEnvoyRingHashBasic(t *testing.T) {
	c := newPolicy(t, Config{LBPolicy: "RING_HASH", MinRingSize: 12}, ports([]int{90, 91, 92, 93, 94, 95}))
	checkRingStats(t, c.set.Load().lb.(*ringHash).owner, 6, 12, 2, 2)
	a := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	checkRing(t, c, []ringEntry{
		{a(94), 833437586790550860}, {a(92), 928266305478181108}, {a(90), 1033482794131418490},
		{a(95), 3551244743356806947}, {a(93), 3851675632748031481}, {a(91), 5583722120771150861},
		{a(91), 6311230543546372928}, {a(93), 7700377290971790572}, {a(95), 13144177310400110813},
		{a(92), 13444792449719432967}, {a(94), 15516499411664133160}, {a(90), 16117243373044804889},
	})
	for h, want := range map[uint64]int{
		0: 4, math.MaxUint64: 4, 3551244743356806947: 5, 3551244743356806948: 3,
		16117243373044804880: 0, // Envoy's "random" hash for a request without one
	} {
		if got := hostIndex(t, c, h, nil); got != want {
			t.Errorf("hash %d: host %d, Envoy: %d", h, got, want)
		}
	}
	// BasicWithRetryHostPredicate: avoiding the hashed host takes the next
	// one on the ring.
	if got := hostIndex(t, c, 0, c.Hosts()[4]); got != 2 {
		t.Errorf("hash 0 avoiding host 4: host %d, Envoy: 2", got)
	}
	// Panic mode: every host unhealthy, the ring still hashes over them.
	now := time.Now()
	for _, h := range c.Hosts() {
		h.ConnectFailed(now)
	}
	if got := hostIndex(t, c, 0, nil); got != 4 {
		t.Errorf("panic mode, hash 0: host %d, Envoy: 4", got)
	}
}

func TestEnvoyRingHashHashKey(t *testing.T) {
	// BasicWithHostname and BasicWithMetadataHashKey: the same ring.
	c := newPolicy(t, Config{LBPolicy: "RING_HASH", MinRingSize: 12}, withHashKeys(ports([]int{90, 91, 92, 93, 94, 95})))
	checkRing(t, c, []ringEntry{
		{"95", 1975508444536362413}, {"95", 2376063919839173711}, {"93", 2386806903309390596},
		{"94", 6749904478991551885}, {"93", 6803900775736438537}, {"92", 7225015537174310577},
		{"90", 8787465352164086522}, {"92", 11282020843382717940}, {"91", 13723418369486627818},
		{"90", 13776502110861797421}, {"91", 14338313586354474791}, {"94", 15364271037087512980},
	})
	for h, want := range map[uint64]int{0: 5, math.MaxUint64: 5, 7225015537174310577: 2, 6803900775736438537: 3} {
		if got := hostIndex(t, c, h, nil); got != want {
			t.Errorf("hash %d: host %d, Envoy: %d", h, got, want)
		}
	}
}

func TestEnvoyRingHashUnevenHosts(t *testing.T) {
	c := newPolicy(t, Config{LBPolicy: "RING_HASH", MinRingSize: 3}, ports([]int{80, 81}))
	checkRingStats(t, c.set.Load().lb.(*ringHash).owner, 2, 4, 2, 2)
	checkRing(t, c, []ringEntry{
		{"127.0.0.1:80", 5454692015285649509}, {"127.0.0.1:81", 7859399908942313493},
		{"127.0.0.1:80", 13838424394637650569}, {"127.0.0.1:81", 16064866803292627174},
	})
	if got := hostIndex(t, c, 0, nil); got != 0 {
		t.Errorf("hash 0: host %d, Envoy: 0", got)
	}
	kept := c.Hosts()[1]
	if err := c.Update(ports([]int{81, 82})); err != nil {
		t.Fatal(err)
	}
	if c.Hosts()[0] != kept {
		t.Error("Update did not keep the host of 127.0.0.1:81")
	}
	checkRing(t, c, []ringEntry{
		{"127.0.0.1:81", 7859399908942313493}, {"127.0.0.1:82", 8241336090459785962},
		{"127.0.0.1:82", 12882406409176325258}, {"127.0.0.1:81", 16064866803292627174},
	})
	if got := hostIndex(t, c, 0, nil); got != 0 {
		t.Errorf("after the update, hash 0: host %d, Envoy: 0", got)
	}
}

func TestEnvoyRingHashWeighted(t *testing.T) {
	// HostWeightedTinyRing: weights 1, 2, 3 on a ring of exactly 6.
	c := newPolicy(t, Config{LBPolicy: "RING_HASH", MinRingSize: 6, MaxRingSize: 6}, ports([]int{90, 91, 92}, 1, 2, 3))
	checkRingStats(t, c.set.Load().lb.(*ringHash).owner, 3, 6, 1, 3)
	tiny := map[uint64]int{928266305478181108: 2, 4443673547860492590: 2, 5583722120771150861: 1,
		6311230543546372928: 1, 13444792449719432967: 2, 16117243373044804889: 0}
	for h, want := range tiny {
		if got := hostIndex(t, c, h, nil); got != want {
			t.Errorf("tiny ring, hash %d: host %d, Envoy: %d", h, got, want)
		}
	}
	// HostWeightedLargeRing.
	c = newPolicy(t, Config{LBPolicy: "RING_HASH", MinRingSize: 6144}, ports([]int{90, 91, 92}, 1, 2, 3))
	checkRingStats(t, c.set.Load().lb.(*ringHash).owner, 3, 6144, 1024, 3072)
	checkSpread(t, c, 6000, []int{987, 1932, 3081})
}

// checkSpread picks n hashes spread evenly over the ring, as Envoy's tests
// do, and compares the hosts' counts.
func checkSpread(t *testing.T, c *Cluster, n uint64, want []int) {
	t.Helper()
	counts := make([]int, len(c.Hosts()))
	for i := range n {
		counts[hostIndex(t, c, i*(math.MaxUint64/n), nil)]++
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("%d hashes spread over hosts %v, Envoy: %v", n, counts, want)
	}
}

func TestEnvoyRingHashFractionalScale(t *testing.T) {
	// SmallFractionalScale: 4 hosts on a ring of 2: two get nothing.
	c := newPolicy(t, Config{LBPolicy: "RING_HASH", MinRingSize: 2, MaxRingSize: 2}, ports([]int{90, 91, 92, 93}))
	checkRingStats(t, c.set.Load().lb.(*ringHash).owner, 4, 2, 0, 1)
	counts := make([]int, 4)
	for i := range uint64(1024) {
		counts[hostIndex(t, c, i*(math.MaxUint64/1024), nil)]++
	}
	zeroes, sum := 0, 0
	for _, n := range counts {
		if n == 0 {
			zeroes++
		}
		sum += n
	}
	if zeroes != 2 || sum != 1024 {
		t.Errorf("ring of 2 over 4 hosts: counts %v, Envoy: two hosts get all 1024", counts)
	}
	// LargeFractionalScale: 2 hosts on a ring of 1023.
	c = newPolicy(t, Config{LBPolicy: "RING_HASH", MinRingSize: 1023, MaxRingSize: 1023}, ports([]int{90, 91}))
	checkRingStats(t, c.set.Load().lb.(*ringHash).owner, 2, 1023, 511, 512)
	checkSpread(t, c, 1023, []int{526, 497})
}

// localityWeights is Envoy's normalizeLocalityWeights: the normalized
// weights of the hosts of localities (host weights per locality) whose
// weight is not 0, with their keys.
func localityWeights(keys [][]string, hostW [][]uint32, locW []uint32) (ks []string, norm []float64, minW, maxW float64) {
	var sum uint64
	for _, w := range locW {
		sum += uint64(w)
	}
	minW = 1.0
	for i, lw := range locW {
		if lw == 0 {
			continue
		}
		nlw := float64(lw) / float64(sum)
		var hs uint64
		for _, w := range hostW[i] {
			hs += uint64(w)
		}
		for j, w := range hostW[i] {
			x := float64(w) * nlw / float64(hs)
			ks, norm = append(ks, keys[i][j]), append(norm, x)
			minW, maxW = min(minW, x), max(maxW, x)
		}
	}
	return ks, norm, minW, maxW
}

// ringPick is the key of the ring's host for hash h.
func ringPick(keys []string, hashes []uint64, owner []uint32, h uint64) string {
	r := &ringHash{hashes: hashes}
	return keys[owner[r.lookup(h)]]
}

func TestEnvoyRingHashLocalityWeighted(t *testing.T) {
	a := func(ps ...int) (out []string) {
		for _, p := range ps {
			out = append(out, fmt.Sprintf("127.0.0.1:%d", p))
		}
		return out
	}
	// LocalityWeightedTinyRing / LargeRing: localities of one host each,
	// weighted 1, 2, 3 and 0.
	keys, norm, minW, _ := localityWeights([][]string{a(90), a(91), a(92), a(93)}, [][]uint32{{1}, {1}, {1}, {1}}, []uint32{1, 2, 3, 0})
	hashes, owner := buildRing(keys, norm, minW, 6, 6)
	checkRingStats(t, owner, 3, 6, 1, 3)
	for h, want := range map[uint64]int{928266305478181108: 92, 4443673547860492590: 92, 5583722120771150861: 91,
		6311230543546372928: 91, 13444792449719432967: 92, 16117243373044804889: 90} {
		if got := ringPick(keys, hashes, owner, h); got != a(want)[0] {
			t.Errorf("locality weighted tiny ring, hash %d: %s, Envoy: :%d", h, got, want)
		}
	}
	hashes, owner = buildRing(keys, norm, minW, 6144, DefaultMaxRingSize)
	checkRingStats(t, owner, 3, 6144, 1024, 3072)
	checkKeySpread(t, keys, hashes, owner, 6000, map[string]int{a(90)[0]: 987, a(91)[0]: 1932, a(92)[0]: 3081})

	// HostAndLocalityWeightedTinyRing / LargeRing: hosts 1:2 in each
	// locality, localities 1:2.
	keys, norm, minW, _ = localityWeights([][]string{a(90, 91), a(92, 93)}, [][]uint32{{1, 2}, {1, 2}}, []uint32{1, 2})
	hashes, owner = buildRing(keys, norm, minW, 9, 9)
	checkRingStats(t, owner, 4, 9, 1, 4)
	for h, want := range map[uint64]int{928266305478181108: 92, 3851675632748031481: 93, 5583722120771150861: 91,
		6311230543546372928: 91, 7700377290971790572: 93, 12559126875973811811: 93,
		13444792449719432967: 92, 13784988426630141778: 93, 16117243373044804889: 90} {
		if got := ringPick(keys, hashes, owner, h); got != a(want)[0] {
			t.Errorf("host and locality weighted tiny ring, hash %d: %s, Envoy: :%d", h, got, want)
		}
	}
	hashes, owner = buildRing(keys, norm, minW, 9216, DefaultMaxRingSize)
	checkRingStats(t, owner, 4, 9216, 1024, 4096)
	checkKeySpread(t, keys, hashes, owner, 9000, map[string]int{a(90)[0]: 924, a(91)[0]: 2009, a(92)[0]: 2053, a(93)[0]: 4014})

	// LopsidedWeightSmallScale: host :0 alone in a locality of weight 127,
	// hosts :1-:1023 in one of weight 1, on a ring of 1024.
	all := make([]string, 1024)
	for i := range all {
		all[i] = fmt.Sprintf("127.0.0.1:%d", i)
	}
	lightW := make([]uint32, 1023)
	for i := range lightW {
		lightW[i] = 1
	}
	keys, norm, minW, _ = localityWeights([][]string{all[:1], all[1:]}, [][]uint32{{1}, lightW}, []uint32{127, 1})
	hashes, owner = buildRing(keys, norm, minW, 1024, 1024)
	checkRingStats(t, owner, 1024, 1024, 0, 1016)
	for h, want := range map[uint64]int{11664790346325243808: 1, 15894554872961148518: 128, 13958138884277627155: 256,
		15803774069438192949: 384, 3829253010855396576: 512, 17918147347826565154: 640,
		6442769608292299103: 768, 5881074926069334434: 896} {
		if got := ringPick(keys, hashes, owner, h); got != all[want] {
			t.Errorf("lopsided ring, hash %d: %s, Envoy: :%d", h, got, want)
		}
	}
}

func checkKeySpread(t *testing.T, keys []string, hashes []uint64, owner []uint32, n uint64, want map[string]int) {
	t.Helper()
	counts := map[string]int{}
	for i := range n {
		counts[ringPick(keys, hashes, owner, i*(math.MaxUint64/n))]++
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("%d hashes spread over hosts %v, Envoy: %v", n, counts, want)
	}
}

func TestEnvoyRingHashConfig(t *testing.T) {
	// BadRingSizeBounds.
	_, err := New(Config{Name: "c", LBPolicy: "RING_HASH", MinRingSize: 20, MaxRingSize: 10, Endpoints: ports([]int{90})}, nil)
	if err == nil || err.Error() != `cluster "c": ring hash: minimum_ring_size (20) > maximum_ring_size (10)` {
		t.Errorf("min > max: %v", err)
	}
}

// checkTable compares the hosts picked for hashes 0..3*len(want)-1 (the
// table entries, three times round) with Envoy's.
func checkTable(t *testing.T, c *Cluster, want []int) {
	t.Helper()
	for i := range 3 * len(want) {
		if got := hostIndex(t, c, uint64(i), nil); got != want[i%len(want)] {
			t.Errorf("hash %d: host %d, Envoy: %d", i, got, want[i%len(want)])
		}
	}
}

// entriesPerHost is Envoy's maglev_lb min and max entries per host.
func entriesPerHost(table []uint32, hosts int) (minPer, maxPer int) {
	per := make([]int, hosts)
	for _, i := range table {
		per[i]++
	}
	minPer = len(table)
	for _, n := range per {
		minPer, maxPer = min(minPer, n), max(maxPer, n)
	}
	return minPer, maxPer
}

func checkEntries(t *testing.T, table []uint32, hosts, minPer, maxPer int) {
	t.Helper()
	if lo, hi := entriesPerHost(table, hosts); lo != minPer || hi != maxPer {
		t.Errorf("entries per host %d-%d, Envoy: %d-%d", lo, hi, minPer, maxPer)
	}
}

func TestEnvoyMaglevBasic(t *testing.T) {
	c := newPolicy(t, Config{LBPolicy: "MAGLEV", MaglevTableSize: 7}, ports([]int{90, 91, 92, 93, 94, 95}))
	checkEntries(t, c.set.Load().lb.(*maglev).table, 6, 1, 2)
	checkTable(t, c, []int{2, 4, 0, 1, 5, 0, 3})
	// BasicWithRetryHostPredicate: hash 10 is entry 3, host 1; avoiding
	// it, Envoy's second attempt takes host 0, its third host 5.
	if got := hostIndex(t, c, 10, nil); got != 1 {
		t.Errorf("hash 10: host %d, Envoy: 1", got)
	}
	if got := hostIndex(t, c, 10, c.Hosts()[1]); got != 0 {
		t.Errorf("hash 10 avoiding host 1: host %d, Envoy: 0", got)
	}
	m := c.set.Load().lb.(*maglev)
	if got := m.table[m.slot(10, 2)]; got != 5 {
		t.Errorf("hash 10, attempt 2: host %d, Envoy: 5", got)
	}
	// BasicStability: the table does not depend on the hosts' order.
	order := ports([]int{90, 91, 92, 93, 94, 95})
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	c = newPolicy(t, Config{LBPolicy: "MAGLEV", MaglevTableSize: 7}, order)
	for i, want := range []int{2, 4, 0, 1, 5, 0, 3} {
		if got := c.Pick(time.Now(), &LBContext{Hash: uint64(i), HasHash: true}).Addr; got != fmt.Sprintf("127.0.0.1:%d", 90+want) {
			t.Errorf("shuffled hosts, hash %d: %s, Envoy: :%d", i, got, 90+want)
		}
	}
	// SingleHost.
	c = newPolicy(t, Config{LBPolicy: "MAGLEV", MaglevTableSize: 7}, ports([]int{90}))
	for i := range uint64(5) {
		if hostIndex(t, c, i, nil) != 0 {
			t.Error("a single host not picked")
		}
	}
}

func TestEnvoyMaglevHashKey(t *testing.T) {
	// BasicWithHostName and BasicWithMetadataHashKey.
	c := newPolicy(t, Config{LBPolicy: "MAGLEV", MaglevTableSize: 7}, withHashKeys(ports([]int{90, 91, 92, 93, 94, 95})))
	checkEntries(t, c.set.Load().lb.(*maglev).table, 6, 1, 2)
	checkTable(t, c, []int{2, 5, 0, 3, 4, 1, 0})
}

func TestEnvoyMaglevWeighted(t *testing.T) {
	c := newPolicy(t, Config{LBPolicy: "MAGLEV", MaglevTableSize: 17}, ports([]int{90, 91}, 1, 2))
	checkEntries(t, c.set.Load().lb.(*maglev).table, 2, 6, 11)
	checkTable(t, c, []int{1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1})
}

func TestEnvoyMaglevLocalityWeighted(t *testing.T) {
	a := func(p int) []string { return []string{fmt.Sprintf("127.0.0.1:%d", p)} }
	check := func(name string, keys []string, norm []float64, maxW float64, minPer, maxPer int, want []int) {
		t.Helper()
		table := buildMaglev(keys, norm, maxW, 17)
		checkEntries(t, table, len(keys), minPer, maxPer)
		for i, w := range want {
			if got := table[i]; got != uint32(w) {
				t.Errorf("%s: entry %d: host %d, Envoy: %d", name, i, got, w)
			}
		}
	}
	// LocalityWeightedSameLocalityWeights (and LocalityWeightedGlobalPanic,
	// the same table of all hosts).
	keys, norm, _, maxW := localityWeights([][]string{a(90), a(91)}, [][]uint32{{1}, {2}}, []uint32{1, 1})
	check("same locality weights", keys, norm, maxW, 8, 9, []int{1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1})
	// LocalityWeightedDifferentLocalityWeights: :92's locality weighs 0.
	keys, norm, _, maxW = localityWeights([][]string{a(90), a(92), a(91)}, [][]uint32{{1}, {3}, {2}}, []uint32{8, 0, 2})
	check("different locality weights", keys, norm, maxW, 4, 13, []int{1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0})

	// LocalityWeightedLopsided: each light host gets one entry, the heavy
	// one the rest.
	all := make([]string, 1024)
	for i := range all {
		all[i] = fmt.Sprintf("127.0.0.1:%d", i)
	}
	lightW := make([]uint32, 1023)
	for i := range lightW {
		lightW[i] = 1
	}
	keys, norm, _, maxW = localityWeights([][]string{all[:1], all[1:]}, [][]uint32{{1}, lightW}, []uint32{127, 1})
	table := buildMaglev(keys, norm, maxW, DefaultMaglevTableSize)
	checkEntries(t, table, 1024, 1, DefaultMaglevTableSize-1023)
	per := make([]int, 1024)
	for _, i := range table {
		per[i]++
	}
	if per[0] != DefaultMaglevTableSize-1023 {
		t.Errorf("lopsided: the heavy host has %d entries, Envoy: %d", per[0], DefaultMaglevTableSize-1023)
	}
}

func TestEnvoyMaglevConfig(t *testing.T) {
	// NoPrimeNumber and DefaultMaglevTableSize.
	if _, err := New(Config{Name: "c", LBPolicy: "MAGLEV", MaglevTableSize: 8, Endpoints: ports([]int{90})}, nil); err == nil {
		t.Error("table size 8 accepted")
	}
	c := newPolicy(t, Config{LBPolicy: "MAGLEV"}, ports([]int{90, 91}))
	if n := len(c.set.Load().lb.(*maglev).table); n != 65537 {
		t.Errorf("default table size %d, Envoy: 65537", n)
	}
}
