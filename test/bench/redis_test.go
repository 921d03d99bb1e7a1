package bench

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
)

// BenchmarkRedis runs redis-benchmark (SET and GET, 50 clients) against a
// redis-server directly and through the standalone proxy in the same run,
// without and with pipelining (-P 16), and reports ops/s through the proxy
// as a ratio of direct, and the proxy's CPU per command. Run it once:
//
//	go test -run '^$' -bench Redis -benchtime 1x ./bench
func BenchmarkRedis(b *testing.B) {
	r := harness.StartRedis(b)
	y := harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(b), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "redis", Protocol: "redis", Codec: "metaproxy.codec.redis",
		Routes: []harness.Route{{Name: "all", Cluster: "r"}},
	}}}, Clusters: []harness.Cluster{{Name: "r", Endpoints: []string{r}}}}.MustRender()
	addr, mp := harness.Standalone{}.StartProcess(b, y)
	const n = 200000
	for b.Loop() {
		for _, p := range []string{"1", "16"} {
			direct := redisBench(b, r, p, n)
			var proxied map[string]float64
			perCmd := perOp(b, mp.Pid(), float64(2*n), func() { proxied = redisBench(b, addr, p, n) })
			for cmd, d := range direct {
				b.Logf("-P %-2s %s: direct %.0f ops/s, through metaproxy %.0f ops/s (%.2f×)", p, cmd, d, proxied[cmd], proxied[cmd]/d)
				b.ReportMetric(proxied[cmd]/d, "ratio-"+cmd+"-P"+p)
			}
			b.Logf("-P %-2s proxy CPU %.2f µs per command", p, perCmd)
			b.ReportMetric(perCmd, "proxy-cpu-µs/cmd-P"+p)
		}
	}
}

var benchLine = regexp.MustCompile(`([A-Z]+): ([0-9.]+) requests per second`)

// redisBench runs SET and GET through addr and returns ops/s by command.
func redisBench(b *testing.B, addr, pipeline string, n int) map[string]float64 {
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-benchmark", "-h", host, "-p", port, "-n", strconv.Itoa(n), "-c", "50",
		"-P", pipeline, "-t", "set,get", "-q").CombinedOutput()
	if err != nil || strings.Contains(string(out), "rror") {
		b.Fatalf("redis-benchmark %s -P %s: %v\n%s", addr, pipeline, err, out)
	}
	res := map[string]float64{}
	for _, m := range benchLine.FindAllStringSubmatch(string(out), -1) {
		res[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	return res
}
