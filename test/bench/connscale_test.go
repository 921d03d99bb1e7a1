package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/abihost"
	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/harness/load"
)

var (
	connScaleRate   = flag.Float64("connscale-rate", 5000, "BenchmarkConnectionScale: total calls/s, the same for every connection count")
	connScaleRounds = flag.Int("connscale-rounds", 3, "BenchmarkConnectionScale: runs of each row (the median is shown)")
	connScaleSO     = flag.Bool("connscale-so", true, "BenchmarkConnectionScale: also measure metaprotocol.so in the ABI host (when it builds)")
)

// connScaleConns are the downstream connection counts of
// BenchmarkConnectionScale, all at the same total call rate.
var connScaleConns = []int{1, 100, 10000}

// BenchmarkConnectionScale measures how the proxy's cost grows with the
// number of downstream connections when the total call rate stays the
// same: 1, 100 and 10,000 client connections share -connscale-rate calls/s
// (default 5,000), sent open-loop by loadgen -conns N -rate R (Apache
// Thrift framed binary calls on a fixed schedule, latency counted from
// each call's due time) to a real Apache Thrift server through the
// standalone proxy, and then through metaprotocol.so in the ABI host. Each
// run is a fresh proxy; its warm-up lasts until every connection has made
// a call (at least 1 s), then 3 s are measured. The rows are measured
// -connscale-rounds times (default 3), interleaved, and each row shows its
// run with the median proxy CPU per call: calls/s achieved, p50, p99 and
// max latency, the proxy's CPU per call (and its range over the rounds),
// the server's, the proxy's RSS at the end of the measured phase, how late
// the generator wrote its calls, and how busy the rest of the machine was.
// Run it once:
//
//	go test -run '^$' -bench ConnectionScale -benchtime 1x ./bench
func BenchmarkConnectionScale(b *testing.B) {
	const measure = 3 * time.Second
	rate, rounds := *connScaleRate, max(1, *connScaleRounds)
	// Built first without their "built ... in" log lines (see the Logf at
	// the end); the later Builds find them built.
	for _, pkg := range []string{"/test/bench/loadgen", "/test/peers/thrift/thriftpeer", "/cmd/metaproxy"} {
		harness.Build(quietTB{b}, harness.Module+pkg)
	}
	gen := harness.Build(b, harness.Module+"/test/bench/loadgen")
	srv := StartServer(b, "thrift", "connscale")
	type host struct {
		name, metric string
		start        func() connScaleFront
	}
	hosts := []host{{"metaproxy", "", func() connScaleFront { return startConnScaleStandalone(b, srv.Addr) }}}
	if *connScaleSO {
		if a, why := buildConnScaleABIHost(b); a == nil {
			b.Logf("metaproxy.so: not measured: %s", why)
		} else {
			hosts = append(hosts, host{"metaproxy.so", "so-", func() connScaleFront { return startConnScaleABIHost(b, a, srv.Addr) }})
		}
	}
	type key struct {
		host string
		n    int
	}
	runs := map[key][]connScaleRow{}
	for b.Loop() {
		for range rounds {
			for _, h := range hosts {
				for _, n := range connScaleConns {
					f := h.start()
					if lim, err := openFilesLimit(f.pid); err != nil {
						b.Fatal(err)
					} else if lim < n+100 {
						b.Fatalf("%s, %d connections: the proxy may only open %d files; raise ulimit -n", h.name, n, lim)
					}
					// Warm-up: every connection makes at least one call.
					warmup := max(time.Second, time.Duration(float64(n)/rate*float64(time.Second))+500*time.Millisecond)
					r, err := runConnScale(gen, f, n, rate, warmup, measure, srv.PID)
					f.stop()
					if err != nil {
						b.Fatalf("%s, %d connections: %v", h.name, n, err)
					}
					r.proxy = h.name
					runs[key{h.name, n}] = append(runs[key{h.name, n}], r)
				}
			}
		}
	}
	// One Logf, few lines: go test keeps only the first 10 lines of a
	// benchmark's log.
	var rows []connScaleRow
	for _, h := range hosts {
		for _, n := range connScaleConns {
			r := medianConnScale(runs[key{h.name, n}])
			rows = append(rows, r)
			b.ReportMetric(r.proxyCPU, fmt.Sprintf("%scpu-µs/call@%d", h.metric, n))
			b.ReportMetric(float64(r.P99us), fmt.Sprintf("%sp99-µs@%d", h.metric, n))
		}
	}
	b.Logf("%.0f calls/s in total, open loop (Apache Thrift framed binary; latency from each call's due time); median of %d rounds by proxy CPU:\n%s",
		rate, rounds, connScaleTable(rows))
}

// medianConnScale returns the run with the median proxy CPU per call,
// with the range of the proxy CPU over all runs.
func medianConnScale(runs []connScaleRow) connScaleRow {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b connScaleRow) int { return cmp.Compare(a.proxyCPU, b.proxyCPU) })
	r := sorted[(len(sorted)-1)/2]
	r.cpuMin, r.cpuMax = sorted[0].proxyCPU, sorted[len(sorted)-1].proxyCPU
	return r
}

// quietTB is a testing.TB without Logf.
type quietTB struct{ testing.TB }

func (quietTB) Logf(string, ...any) {}

// connScaleFront is a proxy in front of the Thrift server.
type connScaleFront struct {
	addr string
	pid  int
	// active returns the downstream connections open at the proxy;
	// requests the calls it has taken since it started (-1: it cannot
	// say).
	active, requests func() (int64, error)
	stop             func()
}

// connScaleProxy is the listener of every row: calls routed by method to
// the server, upstream connections shared (multiplexing), and the Thrift
// codec told that clients pipeline (one connection carries up to hundreds
// of calls at once in the 1-connection row). The 1-connection row's client
// is the whole load, so its connection may hold as many calls in flight as
// the listener (16,384, the default of max_active_requests), not the
// default 1,024 per connection, and the cluster's circuit breaker allows
// as many (Envoy's default max_requests is 1,024 too): at 5,000 calls/s a
// 0.2 s stall of this shared machine would otherwise fail calls with
// "overloaded". The latencies show such stalls anyway.
func connScaleProxy(server string) harness.Bootstrap {
	return harness.Bootstrap{Listeners: []harness.Listener{{Name: "connscale", Port: 0, Proxy: harness.MetaProtocolProxy{
		StatPrefix: "connscale", Protocol: "thrift", Multiplexing: true, IdleTimeout: "3600s",
		Routes: []harness.Route{{Name: "hello", Match: []harness.Match{harness.Exact("method", "sayHello")}, Cluster: "upstream"}},
		Extra: map[string]any{"max_active_requests_per_connection": 16384, "protocol": map[string]any{
			"name": "thrift", "multiplexing": true,
			"codec": map[string]any{"name": "aeraki.meta_protocol.codec.thrift", "config": map[string]any{
				"@type":     "type.googleapis.com/aeraki.meta_protocol.codec.ThriftCodec",
				"transport": "framed", "protocol": "binary", "concurrent_clients": true,
			}},
		}},
	}}}, Clusters: []harness.Cluster{{Name: "upstream", Endpoints: []string{server}, Extra: map[string]any{
		"circuit_breakers": map[string]any{"thresholds": []any{map[string]any{"max_requests": 16384, "max_pending_requests": 16384}}},
	}}}}
}

func startConnScaleStandalone(b *testing.B, server string) connScaleFront {
	admin := harness.FreePort(b)
	y := connScaleProxy(server)
	y.AdminPort = admin
	y.Listeners[0].Port = harness.FreePort(b)
	addr, p := harness.Standalone{}.StartProcess(b, y.MustRender())
	stat := func(name string) func() (int64, error) {
		return func() (int64, error) { return connScaleStat(admin, "meta_protocol.thrift.connscale."+name) }
	}
	return connScaleFront{addr: addr, pid: p.Pid(), active: stat("cx_active"), requests: stat("request"), stop: p.Kill}
}

func startConnScaleABIHost(b *testing.B, a *abihost.Artifacts, server string) connScaleFront {
	y := connScaleProxy(server)
	y.Listeners[0].Port = harness.FreePort(b)
	h := abihost.StartBootstrap(b, a, []byte(y.MustRender()), abihost.Options{Workers: 2, LogLevel: "warning"}, abihost.StartOptions{})
	active := func() (int64, error) {
		s, err := h.Stats()
		return s["downstream_open"], err
	}
	// The host stops when the benchmark ends: stopping it earlier would
	// fail the benchmark's cleanup. Meanwhile an idle host uses about 2 ms
	// of CPU a second (measured here).
	return connScaleFront{addr: h.FirstAddr(), pid: h.PID(), active: active,
		requests: func() (int64, error) { return -1, nil }, stop: func() {}}
}

// buildConnScaleABIHost builds the ABI host and metaprotocol.so, or says
// why they do not build here.
func buildConnScaleABIHost(b *testing.B) (*abihost.Artifacts, string) {
	root, err := abihost.Root()
	if err != nil {
		return nil, err.Error()
	}
	dir := b.TempDir()
	host, err := abihost.BuildHost(root, dir)
	if err != nil {
		return nil, "the ABI host did not build: " + strings.SplitN(err.Error(), "\n", 2)[0]
	}
	so, err := abihost.BuildPlugin(root, dir)
	if err != nil {
		return nil, "metaprotocol.so did not build: " + strings.SplitN(err.Error(), "\n", 2)[0]
	}
	return &abihost.Artifacts{Root: root, Host: host, Plugin: so}, ""
}

// connScaleResult is loadgen's open-loop summary.
type connScaleResult struct {
	load.Result
	Conns     int   `json:"conns"`
	Sent      int64 `json:"sent"`
	Lost      int64 `json:"lost"`
	AllOK     int64 `json:"all_ok"`
	SendP99us int64 `json:"send_p99_us"`
	LagP99us  int64 `json:"lag_p99_us"`
	LagMaxUs  int64 `json:"lag_max_us"`
}

// connScaleRow is one measured row.
type connScaleRow struct {
	connScaleResult
	proxy               string
	proxyCPU, serverCPU float64 // µs per call in the measured phase
	cpuMin, cpuMax      float64 // proxyCPU's range over the rounds
	rss                 int64   // the proxy's, at the end of the measured phase
	// others is the share of the machine's CPUs that neither the proxy,
	// the server nor the generator used but something else did (another
	// job on the machine) in the measured phase, in %.
	others float64
}

// runConnScale runs loadgen -conns n -rate rate against f and samples the
// proxy's and the server's CPU when the measured phase starts and when the
// summary arrives.
func runConnScale(gen string, f connScaleFront, n int, rate float64, warmup, d time.Duration, serverPID int) (row connScaleRow, err error) {
	cmd := exec.Command(gen, "-proto", "thrift", "-addr", f.addr, "-conns", strconv.Itoa(n),
		"-rate", strconv.FormatFloat(rate, 'f', -1, 64), "-warmup", warmup.String(), "-d", d.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return row, err
	}
	if err := cmd.Start(); err != nil {
		return row, err
	}
	limit := time.AfterFunc(warmup+d+2*time.Minute, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer limit.Stop()
	row, scanErr := scanConnScale(stdout, f, n, serverPID, cmd.Process.Pid)
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		return row, fmt.Errorf("loadgen: %v\n%s", err, stderr.String())
	}
	if scanErr != nil {
		return row, fmt.Errorf("%v\n%s", scanErr, stderr.String())
	}
	r := row.Result
	switch {
	case r.Errors > 0 || r.OK == 0:
		return row, fmt.Errorf("%d of %d calls failed (first: %s)", r.Errors, row.Sent, r.FirstError)
	case r.RPS < 0.95*rate:
		return row, fmt.Errorf("%.0f calls/s achieved of %.0f: the machine does not sustain the rate", r.RPS, rate)
	}
	return row, nil
}

func scanConnScale(stdout io.Reader, f connScaleFront, n, serverPID, genPID int) (connScaleRow, error) {
	var (
		row     connScaleRow
		before  []time.Duration
		machine MachineCPU
		at      time.Time
	)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "MEASURING":
			var err error
			if before, err = cpuOf(f.pid, serverPID, genPID); err != nil {
				return row, err
			}
			if machine, err = ReadMachineCPU(); err != nil {
				return row, err
			}
			at = time.Now()
			// Every connection is open at the proxy (and not one more than
			// the generator's: nothing else uses it).
			if act, err := f.active(); err != nil {
				return row, err
			} else if act < int64(n) {
				return row, fmt.Errorf("the proxy has %d downstream connections open, want %d", act, n)
			}
		case before != nil && strings.HasPrefix(line, "{"):
			after, err := cpuOf(f.pid, serverPID, genPID)
			if err != nil {
				return row, err
			}
			machine1, err := ReadMachineCPU()
			if err != nil {
				return row, err
			}
			elapsed := time.Since(at)
			if row.rss, err = harness.ProcessRSS(f.pid); err != nil {
				return row, err
			}
			if err := json.Unmarshal([]byte(line), &row.connScaleResult); err != nil {
				return row, fmt.Errorf("summary %q: %w", line, err)
			}
			ok := float64(max(row.OK, 1))
			row.proxyCPU = float64((after[0] - before[0]).Microseconds()) / ok
			row.serverCPU = float64((after[1] - before[1]).Microseconds()) / ok
			ours := after[0] - before[0] + after[1] - before[1] + after[2] - before[2]
			row.others = 100 * max(0, float64(machine1.Busy-machine.Busy-ours)) / float64(elapsed*time.Duration(runtime.NumCPU()))
			// Proof the calls went through the proxy (a fresh one), which
			// counts them.
			if reqs, err := f.requests(); err != nil {
				return row, err
			} else if reqs >= 0 && reqs < row.AllOK {
				return row, fmt.Errorf("the proxy counted %d requests, the generator had %d replies", reqs, row.AllOK)
			}
			return row, nil
		}
	}
	if err := sc.Err(); err != nil {
		return row, err
	}
	return row, fmt.Errorf("no summary line from loadgen")
}

func connScaleTable(rows []connScaleRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %11s %7s %6s %6s %6s %17s %14s %18s %9s %15s %12s\n", "proxy",
		"connections", "calls/s", "p50 µs", "p99 µs", "max µs", "proxy CPU µs/call", "(all rounds)", "server CPU µs/call", "proxy RSS", "send lag p99 µs", "other load %")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-12s %11d %7.0f %6d %6d %6d %17.1f %14s %18.1f %5d MiB %15d %12.0f\n", r.proxy,
			r.Conns, r.RPS, r.P50us, r.P99us, r.MaxUs, r.proxyCPU, fmt.Sprintf("%.0f–%.0f", r.cpuMin, r.cpuMax), r.serverCPU, r.rss>>20, r.LagP99us, r.others)
	}
	return b.String()
}

// connScaleStat reads one counter of metaproxy's admin /stats.
func connScaleStat(admin int, name string) (int64, error) {
	resp, err := http.Get("http://" + harness.Addr(admin) + "/stats")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("admin /stats has no %s", name)
}

// openFilesLimit is process pid's soft limit on open files.
func openFilesLimit(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			if f[0] == "unlimited" {
				return 1 << 30, nil
			}
			return strconv.Atoi(f[0])
		}
	}
	return 0, fmt.Errorf("/proc/%d/limits: no Max open files", pid)
}
