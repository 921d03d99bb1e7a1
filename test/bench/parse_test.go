package bench

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/metaproxy/metaproxy/builtin" // the codecs and filters, for config.LoadBootstrap
	"github.com/metaproxy/metaproxy/config"
	"github.com/metaproxy/metaproxy/filter"
)

func TestParseHWM(t *testing.T) {
	status := "Name:\tmetaproxy\nVmPeak:\t 1262724 kB\nVmHWM:\t   12640 kB\nVmRSS:\t   11000 kB\n"
	got, err := parseHWM([]byte(status))
	if err != nil || got != 12640<<10 {
		t.Fatalf("parseHWM = %d, %v; want %d", got, err, 12640<<10)
	}
	for _, bad := range []string{"Name:\tx\n", "VmHWM:\t 12 MB\n", "VmHWM:\t x kB\n"} {
		if _, err := parseHWM([]byte(bad)); err == nil {
			t.Errorf("parseHWM(%q): no error", bad)
		}
	}
}

func TestPeakRSSOfThisProcess(t *testing.T) {
	rss, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 {
		t.Errorf("peak RSS of the test process = %d bytes, less than 1 MiB", rss)
	}
}

func TestParseMachineCPU(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	stat := "cpu  100 5 50 1000 20 1 2 3 40 4\ncpu0 1 2 3 4\n"
	m, err := parseMachineCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := ticks(100 + 5 + 50 + 1 + 2 + 3); m.Busy != want {
		t.Errorf("Busy = %v, want %v", m.Busy, want)
	}
	if want := ticks(100 + 5 + 50 + 1000 + 20 + 1 + 2 + 3); m.Total != want {
		t.Errorf("Total = %v, want %v", m.Total, want)
	}
	if _, err := parseMachineCPU([]byte("intr 1 2 3\n")); err == nil {
		t.Error("a stat file without the cpu line parsed")
	}
}

func TestParseMicro(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/metaproxy/metaproxy/proxy
BenchmarkCorePathDubbo-2                 1000000              1103 ns/op               0 B/op          0 allocs/op
BenchmarkCorePathThriftFramedBinary-2    2000000               651.5 ns/op            16 B/op          1 allocs/op
PASS
ok      github.com/metaproxy/metaproxy/proxy    3.1s
`
	ms, err := ParseMicro(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Micro{{"CorePathDubbo", 1103, 0, 0}, {"CorePathThriftFramedBinary", 651.5, 16, 1}}
	if len(ms) != len(want) {
		t.Fatalf("got %+v, want %+v", ms, want)
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, ms[i], want[i])
		}
	}
	if _, err := ParseMicro("BenchmarkX-2 10 5 ns/op\n"); err == nil {
		t.Error("a result without -benchmem columns parsed")
	}
}

// TestHAProxyConfigValid has HAProxy itself check the generated config.
func TestHAProxyConfigValid(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed")
	}
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(haproxyConfig("127.0.0.1:1", "127.0.0.1:2", 2)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("haproxy", "-c", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}

func TestBootstrapRoutesByProtocol(t *testing.T) {
	up := Upstreams{Main: Server{Addr: "127.0.0.1:9"}, Second: Server{Addr: "127.0.0.1:10"}, Collector: "127.0.0.1:11", AccessLog: "/tmp/bench-access.log"}
	for proto, key := range map[string]string{"dubbo": "interface", "thrift": "method"} {
		for _, c := range []struct {
			feature    string
			want, lack []string
		}{
			{"", nil, []string{"port_value: 10", "mirror", "hash_policy", "RING_HASH"}},
			{FeatureMirror, []string{"request_mirror_policies:", "- cluster: mirror\n", "name: mirror", "port_value: 10"}, []string{"runtime_fraction", "hash_policy"}},
			{FeatureRingHash, []string{"hash_policy:", "- method\n", "lb_policy: RING_HASH", "port_value: 10"}, []string{"mirror"}},
			{FeatureHealth, []string{"circuit_breakers:", "outlier_detection:", "health_checks:"}, []string{"port_value: 10", "mirror", "RING_HASH"}},
			{FeatureLocalRateLimit, []string{"local_ratelimit", "max_tokens: 4000000000"}, []string{"port_value: 10", "mirror"}},
			{FeatureRBAC, []string{"metaproxy.filters.rbac", "e-bench:", "address_prefix: 127.0.0.0"}, []string{"port_value: 10", "mirror"}},
			{FeatureObserve, []string{"istio_stats", "access_log:", "envoy.tracers.opentelemetry", "name: otel"}, []string{"port_value: 10", "mirror"}},
		} {
			y := bootstrap(proto, c.feature, up, 8).MustRender()
			for _, want := range append([]string{"name: " + key, "port_value: 8", "port_value: 9", "multiplexing: true", "name: " + proto}, c.want...) {
				if !strings.Contains(y, want) {
					t.Errorf("%s%s bootstrap lacks %q:\n%s", proto, c.feature, want, y)
				}
			}
			for _, lack := range c.lack {
				if strings.Contains(y, lack) {
					t.Errorf("%s%s bootstrap has %q:\n%s", proto, c.feature, lack, y)
				}
			}
			// metaproxy itself accepts it, without warnings.
			b, err := config.LoadBootstrap([]byte(y), filter.Env{})
			if err != nil {
				t.Errorf("%s%s bootstrap: %v\n%s", proto, c.feature, err, y)
			} else {
				if len(b.Warnings) > 0 {
					t.Errorf("%s%s bootstrap: warnings %q", proto, c.feature, b.Warnings)
				}
				for _, l := range b.Listeners { // let go of what the filters hold (a tracer's connection)
					filter.NewChain(l.Proxy.Filters, nil).Close()
				}
			}
		}
	}
}

func TestSplitKind(t *testing.T) {
	for _, k := range Proxies {
		host, f := SplitKind(k)
		if !slices.Contains([]string{Direct, HAProxy, MOSN, Metaproxy, ABIHost}, host) ||
			!slices.Contains([]string{"", FeatureMirror, FeatureRingHash, FeatureHealth, FeatureLocalRateLimit, FeatureRBAC, FeatureObserve}, f) {
			t.Errorf("SplitKind(%q) = %q, %q", k, host, f)
		}
		if want := f == FeatureMirror || f == FeatureRingHash; want != NeedsSecondServer(k) {
			t.Errorf("NeedsSecondServer(%q) = %v", k, !want)
		}
	}
	for _, k := range DefaultProxies {
		if !slices.Contains(Proxies, k) {
			t.Errorf("default kind %q is not in Proxies", k)
		}
	}
}

func TestSpread(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want string
	}{
		{[]float64{100, 110, 90}, "20%"},
		{[]float64{100, 100}, "0%"},
		{[]float64{80, 120, 100, 100}, "40%"},
		{[]float64{5}, "–"},
		{[]float64{0, 0, 0}, "–"},
	} {
		if got := spread(c.in); got != c.want {
			t.Errorf("spread(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestAxis(t *testing.T) {
	for _, c := range []struct {
		v     float64
		step  float64
		steps int
	}{
		{0, 1, 1}, {23456, 5000, 5}, {32.1, 10, 4}, {7965, 2000, 4}, {10, 2, 5}, {0.3, 0.1, 3}, {11, 2.5, 5},
	} {
		step, steps := axis(c.v)
		if math.Abs(step-c.step) > 1e-9 || steps != c.steps {
			t.Errorf("axis(%v) = %v × %d, want %v × %d", c.v, step, steps, c.step, c.steps)
		}
	}
}

func TestResultPerCallAndOther(t *testing.T) {
	r := Result{Measured: Measured{ProxyCPU: 30 * time.Millisecond, ServerCPU: 50 * time.Millisecond,
		ClientCPU: 100 * time.Millisecond, MachineBusy: 200 * time.Millisecond}}
	r.Result.OK, r.Result.Errors = 990, 10
	if got := r.PerCall(r.ProxyCPU); got != 30*time.Microsecond {
		t.Errorf("PerCall = %v, want 30µs", got)
	}
	if got := r.Other(); got != 20*time.Millisecond {
		t.Errorf("Other = %v, want 20ms", got)
	}
	if got := (Result{}).PerCall(time.Second); got != 0 {
		t.Errorf("PerCall with no calls = %v, want 0", got)
	}
}

func TestParsePerfStat(t *testing.T) {
	out := "210500,,raw_syscalls:sys_enter,3031674061,100.00,,\n" +
		"<not counted>,,syscalls:sys_enter_sendto,0,100.00,,\n" +
		"\n17020,,context-switches,3031674061,100.00,,\n"
	got, err := parsePerfStat([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"raw_syscalls:sys_enter": 210500, "syscalls:sys_enter_sendto": 0, "context-switches": 17020}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if _, err := parsePerfStat([]byte("<not supported>,,syscalls:sys_enter_read,0,100.00,,\n")); err == nil {
		t.Error("an event perf cannot count parsed")
	}
	if _, err := parsePerfStat([]byte("Error: no permission\n")); err == nil {
		t.Error("output without counts parsed")
	}
}

func TestReportLinesKeepsUserSymbols(t *testing.T) {
	out := []byte("# comment\n\n" +
		"    33.81%    33.81%  [k] pvm_irq_enable                  -      -            \n" +
		"    41.49%     0.44%  [.] standalone.readLoop             -      -            \n")
	if got, want := reportLines(out, true), "    41.49%     0.44%  [.] standalone.readLoop\n"; got != want {
		t.Errorf("user lines = %q, want %q", got, want)
	}
	if got := strings.Count(reportLines(out, false), "\n"); got != 2 {
		t.Errorf("all lines: %d, want 2", got)
	}
}
