package bench

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/abihost"
	"github.com/metaproxy/metaproxy/test/harness"
)

var (
	sideBySide = flag.Bool("sidebyside", false, "run the side-by-side load benchmark (bench/run.sh does)")
	outDir     = flag.String("out", "", "directory for latest.md, latest.png and latest.json")
	warmupF    = flag.Duration("warmup", time.Second, "warm-up of each run, not measured")
	durationF  = flag.Duration("duration", 3*time.Second, "measured phase of each run")
	roundsF    = flag.Int("rounds", 3, "runs of each case (tables show the median run)")
	workersF   = flag.String("workers", "16,64", "worker counts, comma separated")
	protocolsF = flag.String("protocols", "dubbo,thrift", "protocols, comma separated")
	proxiesF   = flag.String("proxies", strings.Join(DefaultProxies, ","), "proxy kinds, comma separated, of "+strings.Join(Proxies, ","))
	threadsF   = flag.Int("threads", runtime.NumCPU(), "HAProxy nbthread and ABI host worker loops")
	microF     = flag.String("micro", "", "file holding `go test -bench CorePath -benchmem ./proxy` output to report")
	scaleF     = flag.String("scale", "", "file holding the scale benchmarks' `go test -bench` output to report")
	profileF   = flag.Bool("profile", false, "perf-profile metaproxy under the largest load of each protocol")
	renderF    = flag.String("render", "", "with -out: render the report of this latest.json again instead of measuring")
)

func TestMain(m *testing.M) { harness.Main(m) }

// TestSideBySide is `make bench`: every case of the plan given by the flags,
// one after the other on this machine, then the report.
func TestSideBySide(t *testing.T) {
	if *renderF != "" && *outDir != "" {
		b, err := os.ReadFile(*renderF)
		if err != nil {
			t.Fatal(err)
		}
		var rep Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("%s: %v", *renderF, err)
		}
		writeReport(t, &rep, *outDir)
		return
	}
	if !*sideBySide {
		t.Skip("the load benchmark runs with -sidebyside (make bench)")
	}
	plan, err := flagPlan()
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, plan, *profileF)
	if *microF != "" {
		b, err := os.ReadFile(*microF)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Micro, err = ParseMicro(string(b)); err != nil {
			t.Error(err)
		}
	}
	if *scaleF != "" {
		b, err := os.ReadFile(*scaleF)
		if err != nil {
			t.Fatal(err)
		}
		rep.Scale = ParseBench(string(b))
	}
	if *outDir != "" {
		writeReport(t, rep, *outDir)
	}
	fmt.Print("\n" + rep.Markdown())
}

// TestSideBySideSmoke runs every proxy kind briefly at low load, so that
// `make test` notices when `make bench` breaks. Its numbers mean nothing.
func TestSideBySideSmoke(t *testing.T) {
	if testing.Short() || *sideBySide {
		t.Skip("smoke run of the load benchmark: not in -short mode, nor with -sidebyside")
	}
	plan := Plan{Protocols: []string{"dubbo", "thrift"}, Workers: []int{2}, Proxies: Proxies,
		Warmup: 200 * time.Millisecond, Duration: 500 * time.Millisecond, Threads: 2, Rounds: 1}
	rep := run(t, plan, false)
	for _, r := range rep.Results {
		if r.OK() && r.Result.OK == 0 {
			t.Errorf("%+v: no successful call", r.Case)
		}
	}
	if _, ok := rep.Results.Median(Case{"dubbo", 2, Metaproxy}); !ok {
		t.Error("the metaproxy dubbo case did not run")
	}
	writeReport(t, rep, t.TempDir())
}

// flagPlan builds the plan from the command-line flags.
func flagPlan() (Plan, error) {
	p := Plan{Protocols: split(*protocolsF), Proxies: split(*proxiesF), Warmup: *warmupF, Duration: *durationF,
		Threads: *threadsF, Rounds: *roundsF}
	for _, s := range split(*workersF) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return p, fmt.Errorf("-workers: bad count %q", s)
		}
		p.Workers = append(p.Workers, n)
	}
	for _, proto := range p.Protocols {
		if _, ok := Protocols[proto]; !ok {
			return p, fmt.Errorf("-protocols: unknown %q", proto)
		}
	}
	for _, k := range p.Proxies {
		if !slices.Contains(Proxies, k) {
			return p, fmt.Errorf("-proxies: unknown %q (know %v)", k, Proxies)
		}
	}
	if p.Rounds < 1 {
		return p, fmt.Errorf("-rounds: want at least 1")
	}
	return p, nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// run measures every case of plan: per protocol, one server for all its
// cases and a fresh proxy per run; per worker count, every proxy once per
// round. The profiled runs come after a protocol's cases.
func run(t *testing.T, plan Plan, profile bool) *Report {
	root, err := abihost.Root()
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{Env: ReadEnvironment(root), Plan: plan}
	r := runner{plan: plan, loadgen: harness.Build(t, harness.Module+"/test/bench/loadgen"), opts: ProxyOptions{Threads: plan.Threads}}
	if slices.Contains(plan.Proxies, ABIHost) {
		r.opts.ABIHost, r.abiSkip = buildABIHost(t, root)
	}
	for _, proto := range plan.Protocols {
		t.Run(proto, func(t *testing.T) {
			up := Upstreams{Main: StartServer(t, proto, "bench")}
			if slices.ContainsFunc(plan.Proxies, NeedsSecondServer) {
				up.Second = StartServer(t, proto, "bench-2")
			}
			if slices.ContainsFunc(plan.Proxies, func(k string) bool { _, f := SplitKind(k); return f == FeatureObserve }) {
				up.Collector = harness.StartOTLPReceiver(t).Addr
				up.AccessLog = filepath.Join(t.TempDir(), "access.log")
			}
			for _, w := range plan.Workers {
				for round := 1; round <= plan.Rounds; round++ {
					for _, k := range plan.Proxies {
						up = alive(t, up, proto)
						res := r.run(t, Case{proto, w, k}, up, nil)
						res.Round = round
						rep.Results = append(rep.Results, res)
					}
				}
			}
			if profile {
				rep.Profiles = append(rep.Profiles, r.profile(t, proto, up)...)
			}
		})
	}
	rep.Env.Finish()
	return rep
}

// alive returns up, with a new server in place of one that exited
// (something else on the machine killed it): the remaining runs need it.
func alive(t *testing.T, up Upstreams, proto string) Upstreams {
	for _, s := range []struct {
		srv *Server
		tag string
	}{{&up.Main, "bench"}, {&up.Second, "bench-2"}} {
		if s.srv.Addr == "" || s.srv.Alive() {
			continue
		}
		t.Errorf("the %s server %s (pid %d) exited during the benchmark; starting another", proto, s.tag, s.srv.PID)
		*s.srv = StartServer(t, proto, s.tag)
	}
	return up
}

// runner runs single cases.
type runner struct {
	plan    Plan
	loadgen string
	opts    ProxyOptions
	abiSkip string
}

// run measures case c against up in a subtest. profile, if set, runs
// alongside the measured phase with the proxy's pid.
func (r *runner) run(t *testing.T, c Case, up Upstreams, profile func(pid int, d time.Duration)) Result {
	res := Result{Case: c, ProxyRequests: -1}
	ok := t.Run(fmt.Sprintf("%d/%s", c.Workers, c.Proxy), func(t *testing.T) {
		if host, _ := SplitKind(c.Proxy); host == ABIHost && r.abiSkip != "" {
			res.Skipped = r.abiSkip
			t.Skip(res.Skipped)
		}
		front, skip := StartFront(t, c.Proxy, c.Protocol, up, r.opts)
		if skip != "" {
			res.Skipped = skip
			t.Skip(skip)
		}
		l := Load{Loadgen: r.loadgen, Protocol: c.Protocol, Addr: front.Addr, Workers: c.Workers,
			Warmup: r.plan.Warmup, Duration: r.plan.Duration, ProxyPID: front.PID, ServerPIDs: up.PIDs(),
			Counters: front.Counters}
		var wg sync.WaitGroup
		if profile != nil {
			l.During = func(d time.Duration) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					profile(front.PID, d)
				}()
			}
		}
		m, err := l.Run()
		wg.Wait()
		if err != nil {
			res.Failed = err.Error()
			t.Fatal(err)
		}
		res.Measured = m
		if m.Result.Errors > 0 {
			t.Errorf("%d of %d calls failed; first: %s", m.Result.Errors, res.Calls(), m.Result.FirstError)
		}
		if front.PID != 0 {
			if res.ProxyPeakRSS, err = PeakRSS(front.PID); err != nil {
				t.Error(err)
			}
		}
		if front.Stat != nil {
			if res.ProxyRequests, err = front.Stat("request"); err != nil {
				t.Error(err)
			} else if res.ProxyRequests < res.Calls() {
				t.Errorf("the proxy counted %d requests, fewer than the %d calls measured", res.ProxyRequests, res.Calls())
			}
			if _, f := SplitKind(c.Proxy); f == FeatureMirror {
				checkMirrored(t, front, res.Calls())
			}
		}
	})
	if !ok && res.OK() {
		res.Failed = "see the test log"
	}
	return res
}

// checkMirrored fails t unless the proxy of a mirror row sent a copy of
// every call measured (proof that the row mirrored) and every copy it sent
// was answered.
func checkMirrored(t *testing.T, front Front, calls int64) {
	var n [3]int64
	for i, name := range []string{"request_mirror", "request_mirror_failed", "request_mirror_overflow"} {
		v, err := front.Stat(name)
		if err != nil {
			t.Error(err)
			return
		}
		n[i] = v
	}
	if n[0] < calls {
		t.Errorf("the proxy sent %d mirror copies, fewer than the %d calls measured", n[0], calls)
	}
	if n[1] != 0 || n[2] != 0 {
		t.Errorf("of %d mirror copies, %d failed; %d were not sent (too many in flight)", n[0], n[1], n[2])
	}
}

// profile runs each proxy of the plan once more at the largest worker
// count under perf: system calls counted for all, stacks sampled for
// metaproxy and metaproxy.so.
func (r *runner) profile(t *testing.T, proto string, up Upstreams) []Profile {
	var ps []Profile
	for _, k := range []string{HAProxy, Metaproxy, ABIHost} {
		if !slices.Contains(r.plan.Proxies, k) {
			continue
		}
		c := Case{proto, slices.Max(r.plan.Workers), k}
		up = alive(t, up, proto)
		p := Profile{}
		res := r.run(t, c, up, func(pid int, d time.Duration) {
			p = ProfileProxy(pid, d*9/10, k != HAProxy, t.TempDir())
		})
		if !res.OK() {
			continue
		}
		p.Case, p.RPS = c, res.Result.RPS
		ps = append(ps, p)
	}
	return ps
}

// buildABIHost builds the ABI host and metaprotocol.so; when they do not
// build here, it returns why instead.
func buildABIHost(t *testing.T, root string) (*abihost.Artifacts, string) {
	dir := t.TempDir()
	start := time.Now()
	host, err := abihost.BuildHost(root, dir)
	if err != nil {
		t.Logf("ABI host: %v", err)
		return nil, "the ABI host did not build: " + firstLine(err.Error())
	}
	so, err := abihost.BuildPlugin(root, dir)
	if err != nil {
		t.Logf("metaprotocol.so: %v", err)
		return nil, "metaprotocol.so did not build: " + firstLine(err.Error())
	}
	t.Logf("built the ABI host and metaprotocol.so in %v", time.Since(start).Round(time.Millisecond))
	return &abihost.Artifacts{Root: root, Host: host, Plugin: so}, ""
}

// writeReport writes latest.md, latest.png and latest.json into dir.
func writeReport(t *testing.T, rep *Report, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "latest.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Chart(f, rep.Results, rep.Plan, rep.Scale); err != nil {
		t.Error(err)
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	rep.Chart = "latest.png"
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"latest.md": []byte(rep.Markdown()), "latest.json": append(js, '\n')} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Error(err)
		}
	}
}
