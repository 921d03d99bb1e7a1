package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/metaproxy/metaproxy/test/harness"
)

// MOSN is the proxy kind of MOSN (mosn.io/mosn, the Go L7 proxy from Ant
// Group), built from test/peers/mosn: another Go proxy that decodes and
// routes every call, as metaproxy does.
const MOSN = "mosn"

// mosnSkipThrift is why the mosn row has no Thrift case: MOSN's only
// Thrift codec is Dubbo's Thrift framing, not Apache Thrift's.
const mosnSkipThrift = "MOSN v1.3.0 has no Apache Thrift codec: its dubbo-thrift codec " +
	"expects Dubbo's Thrift framing (a 0xdabc header after the frame length) and closes " +
	"a framed-binary connection with a decode error"

// mosnProtocols maps the benchmark's protocols to MOSN's xprotocol codec
// names; a protocol not in it is skipped (mosnSkipThrift).
var mosnProtocols = map[string]string{"dubbo": "dubbo"}

// mosnConfig is MOSN's JSON configuration (MOSN v1.3.0's v2.MOSNConfig)
// of the benchmark's proxy: one listener on listen with the network
// filter "proxy", downstream and upstream protocol the xprotocol codec
// codec (v1.3.0 names the codec itself; the older "X" +
// extend_config.sub_protocol is converted to that), and a router whose
// one route sends every call of the benchmark's Dubbo service (the
// request header "service", which MOSN's dubbo codec fills with the
// interface) to the cluster "upstream", whose one host is upstream. The
// codec is multiplexing, so the calls of all clients share the cluster's
// connections, as with metaproxy's multiplexing: true. admin is the port
// of MOSN's admin API (its /api/v1/stats counts the requests). Logs go
// to stdout at ERROR: none in the hot path; tracing is off (the default).
func mosnConfig(codec, listen, upstream string, admin int) ([]byte, error) {
	type m = map[string]any
	route := m{
		"match": m{"headers": []any{m{"name": "service", "value": harness.DubboInterface}}},
		"route": m{"cluster_name": "upstream"},
	}
	cfg := m{
		"disable_upgrade": true,
		"servers": []any{m{
			"default_log_path":  "stdout",
			"default_log_level": "ERROR",
			"routers": []any{m{
				"router_config_name": "bench",
				"virtual_hosts":      []any{m{"name": "bench", "domains": []string{"*"}, "routers": []any{route}}},
			}},
			"listeners": []any{m{
				"name": "bench", "address": listen, "bind_port": true,
				"filter_chains": []any{m{"filters": []any{m{
					"type": "proxy",
					"config": m{
						"downstream_protocol": codec,
						"upstream_protocol":   codec,
						"router_config_name":  "bench",
					},
				}}}},
			}},
		}},
		"cluster_manager": m{"clusters": []any{m{
			"name": "upstream", "type": "SIMPLE", "lb_type": "LB_ROUNDROBIN",
			"hosts": []any{m{"address": upstream}},
		}}},
		"admin": m{"address": m{"socket_address": m{"address": "127.0.0.1", "port_value": admin}}},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// startMOSN starts MOSN in front of up.Main until the test ends. A
// protocol MOSN has no codec for, or a MOSN that does not build here,
// gives a reason to skip instead.
func startMOSN(t testing.TB, protocol string, up Upstreams) (Front, string) {
	t.Helper()
	codec, ok := mosnProtocols[protocol]
	if !ok {
		if protocol == "thrift" {
			return Front{}, mosnSkipThrift
		}
		return Front{}, "MOSN has no codec for " + protocol
	}
	bin, err := harness.BuildMOSN(t)
	if err != nil {
		t.Logf("MOSN: %v", err)
		return Front{}, "MOSN (test/peers/mosn) did not build: " + firstLine(err.Error())
	}
	addr, admin := harness.Addr(harness.FreePort(t)), harness.FreePort(t)
	b, err := mosnConfig(codec, addr, up.Main.Addr, admin)
	if err != nil {
		t.Fatal(err)
	}
	// MOSN puts its logs/ (mosn.pid) next to the directory of its config.
	conf := filepath.Join(t.TempDir(), "conf", "mosn.json")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	harness.StartListening(t, "mosn", addr, bin, "start", "-c", conf, "-l", "error")
	return Front{Addr: addr, PID: pidOf(t, addr), Stat: func(name string) (int64, error) { return mosnStat(admin, name) }}, ""
}

// mosnStat reads a counter of the listener "bench" from MOSN's admin
// /api/v1/stats ("downstream" metrics): "request" is its request_total.
func mosnStat(port int, name string) (int64, error) {
	key := map[string]string{"request": "request_total"}[name]
	if key == "" {
		return 0, fmt.Errorf("MOSN has no counter for %q", name)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/api/v1/stats", harness.Addr(port)))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var stats map[string]map[string]map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		return 0, fmt.Errorf("MOSN /api/v1/stats: %v", err)
	}
	v, ok := stats["downstream"]["listener.bench"][key]
	if !ok {
		return 0, fmt.Errorf("MOSN /api/v1/stats has no downstream listener.bench %s", key)
	}
	return strconv.ParseInt(v, 10, 64)
}
