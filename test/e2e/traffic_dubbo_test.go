package e2e

// Traffic management with dubbo-go peers, through every proxy host: version
// and attribute routing, weighted splits, consistent hashing (RING_HASH,
// MAGLEV), request mirroring, retries (kill under load, server failure,
// per-try timeout and late answers, the max_retries circuit breaker) and
// route timeouts (and late answers). Header mutation alone is covered by
// TestDubboProxy's "request mutation"; here it is checked on retried
// requests.
//
// Counters come from the standalone proxy's admin listener; the ABI host
// has none, so there the tests assert only what the clients see.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

// trafficStart runs px from b and returns its listener's address and, for
// the standalone proxy, the address of an admin listener added to b ("" for
// the ABI host).
func trafficStart(t *testing.T, px harness.Proxy, b harness.Bootstrap) (addr, admin string) {
	t.Helper()
	if _, ok := px.(harness.Standalone); ok {
		port := harness.FreePort(t)
		b.AdminPort = port
		admin = harness.Addr(port)
	}
	return px.Start(t, b.MustRender()), admin
}

// dubboTraffic is a bootstrap with one multiplexed Dubbo listener.
func dubboTraffic(t *testing.T, routes []harness.Route, extra map[string]any, clusters ...harness.Cluster) harness.Bootstrap {
	return harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "traffic", Protocol: "dubbo", Multiplexing: true, Routes: routes, Extra: extra,
	}}}, Clusters: clusters}
}

// ifaceMatch matches DemoService calls.
var ifaceMatch = harness.Exact("interface", harness.DubboInterface)

func methodMatch(m string) harness.Match { return harness.Exact("method", m) }

// servedBy returns "tag@host:port" of the server that produced a sayHello
// ("... response from tag@addr") or sleep ("slept Nms at tag@addr") reply,
// Dubbo or Thrift; "" for anything else.
func servedBy(reply string) string {
	if i := strings.LastIndex(reply, "response from "); i >= 0 {
		return reply[i+len("response from "):]
	}
	if strings.HasPrefix(reply, "slept ") {
		if i := strings.LastIndex(reply, " at "); i >= 0 {
			return reply[i+len(" at "):]
		}
	}
	return ""
}

// ident is "tag@addr", what servedBy returns for p.
func ident(p *harness.DubboProvider) string { return p.Tag + "@" + p.Addr() }

// mirrorPolicy is a route action's request_mirror_policies sending percent
// % of the requests to cluster.
func mirrorPolicy(cluster string, percent int) []any {
	return []any{map[string]any{"cluster": cluster, "runtime_fraction": map[string]any{
		"default_value": map[string]any{"numerator": percent, "denominator": "HUNDRED"}}}}
}

// consumerLines runs the dubbo-go consumer and returns its output lines;
// a failed run fails t unless allowFail.
func consumerLines(t *testing.T, addr string, allowFail bool, flags ...string) []string {
	t.Helper()
	out, err := harness.DubboConsumer(t, addr, flags...)
	if err != nil && !allowFail {
		t.Fatalf("%v\noutput:\n%s", err, out)
	}
	return strings.Split(strings.TrimRight(out, "\n"), "\n")
}

// TestTrafficDubboVersionRouting routes on the service version the dubbo-go
// consumer sends: 1.0.0 to the v1 provider, 2.0.0 to v2, any other version
// has no route.
func TestTrafficDubboVersionRouting(t *testing.T) {
	t.Parallel()
	v1 := harness.StartDubboProviderVersion(t, "v1", "1.0.0")
	v2 := harness.StartDubboProviderVersion(t, "v2", "2.0.0")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			addr, _ := trafficStart(t, px, dubboTraffic(t, []harness.Route{
				{Name: "v1", Match: []harness.Match{ifaceMatch, harness.Exact("version", "1.0.0")}, Cluster: "v1"},
				{Name: "v2", Match: []harness.Match{ifaceMatch, harness.Exact("version", "2.0.0")}, Cluster: "v2"},
			}, nil, harness.Cluster{Name: "v1", Endpoints: []string{v1.Addr()}}, harness.Cluster{Name: "v2", Endpoints: []string{v2.Addr()}}))

			for _, c := range []struct {
				version string
				p       *harness.DubboProvider
			}{{"1.0.0", v1}, {"2.0.0", v2}} {
				lines := consumerLines(t, addr, false, "-version", c.version, "-name", "ver", "-n", "5")
				for i, l := range lines {
					if l != c.p.HelloFrom("ver") {
						t.Errorf("dubbo-go consumer, version %s, call %d: %q, want %s's %q", c.version, i, l, c.p.Tag, c.p.HelloFrom("ver"))
					}
				}
				if len(lines) != 5 {
					t.Errorf("version %s: %d lines, want 5: %q", c.version, len(lines), lines)
				}
			}
			lines := consumerLines(t, addr, true, "-version", "3.0.0", "-name", "ver")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "ERROR ") || !strings.Contains(lines[0], "no route") {
				t.Errorf("dubbo-go consumer, version 3.0.0 (no route): %q, want an ERROR line with the proxy's no-route error", lines)
			}

			// Raw calls with both versions interleaved on one connection.
			c := dialRaw(t, addr)
			for i := range 10 {
				p, v := v1, "1.0.0"
				if i%2 == 1 {
					p, v = v2, "2.0.0"
				}
				name := fmt.Sprintf("raw-%d", i)
				req := sayHello(name)
				req.Version = v
				if r := call(t, c, req); r.String() != p.HelloFrom(name) {
					t.Errorf("raw call with version %s: %q, want %q", v, r.String(), p.HelloFrom(name))
				}
			}
			req := sayHello("none")
			req.Version = "9.9.9"
			if r := call(t, c, req); r.OK() || !strings.Contains(r.Exception, "no route") {
				t.Errorf("raw call with version 9.9.9: %q, want the proxy's no-route error", r.String())
			}
		})
	}
}

// weightedEndpoints is a cluster's load_assignment with endpoints of
// load_balancing_weight weights[i].
func weightedEndpoints(name string, addrs []string, weights []int) map[string]any {
	var eps []any
	for i, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		eps = append(eps, map[string]any{"load_balancing_weight": weights[i], "endpoint": map[string]any{"address": map[string]any{
			"socket_address": map[string]any{"address": host, "port_value": p}}}})
	}
	return map[string]any{"load_assignment": map[string]any{"cluster_name": name, "endpoints": []any{map[string]any{"lb_endpoints": eps}}}}
}

// TestTrafficDubboWeightedSplit: 5,000 dubbo-go calls split 20/80 within ±3
// points: by weighted clusters, and by the load_balancing_weight of one
// cluster's endpoints under ROUND_ROBIN. (Envoy's RANDOM ignores endpoint
// weights, and LEAST_REQUEST divides them by the requests in flight.)
func TestTrafficDubboWeightedSplit(t *testing.T) {
	t.Parallel()
	p20 := harness.StartDubboProvider(t, "w20")
	p80 := harness.StartDubboProvider(t, "w80")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			eps, weights := []string{p20.Addr(), p80.Addr()}, []int{1, 4}
			addr, _ := trafficStart(t, px, dubboTraffic(t, []harness.Route{
				{Name: "rr", Match: []harness.Match{ifaceMatch, harness.Exact("x-split", "ROUND_ROBIN")}, Cluster: "rr"},
				{Name: "split", Match: []harness.Match{ifaceMatch},
					Weighted: []harness.WeightedCluster{{Name: "c20", Weight: 20}, {Name: "c80", Weight: 80}}},
			}, nil,
				harness.Cluster{Name: "c20", Endpoints: []string{p20.Addr()}}, harness.Cluster{Name: "c80", Endpoints: []string{p80.Addr()}},
				harness.Cluster{Name: "rr", Endpoints: eps, LBPolicy: "ROUND_ROBIN", Extra: weightedEndpoints("rr", eps, weights)}))
			for _, split := range []string{"weighted clusters", "ROUND_ROBIN"} {
				const calls = 5000
				flags := []string{"-c", "16", "-n", strconv.Itoa(calls), "-warmup", "0", "-tally"}
				if split != "weighted clusters" {
					flags = append(flags, "-attach", "x-split="+split)
				}
				lines := consumerLines(t, addr, false, flags...)
				if !strings.HasPrefix(lines[0], fmt.Sprintf(`{"ok":%d,"errors":0,`, calls)) {
					t.Errorf("%s: dubbo-go load: %s, want %d calls without error", split, lines[0], calls)
					continue
				}
				tally := parseTally(t, lines[1:])
				n20, n80 := tally[p20.HelloFrom("world")], tally[p80.HelloFrom("world")]
				if n20+n80 != calls || len(tally) != 2 {
					t.Errorf("%s: replies %v, want %d from the two providers", split, tally, calls)
					continue
				}
				share := float64(n20) / calls
				t.Logf("%s: %d calls, %d (%.2f %%) to the weight-20 side, %d to the weight-80 one", split, calls, n20, 100*share, n80)
				if share < 0.17 || share > 0.23 {
					t.Errorf("%s: the weight-20 side got %.2f %% of %d calls, want 20 ± 3 %%", split, 100*share, calls)
				}
			}
		})
	}
}

// parseTally reads the consumer's "TALLY <count> <reply>" lines.
func parseTally(t *testing.T, lines []string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l, "TALLY ")
		if !ok {
			t.Fatalf("unexpected consumer line %q", l)
		}
		n, reply, _ := strings.Cut(rest, " ")
		k, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("tally line %q: %v", l, err)
		}
		m[reply] = k
	}
	return m
}

// TestTrafficDubboAttributeRouting: exact, prefix and regex matchers on the
// interface, the method and an attachment, set by the raw client and by
// the dubbo-go consumer.
func TestTrafficDubboAttributeRouting(t *testing.T) {
	t.Parallel()
	a := harness.StartDubboProvider(t, "A")
	b := harness.StartDubboProvider(t, "B")
	c := harness.StartDubboProvider(t, "C")
	routes := []harness.Route{
		{Name: "gold", Cluster: "a", Match: []harness.Match{
			ifaceMatch, methodMatch("sayHello"), {Name: "x-tenant", Regex: `^gold-[0-9]+$`}}},
		{Name: "silver", Cluster: "b", Match: []harness.Match{
			{Name: "interface", Prefix: "org.apache.dubbo.samples."}, {Name: "method", Prefix: "say"}, {Name: "x-tenant", Prefix: "silver-"}}},
		{Name: "rest", Cluster: "c", Match: []harness.Match{
			{Name: "interface", Regex: `^org\.apache\.dubbo\.samples\..*\.DemoService$`}, {Name: "method", Regex: `^(sayHello|sleep)$`}}},
	}
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			addr, _ := trafficStart(t, px, dubboTraffic(t, routes, nil,
				harness.Cluster{Name: "a", Endpoints: []string{a.Addr()}},
				harness.Cluster{Name: "b", Endpoints: []string{b.Addr()}},
				harness.Cluster{Name: "c", Endpoints: []string{c.Addr()}}))
			conn := dialRaw(t, addr)
			for _, tc := range []struct {
				what   string
				call   rawdubbo.Call
				tenant string
				want   *harness.DubboProvider // nil: no route
			}{
				{"regex attachment", sayHello("g"), "gold-42", a},
				{"regex attachment not matching", sayHello("gx"), "gold-x", c},
				{"prefix interface, method and attachment", sayHello("s"), "silver-1", b},
				{"no attachment", sayHello("n"), "", c},
				{"method regex", sleepCall(1), "gold-1", c},
				{"interface not matching", rawdubbo.Call{Interface: "org.apache.dubbo.samples.basic.api.OtherService",
					Method: "sayHello", Args: []any{"o"}}, "gold-1", nil},
			} {
				req := tc.call
				if tc.tenant != "" {
					req.Attachments = map[string]string{"x-tenant": tc.tenant}
				}
				r := call(t, conn, req)
				switch {
				case tc.want == nil:
					if r.OK() || !strings.Contains(r.Exception, "no route") {
						t.Errorf("%s: %q, want the proxy's no-route error", tc.what, r.String())
					}
				case servedBy(r.String()) != ident(tc.want):
					t.Errorf("%s (x-tenant=%q, %s): %q, want an answer from %s", tc.what, tc.tenant, req.Method, r.String(), tc.want.Tag)
				}
			}
			// The dubbo-go consumer's attachments route as the raw client's.
			for tenant, p := range map[string]*harness.DubboProvider{"gold-7": a, "silver-3": b, "": c} {
				flags := []string{"-name", "go", "-n", "2"}
				if tenant != "" {
					flags = append(flags, "-attach", "x-tenant="+tenant)
				}
				for _, l := range consumerLines(t, addr, false, flags...) {
					if l != p.HelloFrom("go") {
						t.Errorf("dubbo-go consumer with x-tenant=%q: %q, want %s's answer", tenant, l, p.Tag)
					}
				}
			}
		})
	}
}

// hashLB is a consistent-hash load-balancing policy of a cluster.
type hashLB struct {
	policy string
	extra  map[string]any
	// reconfigMoves is how many of n keys of the remaining hosts may move
	// when a cluster of three hosts is reconfigured with two. The ring is
	// Envoy's: its size is scaled to the host count (342 hashes per host of
	// three for minimum_ring_size 1024, 512 per host of two), so the
	// remaining hosts get new hashes that take keys from each other: about
	// 13 % of their keys move (simulated with Envoy's ring build; a run
	// with 24 keys sees a move nine times in ten). Maglev's table keeps all
	// but about 0.05 % of the remaining hosts' entries (a key of 24 moves
	// in about one run of a hundred).
	reconfigMoves func(n int) int
}

var hashLBs = []hashLB{
	{"RING_HASH", map[string]any{"ring_hash_lb_config": map[string]any{"minimum_ring_size": 1024}}, func(n int) int { return n / 2 }},
	{"MAGLEV", map[string]any{"maglev_lb_config": map[string]any{"table_size": 65537}}, func(int) int { return 1 }},
}

// hashHost is one host of the consistent-hash tests.
type hashHost struct {
	ident, addr string // ident: "tag@addr", what servedBy returns
	kill        func()
}

// hashRun is a protocol's side of the consistent-hash test.
type hashRun struct {
	// start runs a proxy whose hashing cluster has the hosts at addrs and
	// returns its address.
	start func(addrs []string) string
	// owners makes callsPerKey calls for each of keys keys through addr,
	// on two connections, and returns the host (ident) of each key's calls;
	// it fails t if a call fails.
	owners func(addr string) map[string]string
	// byMethod makes 8 calls on 8 connections to the route that hashes on
	// the method and returns how many each host answered.
	byMethod func(addr string) map[string]int
	// noKey makes 30 calls without the hash key on one connection and
	// returns how many each host answered.
	noKey func(addr string) map[string]int
}

const hashKeys, hashCallsPerKey = 24, 4

// testHash checks consistent hashing over three hosts: every call of a key
// on one host, the keys spread, hash_policy [method] sending one method to
// one host; then the host with the most keys is killed (SIGKILL) and the
// keys of the other two stay exactly where they were (the ring or table is
// unchanged; the dead host's keys go to other hosts, consistently, without
// a client error); and a proxy configured with the two remaining hosts
// keeps their keys where they were too, but for what the algorithm moves
// (see hashLB.reconfigMoves).
func testHash(t *testing.T, lb hashLB, hosts []hashHost, run hashRun) {
	count := func(m map[string]string) map[string]int {
		c := map[string]int{}
		for _, v := range m {
			c[v]++
		}
		return c
	}
	var addrs []string
	for _, h := range hosts {
		addrs = append(addrs, h.addr)
	}
	addr := run.start(addrs)
	before := run.owners(addr)
	spread := count(before)
	t.Logf("%s, 3 hosts: %d keys spread as %v", lb.policy, hashKeys, spread)
	if len(spread) < 2 {
		t.Errorf("%d keys all went to %v: the hash does not spread keys", hashKeys, spread)
	}
	if m := run.byMethod(addr); len(m) != 1 {
		t.Errorf("8 calls of one method with hash_policy [method] went to %v, want one host", m)
	}
	// Without the key there is no hash: Envoy then picks a random host.
	if m := run.noKey(addr); len(m) < 2 {
		t.Errorf("30 calls without the hash key all went to %v, want them spread", m)
	}

	removed := hosts[0]
	for _, h := range hosts {
		if spread[h.ident] > spread[removed.ident] {
			removed = h
		}
	}
	var rest []string
	for _, h := range hosts {
		if h.ident != removed.ident {
			rest = append(rest, h.addr)
		}
	}

	// The busiest host dies.
	removed.kill()
	down := run.owners(addr)
	t.Logf("%s, %s killed: keys spread as %v", lb.policy, removed.ident, count(down))
	for k, was := range before {
		switch now := down[k]; {
		case now == removed.ident:
			t.Errorf("key %s still answered by the killed host %s", k, removed.ident)
		case was != removed.ident && now != was:
			t.Errorf("%s: key %s moved from %s to %s when another host (%s) died", lb.policy, k, was, now, removed.ident)
		}
	}

	// A proxy configured with the two remaining hosts.
	after := run.owners(run.start(rest))
	t.Logf("%s, configured without %s: keys spread as %v", lb.policy, removed.ident, count(after))
	var moved []string
	remaining := 0
	for k, was := range before {
		now := after[k]
		switch {
		case now == removed.ident:
			t.Errorf("key %s goes to %s, which is not in the cluster", k, now)
		case was != removed.ident:
			remaining++
			if now != was {
				moved = append(moved, fmt.Sprintf("%s: %s -> %s", k, was, now))
			}
		}
	}
	if limit := lb.reconfigMoves(remaining); len(moved) > limit {
		t.Errorf("%s: %d of the %d keys of the remaining hosts moved when the cluster lost %s (at most %d may): %v",
			lb.policy, len(moved), remaining, removed.ident, limit, moved)
	} else {
		t.Logf("%s: %d of the %d keys of the remaining hosts moved when the cluster lost a host: %v", lb.policy, len(moved), remaining, moved)
	}
}

// TestTrafficDubboConsistentHash: consistent hashing on an attachment with
// RING_HASH and MAGLEV over three dubbo-go providers (see testHash); the
// dubbo-go consumer's attachment hashes as the raw client's.
func TestTrafficDubboConsistentHash(t *testing.T) {
	t.Parallel()
	for _, lb := range hashLBs {
		for _, px := range harness.Proxies() {
			t.Run(lb.policy+"/"+px.Name(), func(t *testing.T) {
				t.Parallel()
				testDubboHash(t, px, lb)
			})
		}
	}
}

func testDubboHash(t *testing.T, px harness.Proxy, lb hashLB) {
	var hosts []hashHost
	for i := range 3 {
		p := harness.StartDubboProvider(t, fmt.Sprintf("h%d", i+1))
		hosts = append(hosts, hashHost{ident: ident(p), addr: p.Addr(), kill: p.Kill})
	}
	run := hashRun{
		start: func(addrs []string) string {
			addr, _ := trafficStart(t, px, dubboTraffic(t, []harness.Route{
				{Name: "by-method", Match: []harness.Match{ifaceMatch, methodMatch("sleep")}, Cluster: "c",
					Extra: merge(map[string]any{"hash_policy": []string{"method"}}, retryPolicy(2, "", "connect-failure,reset"))},
				{Name: "by-user", Match: []harness.Match{ifaceMatch}, Cluster: "c",
					Extra: merge(map[string]any{"hash_policy": []string{"x-user"}}, retryPolicy(2, "", "connect-failure,reset"))},
			}, nil, harness.Cluster{Name: "c", Endpoints: addrs, LBPolicy: lb.policy, Extra: lb.extra}))
			return addr
		},
		owners: func(addr string) map[string]string {
			conns := []*rawdubbo.Conn{dialRaw(t, addr), dialRaw(t, addr)}
			out := map[string]string{}
			for k := range hashKeys {
				key := fmt.Sprintf("user-%d", k)
				for i := range hashCallsPerKey {
					req := sayHello(key)
					req.Attachments = map[string]string{"x-user": key}
					r := call(t, conns[(k+i)%2], req)
					switch got := servedBy(r.String()); {
					case got == "" || !r.OK():
						t.Fatalf("key %s: %q", key, r.String())
					case out[key] == "":
						out[key] = got
					case out[key] != got:
						t.Errorf("key %s: call %d went to %s, earlier calls to %s", key, i, got, out[key])
					}
				}
			}
			// The dubbo-go consumer's attachment hashes as the raw client's.
			for i, l := range consumerLines(t, addr, false, "-attach", "x-user=user-0", "-name", "user-0", "-n", "3") {
				if got := servedBy(l); got != out["user-0"] {
					t.Errorf("dubbo-go consumer call %d with x-user=user-0: %q, want %s like the raw client's", i, l, out["user-0"])
				}
			}
			return out
		},
		byMethod: func(addr string) map[string]int {
			m := map[string]int{}
			for i := range 8 {
				r := call(t, dialRaw(t, addr), sleepCall(int64(i%2)))
				m[servedBy(r.String())]++
			}
			return m
		},
		noKey: func(addr string) map[string]int {
			m := map[string]int{}
			c := dialRaw(t, addr)
			for range 30 {
				r := call(t, c, sayHello("nokey"))
				m[servedBy(r.String())]++
			}
			return m
		},
	}
	testHash(t, lb, hosts, run)
}

// noteCall is a two-way note(s): the provider records s, which its notes()
// then lists.
func noteCall(s string) rawdubbo.Call {
	return rawdubbo.Call{Interface: harness.DubboInterface, Method: "note", Args: []any{s}}
}

// notesWith returns the notes provider p recorded that start with prefix,
// asked directly (not through the proxy).
func notesWith(t *testing.T, p *harness.DubboProvider, prefix string) []string {
	t.Helper()
	c, err := rawdubbo.Dial(p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", p.Tag, err)
	}
	defer c.Close()
	r := call(t, c, rawdubbo.Call{Interface: harness.DubboInterface, Method: "notes", Args: []any{}})
	var out []string
	for _, n := range strings.Split(r.String(), ",") {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// settle polls f until its value has not changed for quiet, and returns it;
// it fails t if that takes longer than timeout.
func settle(t *testing.T, timeout, quiet time.Duration, f func() int) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	v, since := f(), time.Now()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			t.Fatalf("value still changing after %v (last %d)", timeout, v)
		}
		time.Sleep(50 * time.Millisecond)
		if n := f(); n != v {
			v, since = n, time.Now()
		}
	}
	return v
}

// parallelCalls makes n calls from workers goroutines, call(i) being the
// i-th, and returns the longest call and the failures.
func parallelCalls(n, workers int, call func(i int) error) (slowest time.Duration, errs []error) {
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				start := time.Now()
				err := call(i)
				d := time.Since(start)
				mu.Lock()
				slowest = max(slowest, d)
				if err != nil && len(errs) < 20 {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return slowest, errs
}

// mirrorLatencyBound is the longest a primary call may take while its
// mirror is frozen or dead: far less than the mirror copies' 3 s timeout
// (a primary that waited for its copy would take that long), far more than
// a call takes on a loaded machine.
const mirrorLatencyBound = 1500 * time.Millisecond

// TestTrafficDubboMirror: 50 % of the calls are mirrored. All 400 calls are
// answered by the primary; about half (35-65 %) reach the mirror, none
// twice. Then the mirror is frozen (SIGSTOP) and later killed: every call
// still succeeds from the primary, without waiting for its copy, and the
// copies' failures are counted (standalone).
func TestTrafficDubboMirror(t *testing.T) {
	t.Parallel()
	primary := harness.StartDubboProvider(t, "primary")
	for _, px := range harness.Proxies() {
		for _, mux := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/multiplexing=%v", px.Name(), mux), func(t *testing.T) {
				t.Parallel()
				testDubboMirror(t, px, mux, primary)
			})
		}
	}
}

func testDubboMirror(t *testing.T, px harness.Proxy, mux bool, primary *harness.DubboProvider) {
	mirror := harness.StartDubboProvider(t, "mirror")
	action := map[string]any{"request_mirror_policies": mirrorPolicy("mirror", 50), "timeout": "3s"}
	b := dubboTraffic(t, []harness.Route{
		{Name: "note", Match: []harness.Match{ifaceMatch, methodMatch("note")}, Cluster: "primary", Extra: action},
		{Name: "hello", Match: []harness.Match{ifaceMatch, methodMatch("sayHello")}, Cluster: "primary", Extra: action},
	}, nil, harness.Cluster{Name: "primary", Endpoints: []string{primary.Addr()}}, harness.Cluster{Name: "mirror", Endpoints: []string{mirror.Addr()}})
	b.Listeners[0].Proxy.Multiplexing = mux
	addr, admin := trafficStart(t, px, b)
	stat := func(name string) int64 { return adminStat(admin, name) }
	conns := []*rawdubbo.Conn{dialRaw(t, addr), dialRaw(t, addr), dialRaw(t, addr), dialRaw(t, addr)}

	// Healthy mirror.
	const calls = 400
	prefix := fmt.Sprintf("mirror-%s-%v-", px.Name(), mux)
	_, errs := parallelCalls(calls, len(conns), func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		r, err := conns[i%len(conns)].Call(ctx, noteCall(fmt.Sprintf("%s%d", prefix, i)))
		if err == nil && !r.OK() {
			err = errors.New(r.String())
		}
		return err
	})
	for _, err := range errs {
		t.Errorf("mirrored note call: %v", err)
	}
	if got := notesWith(t, primary, prefix); len(got) != calls || len(uniq(got)) != calls {
		t.Errorf("the primary recorded %d notes (%d distinct), want each of the %d calls once", len(got), len(uniq(got)), calls)
	}
	n := settle(t, 20*time.Second, 500*time.Millisecond, func() int { return len(notesWith(t, mirror, prefix)) })
	if admin != "" {
		harness.WaitFor(t, 10*time.Second, func() bool { return stat("request_mirror_active") == 0 })
		n = len(notesWith(t, mirror, prefix))
	}
	mirrored := notesWith(t, mirror, prefix)
	t.Logf("%d of %d calls reached the mirror (%.1f %%)", n, calls, 100*float64(n)/calls)
	if n < calls*35/100 || n > calls*65/100 {
		t.Errorf("%d of %d calls reached the mirror, want 35-65 %% at runtime_fraction 50 %%", n, calls)
	}
	if len(uniq(mirrored)) != len(mirrored) {
		t.Errorf("the mirror got %d copies of %d distinct calls: some twice", len(mirrored), len(uniq(mirrored)))
	}
	if admin != "" {
		if m, f := stat("request_mirror"), stat("request_mirror_failed"); m != int64(n) || f != 0 {
			t.Errorf("request_mirror = %d, request_mirror_failed = %d; want %d copies sent (what the mirror got), none failed", m, f, n)
		}
	}

	hellos := func(phase string, n int, size int) {
		t.Helper()
		pad := strings.Repeat("x", size)
		slowest, errs := parallelCalls(n, len(conns), func(i int) error {
			name := fmt.Sprintf("%s-%d-%s", phase, i, pad)
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			defer cancel()
			r, err := conns[i%len(conns)].Call(ctx, sayHello(name))
			if err == nil && r.String() != primary.HelloFrom(name) {
				err = fmt.Errorf("reply %.80q, want the primary's", r.String())
			}
			return err
		})
		for _, err := range errs {
			t.Errorf("%s: %v", phase, err)
		}
		t.Logf("%s: %d calls, slowest %v", phase, n, slowest.Round(time.Millisecond))
		if slowest > mirrorLatencyBound {
			t.Errorf("%s: a call took %v (bound %v): the primary waited for its mirror copy", phase, slowest.Round(time.Millisecond), mirrorLatencyBound)
		}
	}

	// Frozen mirror: its connections accept bytes and never
	// answer; copies time out after the route's 3 s.
	// The mirror's answers never reach the client.
	hellos("healthy", 100, 0)

	if err := mirror.Freeze(); err != nil {
		t.Fatal(err)
	}
	hellos("frozen", 200, 8<<10)
	var failedFrozen int64
	if admin != "" {
		if !harness.WaitFor(t, 20*time.Second, func() bool { return stat("request_mirror_failed") > 0 }) {
			t.Errorf("request_mirror_failed = %d 20 s after copies to a frozen mirror (timeout 3 s), want > 0", stat("request_mirror_failed"))
		}
		harness.WaitFor(t, 20*time.Second, func() bool { return stat("request_mirror_active") == 0 })
		failedFrozen = stat("request_mirror_failed")
		t.Logf("frozen mirror: request_mirror_failed = %d, request_timeout = %d, request_mirror_active = %d",
			failedFrozen, stat("request_timeout"), stat("request_mirror_active"))
	}

	// Killed mirror.
	mirror.Kill()
	hellos("killed", 100, 0)
	if admin != "" {
		if !harness.WaitFor(t, 20*time.Second, func() bool { return stat("request_mirror_failed") > failedFrozen }) {
			t.Errorf("request_mirror_failed = %d after copies to a dead mirror, want more than the %d of the frozen phase",
				stat("request_mirror_failed"), failedFrozen)
		}
		t.Logf("dead mirror: request_mirror = %d, request_mirror_failed = %d, request_mirror_overflow = %d",
			stat("request_mirror"), stat("request_mirror_failed"), stat("request_mirror_overflow"))
	}
}

func uniq(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// callers runs n callers, each calling call(i, seq) in a loop until stopped;
// a call returns a non-nil error when it failed in any way.
type callers struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	ok    []int
	fails int
	errs  []string
}

func startCallers(t *testing.T, n int, call func(i, seq int) error) *callers {
	cs := &callers{stopc: make(chan struct{}), ok: make([]int, n)}
	for i := range n {
		cs.wg.Add(1)
		go func() {
			defer cs.wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-cs.stopc:
					return
				default:
				}
				err := call(i, seq)
				if err != nil {
					time.Sleep(10 * time.Millisecond) // a broken client fails at once: do not spin
				}
				cs.mu.Lock()
				if err != nil {
					cs.fails++
					if len(cs.errs) < 20 {
						cs.errs = append(cs.errs, fmt.Sprintf("caller %d call %d: %v", i, seq, err))
					}
				} else {
					cs.ok[i]++
				}
				cs.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { cs.stop() })
	return cs
}

// oks returns each caller's successful calls so far.
func (cs *callers) oks() []int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return slices.Clone(cs.ok)
}

// each reports whether every caller has more than base[i]+n successes.
func (cs *callers) each(base []int, n int) bool {
	for i, ok := range cs.oks() {
		if ok < base[i]+n {
			return false
		}
	}
	return true
}

// stop stops the callers and returns the total successes and failures. It
// is idempotent.
func (cs *callers) stop() (ok, fails int, errs []string) {
	select {
	case <-cs.stopc:
	default:
		close(cs.stopc)
	}
	cs.wg.Wait()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, n := range cs.ok {
		ok += n
	}
	return ok, cs.fails, slices.Clone(cs.errs)
}

// retryPolicy is a route action with a retry policy.
func retryPolicy(numRetries int, perTry, on string) map[string]any {
	rp := map[string]any{"num_retries": numRetries, "retry_on": on}
	if perTry != "" {
		rp["per_try_timeout"] = perTry
	}
	return map[string]any{"retry_policy": rp}
}

// maxRetries is a cluster's circuit_breakers with max_retries n.
func maxRetries(n int) map[string]any {
	return map[string]any{"circuit_breakers": map[string]any{"thresholds": []any{map[string]any{"max_retries": n}}}}
}

// startDubboFailer is an upstream that answers every two-way Dubbo request
// with status 80 (SERVER_ERROR), what a Java provider answers when it fails
// to process a call (dubbo-go providers answer every call with status OK,
// an exception in the body), and heartbeats with a heartbeat. It counts the
// requests.
func startDubboFailer(t *testing.T, requests *atomic.Int64) string {
	return serveTCP(t, func(c *net.TCPConn) {
		hdr := make([]byte, rawdubbo.HeaderLen)
		for {
			if _, err := io.ReadFull(c, hdr); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(hdr[12:16]))
			if _, err := io.ReadFull(c, body); err != nil {
				return
			}
			flags, id := hdr[2], int64(binary.BigEndian.Uint64(hdr[4:12]))
			const request, twoWay, event = 0x80, 0x40, 0x20
			if flags&request == 0 || flags&twoWay == 0 {
				continue
			}
			var frame []byte
			var err error
			if flags&event != 0 {
				frame, err = hessian.NewHessianCodec(nil).Write(hessian.Service{},
					hessian.DubboHeader{SerialID: 2, Type: hessian.PackageHeartbeat, ID: id, ResponseStatus: hessian.Response_OK}, nil)
			} else {
				requests.Add(1)
				frame, err = hessian.NewHessianCodec(nil).Write(hessian.Service{},
					hessian.DubboHeader{SerialID: 2, Type: hessian.PackageResponse, ID: id, ResponseStatus: hessian.Response_SERVER_ERROR},
					&hessian.Response{Exception: errors.New("failer: server error")})
			}
			if err != nil {
				panic(err) // the library encodes what it is given
			}
			if _, err := c.Write(frame); err != nil {
				return
			}
		}
	})
}

// TestTrafficDubboRetry covers retry_policy through every host.
func TestTrafficDubboRetry(t *testing.T) {
	t.Parallel()
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			for _, mux := range []bool{true, false} {
				t.Run(fmt.Sprintf("ProviderKilledUnderLoad/multiplexing=%v", mux), func(t *testing.T) { testDubboRetryKill(t, px, mux) })
			}
			t.Run("ServerFailure", func(t *testing.T) { testDubboRetryServerFailure(t, px) })
			t.Run("PerTryTimeout", func(t *testing.T) { testDubboPerTryTimeout(t, px) })
			t.Run("PerTryTimeoutLateAnswers", func(t *testing.T) { testDubboLateAnswers(t, px) })
			t.Run("MaxRetriesOverflow", func(t *testing.T) { testDubboRetryOverflow(t, px) })
		})
	}
}

// testDubboRetryKill: 16 raw callers and a dubbo-go consumer with 16
// workers on two providers with retry_on connect-failure,reset; one
// provider is killed with SIGKILL mid-run: no call fails.
func testDubboRetryKill(t *testing.T, px harness.Proxy, mux bool) {
	p1, p2 := harness.StartDubboProvider(t, "k1"), harness.StartDubboProvider(t, "k2")
	b := dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c",
		Extra: retryPolicy(3, "", "connect-failure,reset")}}, nil,
		harness.Cluster{Name: "c", Endpoints: []string{p1.Addr(), p2.Addr()}, Extra: maxRetries(64)})
	b.Listeners[0].Proxy.Multiplexing = mux
	addr, admin := trafficStart(t, px, b)

	// The dubbo-go consumer runs for 4 s from before the raw callers
	// start; the kill comes once both providers have served them.
	consumer := make(chan []string, 1)
	go func() {
		out, err := harness.DubboConsumer(t, addr, "-c", "16", "-d", "4s", "-warmup", "1")
		if err != nil {
			out = "ERROR " + err.Error()
		}
		consumer <- strings.Split(strings.TrimSpace(out), "\n")
	}()

	const n = 16
	conns := make([]*rawdubbo.Conn, n)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
	}
	var served [2]atomic.Int64
	cs := startCallers(t, n, func(i, seq int) error {
		name := fmt.Sprintf("c%d-%d", i, seq)
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		r, err := conns[i].Call(ctx, sayHello(name))
		switch {
		case err != nil:
			return err
		case r.String() == p1.HelloFrom(name):
			served[0].Add(1)
		case r.String() == p2.HelloFrom(name):
			served[1].Add(1)
		default:
			return fmt.Errorf("reply %q", r.String())
		}
		return nil
	})
	if !harness.WaitFor(t, 20*time.Second, func() bool { return served[0].Load() >= 100 && served[1].Load() >= 100 }) {
		t.Fatalf("before the kill: %d calls answered by k1, %d by k2; want both serving", served[0].Load(), served[1].Load())
	}
	atKill := cs.oks()
	p2.Kill()
	killed := time.Now()
	if !harness.WaitFor(t, 20*time.Second, func() bool { return cs.each(atKill, 50) }) {
		t.Errorf("not every caller made 50 calls within 20 s of the kill: %v calls since", sub(cs.oks(), atKill))
	}
	ok, fails, errs := cs.stop()
	t.Logf("raw callers: %d calls ok, %d failed; k2 killed after %d of their calls; every caller made 50 calls %v after the kill",
		ok, fails, served[1].Load(), time.Since(killed).Round(time.Millisecond))
	if fails != 0 {
		t.Errorf("%d calls failed around the kill of one of two providers (retry_on connect-failure,reset):\n%s", fails, strings.Join(errs, "\n"))
	}
	lines := <-consumer
	t.Logf("dubbo-go consumer, 16 workers for 4 s across the kill: %s", lines[0])
	if !strings.HasPrefix(lines[0], `{"ok":`) || !strings.Contains(lines[0], `"errors":0,`) {
		t.Errorf("dubbo-go consumer across the kill: %s, want no error", strings.Join(lines, "\n"))
	}
	checkRetriedWithoutOverflow(t, admin)
}

func sub(a, b []int) []int {
	out := make([]int, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

// testDubboRetryServerFailure: a cluster of a host that answers status 80
// (SERVER_ERROR) and a dubbo-go provider; with retry_on server-failure every
// call succeeds from the provider, without it some fail. An exception the
// provider's method throws is the application's answer: not retried.
func testDubboRetryServerFailure(t *testing.T, px harness.Proxy) {
	p := harness.StartDubboProvider(t, "good")
	var failed atomic.Int64
	failer := startDubboFailer(t, &failed)
	addr, admin := trafficStart(t, px, dubboTraffic(t, []harness.Route{
		{Name: "no-retry", Match: []harness.Match{ifaceMatch, harness.Exact("x-retry", "no")}, Cluster: "c"},
		{Name: "good", Match: []harness.Match{ifaceMatch, harness.Exact("x-route", "good")}, Cluster: "good",
			Extra: retryPolicy(2, "", "server-failure")},
		{Name: "mutated", Match: []harness.Match{ifaceMatch, methodMatch("echoAttachment")}, Cluster: "c",
			Extra: retryPolicy(2, "", "server-failure"), RequestMutation: []harness.KV{{Key: "x-mutated", Value: "by-proxy"}}},
		{Name: "retry", Match: []harness.Match{ifaceMatch}, Cluster: "c", Extra: retryPolicy(2, "", "server-failure")},
	}, nil, harness.Cluster{Name: "c", Endpoints: []string{failer, p.Addr()}}, harness.Cluster{Name: "good", Endpoints: []string{p.Addr()}}))
	c := dialRaw(t, addr)
	for i := range 20 {
		name := fmt.Sprintf("sf-%d", i)
		if r := call(t, c, sayHello(name)); r.String() != p.HelloFrom(name) {
			t.Errorf("call %d with retry_on server-failure: %q, want the provider's answer", i, r.String())
		}
	}
	if failed.Load() == 0 {
		t.Errorf("the failing host got no request: nothing was retried")
	}
	// A retried request carries the route's request mutation, once, and
	// the client's own attachments.
	failedBefore := failed.Load()
	for i := range 10 {
		for key, want := range map[string]string{"x-mutated": "by-proxy", "x-keep": "kept"} {
			r := call(t, c, rawdubbo.Call{Interface: harness.DubboInterface, Method: "echoAttachment", Args: []any{key},
				Attachments: map[string]string{"x-keep": "kept", "x-mutated": "by-client"}})
			if r.String() != want {
				t.Errorf("echoAttachment(%s) call %d through the retrying, mutating route: %q, want %q", key, i, r.String(), want)
			}
		}
	}
	if failed.Load() == failedBefore {
		t.Errorf("no echoAttachment call was retried")
	}
	for i, l := range consumerLines(t, addr, false, "-name", "go", "-n", "6") {
		if l != p.HelloFrom("go") {
			t.Errorf("dubbo-go consumer call %d: %q, want the provider's answer", i, l)
		}
	}
	// Without a retry policy the failing host's answers reach the client.
	status80 := 0
	for i := range 20 {
		req := sayHello(fmt.Sprintf("nr-%d", i))
		req.Attachments = map[string]string{"x-retry": "no"}
		if r := call(t, c, req); r.Status == hessian.Response_SERVER_ERROR {
			status80++
		}
	}
	if status80 == 0 {
		t.Errorf("no call without a retry policy got the failing host's status 80: the control is broken")
	}
	if admin != "" {
		t.Logf("upstream_rq_retry = %d, upstream_rq_retry_success = %d; the failing host got %d requests",
			adminStat(admin, "upstream_rq_retry"), adminStat(admin, "upstream_rq_retry_success"), failed.Load())
		if s := adminStat(admin, "upstream_rq_retry_success"); s < 1 {
			t.Errorf("upstream_rq_retry_success = %d, want > 0", s)
		}
	}
	// An exception thrown by the provider's method is the application's
	// answer (status OK, an exception in the body), not a server failure:
	// the route to the provider alone retries server failures, and must
	// not retry it.
	var before int64
	if admin != "" {
		before = adminStat(admin, "upstream_rq_retry")
	}
	req := sayHello("x")
	req.Method, req.Args = "fail", []any{"app-error"}
	req.Attachments = map[string]string{"x-route": "good"}
	for range 4 {
		if r := call(t, c, req); r.Status != hessian.Response_OK || !strings.Contains(r.Exception, "app-error") {
			t.Errorf("fail(app-error): %q, want the provider's exception", r.String())
		}
	}
	if admin != "" {
		if d := adminStat(admin, "upstream_rq_retry") - before; d != 0 {
			t.Errorf("upstream_rq_retry grew by %d over 4 calls of a method that throws (an application error), want 0", d)
		}
	}
}

// testDubboPerTryTimeout: one host never answers; per_try_timeout 300ms
// with retry_on per-try-timeout sends the call to the other host.
func testDubboPerTryTimeout(t *testing.T, px harness.Proxy) {
	p := harness.StartDubboProvider(t, "good")
	addr, admin := trafficStart(t, px, dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c",
		Extra: merge(retryPolicy(2, "0.3s", "per-try-timeout"), map[string]any{"timeout": "5s"})}}, nil,
		harness.Cluster{Name: "c", Endpoints: []string{startBlackhole(t), p.Addr()}}))
	c := dialRaw(t, addr)
	for i := range 6 {
		name := fmt.Sprintf("pt-%d", i)
		start := time.Now()
		r := call(t, c, sayHello(name))
		if d := time.Since(start); r.String() != p.HelloFrom(name) || d > 2500*time.Millisecond {
			t.Errorf("call %d: %q after %v, want the provider's answer within 2.5 s", i, r.String(), d.Round(time.Millisecond))
		}
	}
	if admin != "" {
		ptt, success := adminStat(admin, "upstream_rq_per_try_timeout"), adminStat(admin, "upstream_rq_retry_success")
		t.Logf("upstream_rq_per_try_timeout = %d, upstream_rq_retry_success = %d", ptt, success)
		if ptt < 1 || success < 1 {
			t.Errorf("upstream_rq_per_try_timeout = %d, upstream_rq_retry_success = %d; want both > 0", ptt, success)
		}
	}
}

// testDubboLateAnswers: per_try_timeout 300ms over two providers, one of
// them frozen (SIGSTOP): the calls it gets are retried at the other and
// answered from there. Thawed, it answers those calls late; the proxy must
// drop the late answers: the client never gets a second answer for a call.
func testDubboLateAnswers(t *testing.T, px harness.Proxy) {
	pa, pb := harness.StartDubboProvider(t, "late-a"), harness.StartDubboProvider(t, "late-b")
	addr, admin := trafficStart(t, px, dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c",
		Extra: merge(retryPolicy(1, "0.3s", "per-try-timeout"), map[string]any{"timeout": "5s"})}}, nil,
		harness.Cluster{Name: "c", Endpoints: []string{pa.Addr(), pb.Addr()}}))
	c := dialRaw(t, addr)
	for i := range 4 { // both upstream connections open
		name := fmt.Sprintf("warm-%d", i)
		if r := call(t, c, sayHello(name)); r.String() != pa.HelloFrom(name) && r.String() != pb.HelloFrom(name) {
			t.Fatalf("warm-up call: %q", r.String())
		}
	}
	if err := pa.Freeze(); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		name := fmt.Sprintf("frozen-%d", i)
		if r := call(t, c, sayHello(name)); r.String() != pb.HelloFrom(name) {
			t.Errorf("call %d with late-a frozen: %q, want late-b's answer", i, r.String())
		}
	}
	var unknown0 int64
	if admin != "" {
		unknown0 = adminStat(admin, "response_unknown_id")
	}
	if err := pa.Thaw(); err != nil {
		t.Fatal(err)
	}
	// late-a works through its backlog, then answers new calls.
	var fromA bool
	for i := 0; i < 40 && !fromA; i++ {
		name := fmt.Sprintf("thawed-%d", i)
		r := call(t, c, sayHello(name))
		fromA = r.String() == pa.HelloFrom(name)
		if !fromA && r.String() != pb.HelloFrom(name) {
			t.Errorf("call %d after the thaw: %q", i, r.String())
		}
	}
	if !fromA {
		t.Error("late-a answered none of 40 calls after the thaw")
	}
	if admin != "" {
		if !harness.WaitFor(t, 10*time.Second, func() bool { return adminStat(admin, "response_unknown_id") > unknown0 }) {
			t.Logf("response_unknown_id = %d: the late answers were not counted as answers nobody waits for", adminStat(admin, "response_unknown_id"))
		}
	}
	concurrentHellos(t, c, 20, "after", func(n string) []string { return []string{pa.HelloFrom(n), pb.HelloFrom(n)} })
	if s := c.Stray(); len(s) > 0 {
		t.Errorf("the client got answers for calls already answered (ids %v): late answers after a per-try timeout were forwarded", s)
	}
}

func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// testDubboRetryOverflow: 12 concurrent calls to two hosts that never
// answer, per-try timeout 400ms, at most 2 retries in flight in the
// cluster: most retries are refused, every call ends with an error reply.
func testDubboRetryOverflow(t *testing.T, px harness.Proxy) {
	addr, admin := trafficStart(t, px, dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c",
		Extra: merge(retryPolicy(1, "0.4s", "per-try-timeout"), map[string]any{"timeout": "3s"})}}, nil,
		harness.Cluster{Name: "c", Endpoints: []string{startBlackhole(t), startBlackhole(t)}, Extra: maxRetries(2)}))
	c := dialRaw(t, addr)
	const n = 12
	start := time.Now()
	slowest, errs := parallelCalls(n, n, func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		r, err := c.Call(ctx, sayHello(fmt.Sprintf("o-%d", i)))
		if err == nil && r.OK() {
			return nil
		}
		if err == nil {
			err = errors.New(r.String())
		}
		return err
	})
	t.Logf("%d calls to hosts that never answer ended in %v (slowest call %v)", n, time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond))
	if len(errs) != n {
		t.Errorf("%d of %d calls to hosts that never answer failed, want all", len(errs), n)
	}
	for _, err := range errs {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, rawdubbo.ErrClosed) {
			t.Errorf("a call got no error reply: %v", err)
		}
	}
	checkRetryOverflow(t, admin, n)
}

// TestTrafficDubboRouteTimeout: a route's timeout (1 s) overrides the
// listener's request_timeout (0.3 s): a provider that sleeps 3 s, a host
// that never answers, and retries at such hosts (10 of 0.3 s each, which
// the route's timeout cuts short) give a native timeout (Dubbo status 31;
// an error in the dubbo-go consumer) after about 1 s, and a route with a
// 5 s timeout lets a 0.6 s call succeed.
func TestTrafficDubboRouteTimeout(t *testing.T) {
	t.Parallel()
	p := harness.StartDubboProvider(t, "slow")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			addr, admin := trafficStart(t, px, dubboTraffic(t, []harness.Route{
				{Name: "long", Match: []harness.Match{ifaceMatch, methodMatch("sleep"), harness.Exact("x-long", "yes")}, Cluster: "p",
					Extra: map[string]any{"timeout": "5s"}},
				{Name: "sleep", Match: []harness.Match{ifaceMatch, methodMatch("sleep")}, Cluster: "p", Extra: map[string]any{"timeout": "1s"}},
				{Name: "hole", Match: []harness.Match{ifaceMatch, harness.Exact("x-route", "hole")}, Cluster: "hole", Extra: map[string]any{"timeout": "1s"}},
				{Name: "holes", Match: []harness.Match{ifaceMatch, harness.Exact("x-route", "holes")}, Cluster: "holes",
					Extra: merge(map[string]any{"timeout": "1s"}, retryPolicy(10, "0.3s", "per-try-timeout"))},
				{Name: "hello", Match: []harness.Match{ifaceMatch}, Cluster: "p"},
			}, map[string]any{"request_timeout": "0.3s"},
				harness.Cluster{Name: "p", Endpoints: []string{p.Addr()}}, harness.Cluster{Name: "hole", Endpoints: []string{startBlackhole(t)}},
				harness.Cluster{Name: "holes", Endpoints: []string{startBlackhole(t), startBlackhole(t)}, Extra: maxRetries(100)}))
			c := dialRaw(t, addr)
			hole := sayHello("hole")
			hole.Attachments = map[string]string{"x-route": "hole"}
			holes := sayHello("holes")
			holes.Attachments = map[string]string{"x-route": "holes"}
			long := sleepCall(600)
			long.Attachments = map[string]string{"x-long": "yes"}
			type outcome struct {
				r   rawdubbo.Reply
				d   time.Duration
				err error
			}
			run := func(req rawdubbo.Call) <-chan outcome {
				ch := make(chan outcome, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
					defer cancel()
					start := time.Now()
					r, err := c.Call(ctx, req)
					ch <- outcome{r, time.Since(start), err}
				}()
				return ch
			}
			slow, black, blacks, longer := run(sleepCall(3000)), run(hole), run(holes), run(long)
			for _, x := range []struct {
				what string
				ch   <-chan outcome
			}{{"sleep(3000)", slow}, {"call to a host that never answers", black},
				{"call retried (10 retries, per-try timeout 0.3 s) at hosts that never answer", blacks}} {
				o := <-x.ch
				if o.err != nil || o.r.Status != 31 {
					t.Errorf("%s: %q, %v; want Dubbo status 31 (SERVER_TIMEOUT)", x.what, o.r.String(), o.err)
				}
				if o.d < 900*time.Millisecond || o.d > 2500*time.Millisecond {
					t.Errorf("%s: timed out after %v, want the route's 1 s (0.9-2.5 s)", x.what, o.d.Round(time.Millisecond))
				}
			}
			if o := <-longer; o.err != nil || o.r.String() != "slept 600ms at "+ident(p) {
				t.Errorf("sleep(600) on the route with timeout 5s (listener 0.3s): %q, %v; want the provider's answer", o.r.String(), o.err)
			}
			if r := call(t, c, sayHello("after")); r.String() != p.HelloFrom("after") {
				t.Errorf("call after the timeouts on the same connection: %q", r.String())
			}

			// The dubbo-go consumer, whose own timeout is 5 s.
			lines := consumerLines(t, addr, true, "-method", "sleep", "-name", "3000", "-timeout", "5s", "-timing")
			ms, rest, _ := strings.Cut(lines[0], "ms ")
			d, err := strconv.Atoi(ms)
			switch {
			case len(lines) != 1 || err != nil || !strings.HasPrefix(rest, "ERROR "):
				t.Errorf("dubbo-go consumer sleep(3000) on the 1 s route: %q, want one timed ERROR line", lines)
			case d < 900 || d > 2500:
				t.Errorf("dubbo-go consumer sleep(3000): error after %d ms, want the route's 1 s (900-2500 ms): %s", d, rest)
			default:
				t.Logf("dubbo-go consumer: %s", lines[0])
			}
			if admin != "" {
				if n := adminStat(admin, "request_timeout"); n < 4 {
					t.Errorf("request_timeout = %d, want at least 4", n)
				}
			}
		})
	}
}

// TestTrafficDubboTimeoutLateAnswer: a call times out (route timeout 1 s,
// the provider answers after 1.5 s) and the client goes on calling on the
// same connection: the late answer must not reach it, with or without
// multiplexing (without, the timed-out upstream connection must not be
// reused). A sleep(1200) sent after the timeout is answered after the late
// answer has reached the proxy.
func TestTrafficDubboTimeoutLateAnswer(t *testing.T) {
	t.Parallel()
	p := harness.StartDubboProvider(t, "sloth")
	for _, px := range harness.Proxies() {
		for _, mux := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/multiplexing=%v", px.Name(), mux), func(t *testing.T) {
				t.Parallel()
				b := dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "p",
					Extra: map[string]any{"timeout": "1s"}}}, nil, harness.Cluster{Name: "p", Endpoints: []string{p.Addr()}})
				b.Listeners[0].Proxy.Multiplexing = mux
				addr, _ := trafficStart(t, px, b)
				c := dialRaw(t, addr)
				start := time.Now()
				r := call(t, c, sleepCall(1500))
				if d := time.Since(start); r.Status != 31 || d < 900*time.Millisecond || d > 2500*time.Millisecond {
					t.Fatalf("sleep(1500), route timeout 1 s: %q after %v; want status 31 after about 1 s", r.String(), d.Round(time.Millisecond))
				}
				if r := call(t, c, sayHello("quick-1")); r.String() != p.HelloFrom("quick-1") {
					t.Errorf("the call after the timeout: %q, want its own answer", r.String())
				}
				if r := call(t, c, sleepCall(1200)); r.Status != 31 {
					t.Errorf("sleep(1200), route timeout 1 s: %q, want status 31", r.String())
				}
				concurrentHellos(t, c, 10, "after", func(n string) []string { return []string{p.HelloFrom(n)} })
				if s := c.Stray(); len(s) > 0 {
					t.Errorf("answers for calls already answered reached the client (ids %v): a late answer after a timeout was forwarded", s)
				}
			})
		}
	}
}

// checkRetriedWithoutOverflow checks, on the standalone proxy's admin
// (admin != ""), that requests were retried and no retry was refused.
func checkRetriedWithoutOverflow(t *testing.T, admin string) {
	t.Helper()
	if admin == "" {
		return
	}
	retries, success, overflow := adminStat(admin, "upstream_rq_retry"), adminStat(admin, "upstream_rq_retry_success"), adminStat(admin, "upstream_rq_retry_overflow")
	t.Logf("upstream_rq_retry = %d, upstream_rq_retry_success = %d, upstream_rq_retry_overflow = %d", retries, success, overflow)
	if retries < 1 || overflow != 0 {
		t.Errorf("upstream_rq_retry = %d, upstream_rq_retry_overflow = %d; want retries, none refused", retries, overflow)
	}
}

// checkRetryOverflow checks that max_retries 2 refused retries of n calls
// that all needed one at once.
func checkRetryOverflow(t *testing.T, admin string, n int) {
	t.Helper()
	if admin == "" {
		return
	}
	overflow := adminStat(admin, "upstream_rq_retry_overflow")
	t.Logf("upstream_rq_retry = %d, upstream_rq_retry_overflow = %d, upstream_rq_per_try_timeout = %d",
		adminStat(admin, "upstream_rq_retry"), overflow, adminStat(admin, "upstream_rq_per_try_timeout"))
	if overflow < 1 {
		t.Errorf("upstream_rq_retry_overflow = %d with %d calls needing a retry at once and max_retries 2, want > 0", overflow, n)
	}
}
