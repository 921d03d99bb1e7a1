package e2e

// Traffic management with Apache Thrift peers, through every proxy host:
// the scenarios of traffic_dubbo_test.go. Thrift carries no version or
// attachments: routing and hashing use THeader info headers (THeader
// clients) and the multiplexed service name (interface). Servers are
// in-process Apache servers (thriftBackend) where a test needs knobs
// (delays, failures, counts), thriftpeer processes where it kills or
// freezes them. Header mutation alone is covered by TestThrift's
// Multiplexed case; here it is checked on retried requests.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/metaproxy/metaproxy/test/harness"
	thriftpeer "github.com/metaproxy/metaproxy/test/peers/thrift"
	"github.com/metaproxy/metaproxy/test/peers/thrift/gen/hello"
)

var (
	framedBinary = thriftpeer.Config{Transport: "framed", Protocol: "binary"}
	headerBinary = thriftpeer.Config{Transport: "header", Protocol: "binary"}
)

// thriftServices are the multiplexed service names the backends accept (and
// plain method names too).
var thriftServices = []string{"Hello", "Greeter", "NoRetry", "Solo", "Long", "Hole"}

// thriftBackend is an in-process Apache Thrift Hello server on the THeader
// transport and protocol, which answers framed, buffered and THeader
// clients alike, each in its own kind. It tags its replies as thriftpeer's
// servers do and counts the sayHello calls it answers.
type thriftBackend struct {
	Addr, tag string
	delay     time.Duration // sayHello answers after this long
	slowOnly  string        // if set, only names with this prefix are delayed
	fail      bool          // sayHello and echoHeader return a plain error: Apache's processor answers a TApplicationException (INTERNAL_ERROR)

	sleeping, peak atomic.Int64 // delayed sayHello calls in progress, and their most at once

	mu        sync.Mutex
	hellos    map[string]int // sayHello calls by name
	answered  map[string]int // sayHello calls answered, by name
	echoFails int            // echoHeader calls failed

	srv  *thrift.TSimpleServer
	done chan error
}

func startThriftBackend(t *testing.T, tag string, opts ...func(*thriftBackend)) *thriftBackend {
	t.Helper()
	b := &thriftBackend{tag: tag, hellos: map[string]int{}, answered: map[string]int{}, done: make(chan error, 1)}
	for _, o := range opts {
		o(b)
	}
	conf := &thrift.TConfiguration{ConnectTimeout: 10 * time.Second, SocketTimeout: 10 * time.Second}
	sock, err := thrift.NewTServerSocket("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := sock.Listen(); err != nil {
		t.Fatal(err)
	}
	b.Addr = sock.Addr().String()
	proc := hello.NewHelloProcessor(thriftHandler{b})
	mp := thrift.NewTMultiplexedProcessor()
	for _, s := range thriftServices {
		mp.RegisterProcessor(s, proc)
	}
	mp.RegisterDefault(proc)
	b.srv = thrift.NewTSimpleServer4(mp, sock, thrift.NewTHeaderTransportFactoryConf(nil, conf), thrift.NewTHeaderProtocolFactoryConf(conf))
	b.srv.SetLogger(func(string) {})
	go func() { b.done <- b.srv.AcceptLoop() }()
	t.Cleanup(func() {
		b.srv.Stop()
		<-b.done
	})
	return b
}

func withDelay(d time.Duration) func(*thriftBackend) { return func(b *thriftBackend) { b.delay = d } }

// delayOnly delays only the sayHello calls whose name starts with prefix.
func delayOnly(prefix string) func(*thriftBackend) {
	return func(b *thriftBackend) { b.slowOnly = prefix }
}

func failing(b *thriftBackend) { b.fail = true }

// reply is the backend's answer to sayHello(name).
func (b *thriftBackend) reply(name string) string { return thriftpeer.Reply(name, b.tag, b.Addr) }

func (b *thriftBackend) ident() string { return b.tag + "@" + b.Addr }

// helloCount returns the sayHello calls the backend got whose name starts
// with prefix, and how many distinct names they had.
func (b *thriftBackend) helloCount(prefix string) (calls, names int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for n, c := range b.hellos {
		if strings.HasPrefix(n, prefix) {
			calls += c
			names++
		}
	}
	return calls, names
}

type thriftHandler struct{ b *thriftBackend }

func (h thriftHandler) SayHello(ctx context.Context, name string) (string, error) {
	b := h.b
	b.mu.Lock()
	b.hellos[name]++
	b.mu.Unlock()
	if b.fail {
		return "", fmt.Errorf("backend %s failed", b.tag)
	}
	if name == thriftpeer.ErrorName {
		return "", &hello.HelloError{Message: "no greeting from " + b.tag, Code: thriftpeer.ErrorCode}
	}
	if b.delay > 0 && strings.HasPrefix(name, b.slowOnly) {
		n := b.sleeping.Add(1)
		for p := b.peak.Load(); n > p && !b.peak.CompareAndSwap(p, n); p = b.peak.Load() {
		}
		select {
		case <-time.After(b.delay):
		case <-ctx.Done(): // the connection closed
		}
		b.sleeping.Add(-1)
	}
	b.mu.Lock()
	b.answered[name]++
	b.mu.Unlock()
	return b.reply(name), nil
}

// hasAnswered reports whether the backend has answered sayHello(name).
func (b *thriftBackend) hasAnswered(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.answered[name] > 0
}

func (thriftHandler) Ping(context.Context, string) error { return nil }

// EchoHeader answers "<tag>:<value of the info header key>" (or fails as
// sayHello does).
func (h thriftHandler) EchoHeader(ctx context.Context, key string) (string, error) {
	if h.b.fail {
		h.b.mu.Lock()
		h.b.echoFails++
		h.b.mu.Unlock()
		return "", fmt.Errorf("backend %s failed", h.b.tag)
	}
	v, _ := thrift.GetHeader(ctx, key)
	return h.b.tag + ":" + v, nil
}

func (thriftHandler) PingCount(context.Context, string) (int32, error) { return 0, nil }

func (thriftHandler) EchoBag(_ context.Context, bag *hello.Bag) (*hello.Bag, error) { return bag, nil }

// thriftTraffic is a bootstrap with one multiplexed Thrift listener.
func thriftTraffic(t *testing.T, routes []harness.Route, extra map[string]any, clusters ...harness.Cluster) harness.Bootstrap {
	return harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "traffic", Protocol: "thrift", Multiplexing: true, Routes: routes, Extra: extra,
	}}}, Clusters: clusters}
}

// backendCluster is a cluster of backends.
func backendCluster(name string, bs ...*thriftBackend) harness.Cluster {
	c := harness.Cluster{Name: name}
	for _, b := range bs {
		c.Endpoints = append(c.Endpoints, b.Addr)
	}
	return c
}

// dialThrift connects a client of kind cfg, multiplexed as service if not
// empty, to addr.
func dialThrift(t *testing.T, addr string, cfg thriftpeer.Config, service string) *thriftpeer.Client {
	t.Helper()
	cfg.Service = service
	cl, err := thriftpeer.Dial(addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// hdr returns a call context carrying THeader info headers kv.
func hdr(kv ...string) context.Context {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return thriftpeer.WithHeaders(context.Background(), m)
}

// appException returns err's TApplicationException, or nil.
func appException(err error) thrift.TApplicationException {
	var ae thrift.TApplicationException
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}

// TestTrafficThriftVersionRouting routes on a THeader "version" header: v1
// to one server, v2 to another, any other version has no route.
func TestTrafficThriftVersionRouting(t *testing.T) {
	t.Parallel()
	v1, v2 := startThriftBackend(t, "v1"), startThriftBackend(t, "v2")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			addr, _ := trafficStart(t, px, thriftTraffic(t, []harness.Route{
				{Name: "v1", Match: []harness.Match{harness.Exact("version", "v1")}, Cluster: "v1"},
				{Name: "v2", Match: []harness.Match{harness.Exact("version", "v2")}, Cluster: "v2"},
			}, nil, backendCluster("v1", v1), backendCluster("v2", v2)))
			cl := dialThrift(t, addr, headerBinary, "")
			for i := range 10 {
				b, v := v1, "v1"
				if i%2 == 1 {
					b, v = v2, "v2"
				}
				name := fmt.Sprintf("ver-%d", i)
				if got, err := cl.SayHello(hdr("version", v), name); err != nil || got != b.reply(name) {
					t.Errorf("sayHello with version %s: %q, %v; want %q", v, got, err, b.reply(name))
				}
			}
			_, err := cl.SayHello(hdr("version", "v3"), "v3")
			if ae := appException(err); ae == nil || ae.TypeId() != thrift.UNKNOWN_METHOD {
				t.Errorf("sayHello with version v3 (no route): %v, want a TApplicationException UNKNOWN_METHOD", err)
			}
			if got, err := cl.SayHello(hdr("version", "v2"), "after"); err != nil || got != v2.reply("after") {
				t.Errorf("call after the no-route error: %q, %v", got, err)
			}
		})
	}
}

// TestTrafficThriftWeightedSplit: weighted clusters 20/80; 5,000 calls split
// within ±3 points of 20 %.
func TestTrafficThriftWeightedSplit(t *testing.T) {
	t.Parallel()
	b20, b80 := startThriftBackend(t, "w20"), startThriftBackend(t, "w80")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			addr, _ := trafficStart(t, px, thriftTraffic(t, []harness.Route{{Name: "split",
				Weighted: []harness.WeightedCluster{{Name: "c20", Weight: 20}, {Name: "c80", Weight: 80}}}}, nil,
				backendCluster("c20", b20), backendCluster("c80", b80)))
			const calls, workers = 5000, 8
			clients := make([]*thriftpeer.Client, workers)
			for i := range clients {
				clients[i] = dialThrift(t, addr, framedBinary, "")
			}
			// Apache clients are serial: one per worker.
			var n20, n80 atomic.Int64
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []string
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < calls; i += workers {
						name := fmt.Sprintf("w-%d", i)
						got, err := clients[w].SayHello(context.Background(), name)
						switch {
						case err == nil && got == b20.reply(name):
							n20.Add(1)
						case err == nil && got == b80.reply(name):
							n80.Add(1)
						default:
							mu.Lock()
							if len(failures) < 10 {
								failures = append(failures, fmt.Sprintf("%s: %q, %v", name, got, err))
							}
							mu.Unlock()
							if err != nil {
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			for _, f := range failures {
				t.Error(f)
			}
			if n20.Load()+n80.Load() != calls {
				t.Fatalf("%d + %d answers of %d calls", n20.Load(), n80.Load(), calls)
			}
			share := float64(n20.Load()) / calls
			t.Logf("%d calls: %d (%.2f %%) to the weight-20 cluster, %d to the weight-80 one", calls, n20.Load(), 100*share, n80.Load())
			if share < 0.17 || share > 0.23 {
				t.Errorf("the weight-20 cluster got %.2f %% of %d calls, want 20 ± 3 %%", 100*share, calls)
			}
		})
	}
}

// TestTrafficThriftAttributeRouting: exact, prefix and regex matchers on the
// multiplexed service (interface), the method and a THeader header.
func TestTrafficThriftAttributeRouting(t *testing.T) {
	t.Parallel()
	a, b, c, d := startThriftBackend(t, "A"), startThriftBackend(t, "B"), startThriftBackend(t, "C"), startThriftBackend(t, "D")
	routes := []harness.Route{
		{Name: "greeter", Cluster: "a", Match: []harness.Match{harness.Exact("interface", "Greeter"), methodMatch("sayHello")}},
		{Name: "hello-svc", Cluster: "b", Match: []harness.Match{{Name: "interface", Prefix: "Hel"}, {Name: "method", Prefix: "say"}}},
		{Name: "gold", Cluster: "c", Match: []harness.Match{{Name: "x-tenant", Regex: `^gold-[0-9]+$`}, {Name: "method", Regex: `^(sayHello|echoHeader)$`}}},
		{Name: "silver", Cluster: "a", Match: []harness.Match{{Name: "x-tenant", Prefix: "silver-"}}},
		{Name: "rest", Cluster: "d", Match: []harness.Match{methodMatch("sayHello")}},
	}
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			addr, _ := trafficStart(t, px, thriftTraffic(t, routes, nil,
				backendCluster("a", a), backendCluster("b", b), backendCluster("c", c), backendCluster("d", d)))
			greeter := dialThrift(t, addr, framedBinary, "Greeter")
			helloSvc := dialThrift(t, addr, framedBinary, "Hello")
			plain := dialThrift(t, addr, framedBinary, "")
			header := dialThrift(t, addr, headerBinary, "")
			for _, tc := range []struct {
				what string
				cl   *thriftpeer.Client
				ctx  context.Context
				want *thriftBackend
			}{
				{"interface exact", greeter, context.Background(), a},
				{"interface and method prefix", helloSvc, context.Background(), b},
				{"header regex", header, hdr("x-tenant", "gold-7"), c},
				{"header regex not matching", header, hdr("x-tenant", "gold-x"), d},
				{"header prefix", header, hdr("x-tenant", "silver-1"), a},
				{"no header, no service", plain, context.Background(), d},
			} {
				got, err := tc.cl.SayHello(tc.ctx, "attr")
				if err != nil || got != tc.want.reply("attr") {
					t.Errorf("%s: %q, %v; want %s's answer", tc.what, got, err, tc.want.tag)
				}
			}
			// The method regex and the header reach the server.
			if got, err := header.EchoHeader(hdr("x-tenant", "gold-9"), "x-tenant"); err != nil || got != "C:gold-9" {
				t.Errorf("echoHeader with x-tenant=gold-9: %q, %v; want C:gold-9", got, err)
			}
			// Service Hello, method echoBag: "say" is no prefix of it, and
			// no other route matches.
			_, err := helloSvc.EchoBag(context.Background(), &hello.Bag{Text: "x"})
			if ae := appException(err); ae == nil || ae.TypeId() != thrift.UNKNOWN_METHOD {
				t.Errorf("Hello:echoBag (no route): %v, want a TApplicationException UNKNOWN_METHOD", err)
			}
		})
	}
}

// TestTrafficThriftConsistentHash: consistent hashing on a THeader header
// with RING_HASH and MAGLEV over three thriftpeer server processes (see
// testHash).
func TestTrafficThriftConsistentHash(t *testing.T) {
	t.Parallel()
	for _, lb := range hashLBs {
		for _, px := range harness.Proxies() {
			t.Run(lb.policy+"/"+px.Name(), func(t *testing.T) {
				t.Parallel()
				testThriftHash(t, px, lb)
			})
		}
	}
}

func testThriftHash(t *testing.T, px harness.Proxy, lb hashLB) {
	var hosts []hashHost
	for i := range 3 {
		// A THeader server answers THeader and framed clients; ByMethod
		// is the multiplexed service of the method-hashing route.
		s := harness.StartThriftServer(t, fmt.Sprintf("h%d", i+1), "-transport", "header", "-protocol", "header", "-service", "ByMethod")
		hosts = append(hosts, hashHost{ident: s.Tag + "@" + s.Addr, addr: s.Addr, kill: s.Kill})
	}
	run := hashRun{
		start: func(addrs []string) string {
			addr, _ := trafficStart(t, px, thriftTraffic(t, []harness.Route{
				{Name: "by-method", Match: []harness.Match{harness.Exact("interface", "ByMethod")}, Cluster: "c",
					Extra: merge(map[string]any{"hash_policy": []string{"method"}}, retryPolicy(2, "", "connect-failure,reset"))},
				{Name: "by-user", Cluster: "c",
					Extra: merge(map[string]any{"hash_policy": []string{"x-user"}}, retryPolicy(2, "", "connect-failure,reset"))},
			}, nil, harness.Cluster{Name: "c", Endpoints: addrs, LBPolicy: lb.policy, Extra: lb.extra}))
			return addr
		},
		owners: func(addr string) map[string]string {
			clients := []*thriftpeer.Client{dialThrift(t, addr, headerBinary, ""), dialThrift(t, addr, headerBinary, "")}
			out := map[string]string{}
			for k := range hashKeys {
				key := fmt.Sprintf("user-%d", k)
				for i := range hashCallsPerKey {
					got, err := clients[(k+i)%2].SayHello(hdr("x-user", key), key)
					switch who := servedBy(got); {
					case err != nil || who == "":
						t.Fatalf("key %s: %q, %v", key, got, err)
					case out[key] == "":
						out[key] = who
					case out[key] != who:
						t.Errorf("key %s: call %d went to %s, earlier calls to %s", key, i, who, out[key])
					}
				}
			}
			return out
		},
		byMethod: func(addr string) map[string]int {
			m := map[string]int{}
			for i := range 8 {
				got, err := dialThrift(t, addr, framedBinary, "ByMethod").SayHello(context.Background(), fmt.Sprintf("m-%d", i))
				if err != nil {
					t.Fatalf("ByMethod:sayHello: %v", err)
				}
				m[servedBy(got)]++
			}
			return m
		},
		noKey: func(addr string) map[string]int {
			m := map[string]int{}
			cl := dialThrift(t, addr, headerBinary, "")
			for range 30 {
				got, err := cl.SayHello(context.Background(), "nokey")
				if err != nil {
					t.Fatalf("sayHello without x-user: %v", err)
				}
				m[servedBy(got)]++
			}
			return m
		},
	}
	testHash(t, lb, hosts, run)
}

// relay forwards each connection it accepts to target, until it is frozen
// (it then reads and forwards nothing more on any connection, and accepts
// new ones without reading them: a server that accepts and never answers)
// or killed (every connection reset, the port closed).
type relay struct {
	addr, target string
	ln           net.Listener
	frozen       atomic.Bool
	killed       chan struct{}
	once         sync.Once
	mu           sync.Mutex
	conns        []net.Conn
	wg           sync.WaitGroup
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	r := &relay{addr: harness.Addr(harness.FreePort(t)), target: target, killed: make(chan struct{})}
	var err error
	if r.ln, err = net.Listen("tcp", r.addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.kill)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			if !r.track(c) || r.frozen.Load() {
				continue // held open, never read
			}
			up, err := net.DialTimeout("tcp", r.target, 5*time.Second)
			if err != nil || !r.track(up) {
				c.Close()
				continue
			}
			r.wg.Add(2)
			go r.pump(c, up)
			go r.pump(up, c)
		}
	}()
	return r
}

// track records c for kill; false if the relay is already killed.
func (r *relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.killed:
		c.Close()
		return false
	default:
	}
	r.conns = append(r.conns, c)
	return true
}

func (r *relay) pump(src, dst net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		if r.frozen.Load() {
			<-r.killed
			return
		}
		n, err := src.Read(buf)
		if r.frozen.Load() {
			<-r.killed // what was read is dropped
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			src.Close()
			dst.Close()
			return
		}
	}
}

func (r *relay) freeze() { r.frozen.Store(true) }

func (r *relay) kill() {
	r.once.Do(func() {
		r.mu.Lock()
		close(r.killed)
		conns := r.conns
		r.mu.Unlock()
		r.ln.Close()
		for _, c := range conns {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
		}
		r.wg.Wait()
	})
}

// TestTrafficThriftMirror: 50 % of the calls are mirrored to a server behind
// a relay. All 400 calls are answered by the primary, about half (35-65 %)
// reach the mirror, none twice; then with the relay frozen, and then
// killed, every call still succeeds from the primary without waiting for
// its copy, and the copies' failures are counted (standalone).
func TestTrafficThriftMirror(t *testing.T) {
	t.Parallel()
	primary := startThriftBackend(t, "primary")
	for _, px := range harness.Proxies() {
		for _, mux := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/multiplexing=%v", px.Name(), mux), func(t *testing.T) {
				t.Parallel()
				testThriftMirror(t, px, mux, primary)
			})
		}
	}
}

func testThriftMirror(t *testing.T, px harness.Proxy, mux bool, primary *thriftBackend) {
	mirror := startThriftBackend(t, "mirror")
	rl := startRelay(t, mirror.Addr)
	b := thriftTraffic(t, []harness.Route{{Name: "hello", Cluster: "primary",
		Extra: map[string]any{"request_mirror_policies": mirrorPolicy("mirror", 50), "timeout": "3s"}}}, nil,
		backendCluster("primary", primary), harness.Cluster{Name: "mirror", Endpoints: []string{rl.addr}})
	b.Listeners[0].Proxy.Multiplexing = mux
	addr, admin := trafficStart(t, px, b)
	stat := func(name string) int64 { return adminStat(admin, name) }
	const workers = 4
	clients := make([]*thriftpeer.Client, workers)
	for i := range clients {
		clients[i] = dialThrift(t, addr, framedBinary, "")
	}
	// calls makes n sayHello calls named prefix-i-pad from the
	// clients, one call per client at a time, and checks that
	// each is the primary's answer, in time.
	calls := func(phase, prefix string, n int, pad string) {
		t.Helper()
		var mu sync.Mutex
		var slowest time.Duration
		var failures []string
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					name := fmt.Sprintf("%s%d%s", prefix, i, pad)
					start := time.Now()
					got, err := clients[w].SayHello(context.Background(), name)
					d := time.Since(start)
					mu.Lock()
					slowest = max(slowest, d)
					if err != nil || got != primary.reply(name) {
						if len(failures) < 10 {
							failures = append(failures, fmt.Sprintf("%s: %.80q, %v", phase, got, err))
						}
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, f := range failures {
			t.Error(f)
		}
		t.Logf("%s: %d calls, slowest %v", phase, n, slowest.Round(time.Millisecond))
		if slowest > mirrorLatencyBound {
			t.Errorf("%s: a call took %v (bound %v): the primary waited for its mirror copy", phase, slowest.Round(time.Millisecond), mirrorLatencyBound)
		}
	}

	const n = 400
	prefix := fmt.Sprintf("mirror-%s-%v-", px.Name(), mux)
	calls("healthy", prefix, n, "")
	if got, names := primary.helloCount(prefix); got != n || names != n {
		t.Errorf("the primary answered %d calls (%d names), want each of the %d once", got, names, n)
	}
	m := settle(t, 20*time.Second, 500*time.Millisecond, func() int { c, _ := mirror.helloCount(prefix); return c })
	if admin != "" {
		harness.WaitFor(t, 10*time.Second, func() bool { return stat("request_mirror_active") == 0 })
		m, _ = mirror.helloCount(prefix)
	}
	_, names := mirror.helloCount(prefix)
	t.Logf("%d of %d calls reached the mirror (%.1f %%)", m, n, 100*float64(m)/n)
	if m < n*35/100 || m > n*65/100 {
		t.Errorf("%d of %d calls reached the mirror, want 35-65 %% at runtime_fraction 50 %%", m, n)
	}
	if names != m {
		t.Errorf("the mirror got %d copies of %d distinct calls: some twice", m, names)
	}
	if admin != "" {
		if s, f := stat("request_mirror"), stat("request_mirror_failed"); s != int64(m) || f != 0 {
			t.Errorf("request_mirror = %d, request_mirror_failed = %d; want %d copies sent (what the mirror got), none failed", s, f, m)
		}
	}

	rl.freeze()
	calls("frozen", "frozen-", 200, "-"+strings.Repeat("x", 8<<10))
	var failedFrozen int64
	if admin != "" {
		if !harness.WaitFor(t, 20*time.Second, func() bool { return stat("request_mirror_failed") > 0 }) {
			t.Errorf("request_mirror_failed = %d 20 s after copies to a frozen mirror (timeout 3 s), want > 0", stat("request_mirror_failed"))
		}
		harness.WaitFor(t, 20*time.Second, func() bool { return stat("request_mirror_active") == 0 })
		failedFrozen = stat("request_mirror_failed")
		t.Logf("frozen mirror: request_mirror_failed = %d, request_timeout = %d", failedFrozen, stat("request_timeout"))
	}

	rl.kill()
	calls("killed", "killed-", 100, "")
	if admin != "" {
		if !harness.WaitFor(t, 20*time.Second, func() bool { return stat("request_mirror_failed") > failedFrozen }) {
			t.Errorf("request_mirror_failed = %d after copies to a dead mirror, want more than the %d of the frozen phase",
				stat("request_mirror_failed"), failedFrozen)
		}
		t.Logf("dead mirror: request_mirror = %d, request_mirror_failed = %d, request_mirror_overflow = %d",
			stat("request_mirror"), stat("request_mirror_failed"), stat("request_mirror_overflow"))
	}
}

// TestTrafficThriftRetry covers retry_policy through every host.
func TestTrafficThriftRetry(t *testing.T) {
	t.Parallel()
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			for _, mux := range []bool{true, false} {
				t.Run(fmt.Sprintf("ServerKilledUnderLoad/multiplexing=%v", mux), func(t *testing.T) { testThriftRetryKill(t, px, mux) })
			}
			t.Run("ServerFailure", func(t *testing.T) { testThriftRetryServerFailure(t, px) })
			t.Run("PerTryTimeout", func(t *testing.T) { testThriftPerTryTimeout(t, px) })
			t.Run("PerTryTimeoutLateAnswers", func(t *testing.T) { testThriftLateAnswers(t, px) })
			t.Run("MaxRetriesOverflow", func(t *testing.T) { testThriftRetryOverflow(t, px) })
		})
	}
}

// testThriftRetryKill: 16 clients on two thriftpeer server processes with
// retry_on connect-failure,reset; one server is killed with SIGKILL mid-run:
// no client sees an error.
func testThriftRetryKill(t *testing.T, px harness.Proxy, mux bool) {
	s1 := harness.StartThriftServer(t, "k1", "-transport", "framed", "-protocol", "binary")
	s2 := harness.StartThriftServer(t, "k2", "-transport", "framed", "-protocol", "binary")
	b := thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c",
		Extra: retryPolicy(3, "", "connect-failure,reset")}}, nil,
		harness.Cluster{Name: "c", Endpoints: []string{s1.Addr, s2.Addr}, Extra: maxRetries(64)})
	b.Listeners[0].Proxy.Multiplexing = mux
	addr, admin := trafficStart(t, px, b)
	const n = 16
	clients := make([]*thriftpeer.Client, n)
	for i := range clients {
		clients[i] = dialThrift(t, addr, framedBinary, "")
	}
	var served [2]atomic.Int64
	cs := startCallers(t, n, func(i, seq int) error {
		name := fmt.Sprintf("c%d-%d", i, seq)
		got, err := clients[i].SayHello(context.Background(), name)
		switch {
		case err != nil:
			return err
		case got == thriftpeer.Reply(name, s1.Tag, s1.Addr):
			served[0].Add(1)
		case got == thriftpeer.Reply(name, s2.Tag, s2.Addr):
			served[1].Add(1)
		default:
			return fmt.Errorf("reply %q", got)
		}
		return nil
	})
	if !harness.WaitFor(t, 20*time.Second, func() bool { return served[0].Load() >= 100 && served[1].Load() >= 100 }) {
		t.Fatalf("before the kill: %d calls answered by k1, %d by k2; want both serving", served[0].Load(), served[1].Load())
	}
	atKill := cs.oks()
	s2.Kill()
	killed := time.Now()
	if !harness.WaitFor(t, 20*time.Second, func() bool { return cs.each(atKill, 50) }) {
		t.Errorf("not every client made 50 calls within 20 s of the kill: %v calls since", sub(cs.oks(), atKill))
	}
	ok, fails, errs := cs.stop()
	t.Logf("%d calls ok, %d failed; k2 killed after %d of its answers; every client made 50 calls %v after the kill",
		ok, fails, served[1].Load(), time.Since(killed).Round(time.Millisecond))
	if fails != 0 {
		t.Errorf("%d calls failed around the kill of one of two servers (retry_on connect-failure,reset):\n%s", fails, strings.Join(errs, "\n"))
	}
	checkRetriedWithoutOverflow(t, admin)
}

// testThriftRetryServerFailure: a cluster of a server whose sayHello fails
// (Apache's processor answers a TApplicationException) and a good one; with
// retry_on server-failure every call succeeds from the good server, without
// it some fail. A declared exception (HelloError) is the application's
// answer: not retried.
func testThriftRetryServerFailure(t *testing.T, px harness.Proxy) {
	bad, good := startThriftBackend(t, "bad", failing), startThriftBackend(t, "good")
	addr, admin := trafficStart(t, px, thriftTraffic(t, []harness.Route{
		{Name: "no-retry", Match: []harness.Match{harness.Exact("interface", "NoRetry")}, Cluster: "c"},
		{Name: "solo", Match: []harness.Match{harness.Exact("interface", "Solo")}, Cluster: "good", Extra: retryPolicy(2, "", "server-failure")},
		{Name: "mutated", Match: []harness.Match{methodMatch("echoHeader")}, Cluster: "c",
			Extra: retryPolicy(2, "", "server-failure"), RequestMutation: []harness.KV{{Key: thriftMutation, Value: "added"}}},
		{Name: "retry", Cluster: "c", Extra: retryPolicy(2, "", "server-failure")},
	}, nil, backendCluster("c", bad, good), backendCluster("good", good)))
	cl := dialThrift(t, addr, framedBinary, "")
	for i := range 20 {
		name := fmt.Sprintf("sf-%d", i)
		if got, err := cl.SayHello(context.Background(), name); err != nil || got != good.reply(name) {
			t.Errorf("call %d with retry_on server-failure: %q, %v; want the good server's answer", i, got, err)
		}
	}
	if n, _ := bad.helloCount("sf-"); n == 0 {
		t.Error("the failing server got no call: nothing was retried")
	}
	// A retried request carries the route's header mutation and the
	// client's own headers (THeader).
	hcl := dialThrift(t, addr, headerBinary, "")
	for i := range 10 {
		for key, want := range map[string]string{thriftMutation: "good:added", "x-keep": "good:kept"} {
			got, err := hcl.EchoHeader(hdr("x-keep", "kept", thriftMutation, "by-client"), key)
			if err != nil || got != want {
				t.Errorf("echoHeader(%s) call %d through the retrying, mutating route: %q, %v; want %q", key, i, got, err, want)
			}
		}
	}
	bad.mu.Lock()
	echoFails := bad.echoFails
	bad.mu.Unlock()
	if echoFails == 0 {
		t.Error("no echoHeader call was retried")
	}
	internal := 0
	noRetry := dialThrift(t, addr, framedBinary, "NoRetry")
	for i := range 20 {
		_, err := noRetry.SayHello(context.Background(), fmt.Sprintf("nr-%d", i))
		if ae := appException(err); ae != nil && ae.TypeId() == thrift.INTERNAL_ERROR && strings.Contains(ae.Error(), "backend bad failed") {
			internal++
		}
	}
	if internal == 0 {
		t.Error("no call without a retry policy got the failing server's TApplicationException: the control is broken")
	}
	if admin != "" {
		t.Logf("upstream_rq_retry = %d, upstream_rq_retry_success = %d", adminStat(admin, "upstream_rq_retry"), adminStat(admin, "upstream_rq_retry_success"))
		if s := adminStat(admin, "upstream_rq_retry_success"); s < 1 {
			t.Errorf("upstream_rq_retry_success = %d, want > 0", s)
		}
	}
	var before int64
	if admin != "" {
		before = adminStat(admin, "upstream_rq_retry")
	}
	solo := dialThrift(t, addr, framedBinary, "Solo")
	for range 4 {
		_, err := solo.SayHello(context.Background(), thriftpeer.ErrorName)
		var he *hello.HelloError
		if !errors.As(err, &he) || he.Code != thriftpeer.ErrorCode {
			t.Errorf("sayHello(%q): %v, want the server's HelloError", thriftpeer.ErrorName, err)
		}
	}
	if admin != "" {
		if d := adminStat(admin, "upstream_rq_retry") - before; d != 0 {
			t.Errorf("upstream_rq_retry grew by %d over 4 calls answered with a declared exception, want 0", d)
		}
	}
}

// testThriftPerTryTimeout: one host never answers; per_try_timeout 300ms
// with retry_on per-try-timeout sends the call to the other host.
func testThriftPerTryTimeout(t *testing.T, px harness.Proxy) {
	good := startThriftBackend(t, "good")
	addr, admin := trafficStart(t, px, thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c",
		Extra: merge(retryPolicy(2, "0.3s", "per-try-timeout"), map[string]any{"timeout": "5s"})}}, nil,
		harness.Cluster{Name: "c", Endpoints: []string{startBlackhole(t), good.Addr}}))
	cl := dialThrift(t, addr, framedBinary, "")
	for i := range 6 {
		name := fmt.Sprintf("pt-%d", i)
		start := time.Now()
		got, err := cl.SayHello(context.Background(), name)
		if d := time.Since(start); err != nil || got != good.reply(name) || d > 2500*time.Millisecond {
			t.Errorf("call %d: %q, %v after %v; want the good server's answer within 2.5 s", i, got, err, d.Round(time.Millisecond))
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

// testThriftLateAnswers: per_try_timeout 300ms over two thriftpeer
// servers, one frozen (SIGSTOP): its calls are retried at the other. Once
// thawed it answers them late; the proxy must drop those answers: an
// Apache client, which waits for one answer at a time, would take a late
// one for the answer to its next call.
func testThriftLateAnswers(t *testing.T, px harness.Proxy) {
	sa := harness.StartThriftServer(t, "late-a", "-transport", "framed", "-protocol", "binary")
	sb := harness.StartThriftServer(t, "late-b", "-transport", "framed", "-protocol", "binary")
	addr, admin := trafficStart(t, px, thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c",
		Extra: merge(retryPolicy(1, "0.3s", "per-try-timeout"), map[string]any{"timeout": "5s"})}}, nil,
		harness.Cluster{Name: "c", Endpoints: []string{sa.Addr, sb.Addr}}))
	replyA := func(n string) string { return thriftpeer.Reply(n, sa.Tag, sa.Addr) }
	replyB := func(n string) string { return thriftpeer.Reply(n, sb.Tag, sb.Addr) }
	cl := dialThrift(t, addr, framedBinary, "")
	ctx := thriftCtx(t)
	for i := range 4 { // both upstream connections open
		name := fmt.Sprintf("warm-%d", i)
		if got, err := cl.SayHello(ctx, name); err != nil || (got != replyA(name) && got != replyB(name)) {
			t.Fatalf("warm-up call: %q, %v", got, err)
		}
	}
	if err := sa.Freeze(); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		name := fmt.Sprintf("frozen-%d", i)
		if got, err := cl.SayHello(ctx, name); err != nil || got != replyB(name) {
			t.Errorf("call %d with late-a frozen: %q, %v; want late-b's answer", i, got, err)
		}
	}
	var unknown0 int64
	if admin != "" {
		unknown0 = adminStat(admin, "response_unknown_id")
	}
	if err := sa.Thaw(); err != nil {
		t.Fatal(err)
	}
	fromA := false
	for i := 0; i < 40 && !fromA; i++ {
		name := fmt.Sprintf("thawed-%d", i)
		got, err := cl.SayHello(ctx, name)
		fromA = err == nil && got == replyA(name)
		if !fromA && (err != nil || got != replyB(name)) {
			t.Errorf("call %d after the thaw: %q, %v; want its own answer", i, got, err)
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
	for i := range 20 {
		name := fmt.Sprintf("after-%d", i)
		if got, err := cl.SayHello(ctx, name); err != nil || (got != replyA(name) && got != replyB(name)) {
			t.Errorf("call %d after late-a's late answers: %q, %v; want its own answer", i, got, err)
		}
	}
}

// testThriftRetryOverflow: 12 concurrent calls to two hosts that never
// answer, per-try timeout 400ms, at most 2 retries in flight: most retries
// are refused, every call ends with a TApplicationException.
func testThriftRetryOverflow(t *testing.T, px harness.Proxy) {
	addr, admin := trafficStart(t, px, thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c",
		Extra: merge(retryPolicy(1, "0.4s", "per-try-timeout"), map[string]any{"timeout": "3s"})}}, nil,
		harness.Cluster{Name: "c", Endpoints: []string{startBlackhole(t), startBlackhole(t)}, Extra: maxRetries(2)}))
	const n = 12
	clients := make([]*thriftpeer.Client, n)
	for i := range clients {
		clients[i] = dialThrift(t, addr, framedBinary, "")
	}
	start := time.Now()
	_, errs := parallelCalls(n, n, func(i int) error {
		_, err := clients[i].SayHello(context.Background(), fmt.Sprintf("o-%d", i))
		if err == nil {
			return nil
		}
		if appException(err) == nil {
			return fmt.Errorf("not a TApplicationException: %w", err)
		}
		return err
	})
	t.Logf("%d calls to hosts that never answer ended in %v", n, time.Since(start).Round(time.Millisecond))
	if len(errs) != n {
		t.Errorf("%d of %d calls to hosts that never answer failed, want all", len(errs), n)
	}
	for _, err := range errs {
		if appException(err) == nil {
			t.Errorf("a call got no TApplicationException: %v", err)
		}
	}
	checkRetryOverflow(t, admin, n)
}

// TestTrafficThriftRouteTimeout: a route's timeout (1 s) overrides the
// listener's request_timeout (0.3 s): a server that takes 3 s, a host that
// never answers, and retries at such hosts (10 of 0.3 s each, which the
// route's timeout cuts short) give a TApplicationException after about
// 1 s, and a route with a 5 s timeout lets a 0.6 s call succeed.
func TestTrafficThriftRouteTimeout(t *testing.T) {
	t.Parallel()
	slow := startThriftBackend(t, "slow", withDelay(3*time.Second))
	slowish := startThriftBackend(t, "slowish", withDelay(600*time.Millisecond))
	fast := startThriftBackend(t, "fast")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			addr, admin := trafficStart(t, px, thriftTraffic(t, []harness.Route{
				{Name: "long", Match: []harness.Match{harness.Exact("interface", "Long")}, Cluster: "slowish", Extra: map[string]any{"timeout": "5s"}},
				{Name: "hole", Match: []harness.Match{harness.Exact("interface", "Hole")}, Cluster: "hole", Extra: map[string]any{"timeout": "1s"}},
				{Name: "holes", Match: []harness.Match{harness.Exact("interface", "Holes")}, Cluster: "holes",
					Extra: merge(map[string]any{"timeout": "1s"}, retryPolicy(10, "0.3s", "per-try-timeout"))},
				{Name: "hello", Match: []harness.Match{methodMatch("sayHello")}, Cluster: "slow", Extra: map[string]any{"timeout": "1s"}},
				{Name: "echo", Match: []harness.Match{methodMatch("echoHeader")}, Cluster: "fast"},
			}, map[string]any{"request_timeout": "0.3s"},
				backendCluster("slow", slow), backendCluster("slowish", slowish), backendCluster("fast", fast),
				harness.Cluster{Name: "hole", Endpoints: []string{startBlackhole(t)}},
				harness.Cluster{Name: "holes", Endpoints: []string{startBlackhole(t), startBlackhole(t)}, Extra: maxRetries(100)}))
			plain := dialThrift(t, addr, framedBinary, "")
			hole := dialThrift(t, addr, framedBinary, "Hole")
			holes := dialThrift(t, addr, framedBinary, "Holes")
			long := dialThrift(t, addr, framedBinary, "Long")
			type outcome struct {
				got string
				d   time.Duration
				err error
			}
			run := func(cl *thriftpeer.Client, name string) <-chan outcome {
				ch := make(chan outcome, 1)
				go func() {
					start := time.Now()
					got, err := cl.SayHello(context.Background(), name)
					ch <- outcome{got, time.Since(start), err}
				}()
				return ch
			}
			slowCh, holeCh, holesCh, longCh := run(plain, "slow"), run(hole, "hole"), run(holes, "holes"), run(long, "long")
			for _, x := range []struct {
				what string
				ch   <-chan outcome
			}{{"sayHello to a server that takes 3 s", slowCh}, {"sayHello to a host that never answers", holeCh},
				{"sayHello retried (10 retries, per-try timeout 0.3 s) at hosts that never answer", holesCh}} {
				o := <-x.ch
				ae := appException(o.err)
				if ae == nil {
					t.Errorf("%s: %q, %v; want a TApplicationException", x.what, o.got, o.err)
				} else {
					t.Logf("%s: TApplicationException type %d after %v: %v", x.what, ae.TypeId(), o.d.Round(time.Millisecond), ae)
				}
				if o.d < 900*time.Millisecond || o.d > 2500*time.Millisecond {
					t.Errorf("%s: ended after %v, want the route's 1 s (0.9-2.5 s)", x.what, o.d.Round(time.Millisecond))
				}
			}
			if o := <-longCh; o.err != nil || o.got != slowish.reply("long") {
				t.Errorf("sayHello on the route with timeout 5s (listener 0.3s) to a server that takes 0.6 s: %q, %v", o.got, o.err)
			}
			if got, err := plain.EchoHeader(context.Background(), "k"); err != nil || got != "fast:" {
				t.Errorf("call after the timeout on the same connection: %q, %v", got, err)
			}
			if admin != "" {
				if n := adminStat(admin, "request_timeout"); n < 3 {
					t.Errorf("request_timeout = %d, want at least 3", n)
				}
			}
		})
	}
}

// TestTrafficThriftTimeoutLateAnswer: a call times out (route timeout 1 s,
// the server answers after 1.5 s) and the client goes on calling on the same
// connection: the late answer must never reach it. An Apache client waits
// for one answer at a time and would take it for the answer to its next
// call. With multiplexing the next calls share the upstream connection
// whose server is still busy with the slow call; without it the timed-out
// upstream connection must not be reused.
func TestTrafficThriftTimeoutLateAnswer(t *testing.T) {
	t.Parallel()
	for _, px := range harness.Proxies() {
		for _, mux := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/multiplexing=%v", px.Name(), mux), func(t *testing.T) {
				t.Parallel()
				sloth := startThriftBackend(t, "sloth", withDelay(1500*time.Millisecond), delayOnly("slow"))
				b := thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "sloth", Extra: map[string]any{"timeout": "1s"}}}, nil,
					backendCluster("sloth", sloth))
				b.Listeners[0].Proxy.Multiplexing = mux
				addr, _ := trafficStart(t, px, b)
				cl := dialThrift(t, addr, framedBinary, "")
				ctx := thriftCtx(t)
				start := time.Now()
				_, err := cl.SayHello(ctx, "slow-1")
				d := time.Since(start)
				if appException(err) == nil || d < 900*time.Millisecond || d > 2500*time.Millisecond {
					t.Fatalf("sayHello(slow-1), answered after 1.5 s, route timeout 1 s: %v after %v; want a TApplicationException after about 1 s", err, d.Round(time.Millisecond))
				}
				if got, err := cl.SayHello(ctx, "quick-1"); err != nil || got != sloth.reply("quick-1") {
					t.Errorf("the call after the timeout: %q, %v; want its own answer", got, err)
				}
				if !harness.WaitFor(t, 10*time.Second, func() bool { return sloth.hasAnswered("slow-1") }) {
					t.Fatal("the server never answered slow-1")
				}
				for i := range 5 {
					name := fmt.Sprintf("quick-%d", i+2)
					if got, err := cl.SayHello(ctx, name); err != nil || got != sloth.reply(name) {
						t.Errorf("call %d after the late answer: %q, %v; want its own answer", i+2, got, err)
					}
				}
			})
		}
	}
}
