package e2e

// Access logs through every host, with a dubbo-go provider and an Apache
// Thrift backend: a mix of good calls, a callee exception, a call no route
// matches, a call while the upstream is down, a timeout, a oneway call and
// a client that goes away before its answer each make exactly one line,
// with the right code, flags and details, in Envoy's text format and in
// its JSON format.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
	thriftpeer "github.com/metaproxy/metaproxy/test/peers/thrift"
)

const fileAccessLogType = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"

// alFields are the fields every test line carries; a call is named by its
// x-call attachment (Dubbo) or its service (Thrift).
var alFields = [][2]string{
	{"call", "%REQ(x-call?interface)%"}, {"code", "%RESPONSE_CODE%"}, {"flags", "%RESPONSE_FLAGS%"},
	{"details", "%RESPONSE_CODE_DETAILS%"}, {"route", "%ROUTE_NAME%"}, {"cluster", "%UPSTREAM_CLUSTER%"},
	{"protocol", "%PROTOCOL%"}, {"duration", "%DURATION%"}, {"bytes_received", "%BYTES_RECEIVED%"},
	{"bytes_sent", "%BYTES_SENT%"}, {"start", "%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%"},
}

// accessLog is the access_log of a file logger at path, in text or JSON.
func accessLog(path string, jsonFormat bool) map[string]any {
	var lf map[string]any
	if jsonFormat {
		m := map[string]any{}
		for _, f := range alFields {
			m[f[0]] = f[1]
		}
		lf = map[string]any{"json_format": m}
	} else {
		ops := make([]string, len(alFields))
		for i, f := range alFields {
			ops[i] = f[1]
		}
		lf = map[string]any{"text_format_source": map[string]any{"inline_string": strings.Join(ops, "|") + "\n"}}
	}
	return map[string]any{"access_log": []any{map[string]any{"name": "envoy.access_loggers.file",
		"typed_config": map[string]any{"@type": fileAccessLogType, "path": path, "log_format": lf}}}}
}

// alLine is a parsed access log line.
type alLine struct {
	call, code, flags, details, route, cluster, protocol string
	duration, in, out                                    int64
	start                                                time.Time
	raw                                                  string
}

// key is what a call is expected to log.
func (l alLine) key() string {
	return strings.Join([]string{l.call, l.code, l.flags, l.details, l.route, l.cluster}, " ")
}

func parseALLine(t *testing.T, s string, jsonFormat bool) alLine {
	t.Helper()
	vals := map[string]string{}
	if jsonFormat {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("access log line %q is not JSON: %v", s, err)
		}
		for k, v := range m {
			switch v := v.(type) {
			case nil:
				vals[k] = "-"
			case string:
				if k == "duration" || k == "bytes_received" || k == "bytes_sent" || k == "code" {
					t.Errorf("%s is a string (%q) in %s, want a number as Envoy writes it", k, v, s)
				}
				vals[k] = v
			case float64:
				vals[k] = strconv.FormatInt(int64(v), 10)
			default:
				t.Errorf("field %s has type %T in %s", k, v, s)
			}
		}
	} else {
		parts := strings.Split(s, "|")
		if len(parts) != len(alFields) {
			t.Fatalf("access log line %q has %d fields, want %d", s, len(parts), len(alFields))
		}
		for i, f := range alFields {
			vals[f[0]] = parts[i]
		}
	}
	num := func(k string) int64 {
		n, err := strconv.ParseInt(vals[k], 10, 64)
		if err != nil {
			t.Errorf("%s = %q in %q: not a number", k, vals[k], s)
		}
		return n
	}
	start, err := time.Parse("2006-01-02T15:04:05.000Z", vals["start"])
	if err != nil {
		t.Errorf("start %q in %q: %v", vals["start"], s, err)
	}
	return alLine{call: vals["call"], code: vals["code"], flags: vals["flags"], details: vals["details"], route: vals["route"],
		cluster: vals["cluster"], protocol: vals["protocol"], duration: num("duration"), in: num("bytes_received"),
		out: num("bytes_sent"), start: start, raw: s}
}

// alLines returns the complete lines of the file at path.
func alLines(path string) []string {
	b, _ := os.ReadFile(path)
	s := string(b)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// checkAccessLog waits until path has as many lines as want has keys
// (with their counts), checks that no more arrive, and returns the lines
// by key.
func checkAccessLog(t *testing.T, path string, jsonFormat bool, protocol string, want map[string]int, since time.Time) map[string][]alLine {
	t.Helper()
	n := 0
	for _, c := range want {
		n += c
	}
	if !harness.WaitFor(t, 20*time.Second, func() bool { return len(alLines(path)) >= n }) {
		t.Fatalf("the access log has %d lines after 20 s, want %d:\n%s", len(alLines(path)), n, strings.Join(alLines(path), "\n"))
	}
	// Every exchange has ended by now: no line may follow.
	time.Sleep(time.Second)
	lines := alLines(path)
	if len(lines) != n {
		t.Errorf("the access log has %d lines, want exactly %d (one per call)", len(lines), n)
	}
	got := map[string][]alLine{}
	for _, s := range lines {
		l := parseALLine(t, s, jsonFormat)
		got[l.key()] = append(got[l.key()], l)
		if l.protocol != protocol || l.in <= 0 || l.duration < 0 || l.start.Before(since.Add(-time.Second)) || l.start.After(time.Now()) {
			t.Errorf("line %q: want protocol %s, bytes received > 0, a duration and a start time of this test", s, protocol)
		}
	}
	for k, c := range want {
		if len(got[k]) != c {
			t.Errorf("%d lines %q, want %d", len(got[k]), k, c)
		}
	}
	for k, ls := range got {
		if want[k] == 0 {
			t.Errorf("unexpected line %q (%d of them)", ls[0].raw, len(ls))
		}
	}
	if t.Failed() {
		t.Logf("access log:\n%s", strings.Join(lines, "\n"))
	}
	return got
}

// rstClose closes c with a reset: the proxy sees the client go away at
// once, not a half-close it would answer.
func rstClose(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

func TestAccessLogDubbo(t *testing.T) {
	t.Parallel()
	for _, px := range harness.Proxies() {
		for _, jsonFormat := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/json=%v", px.Name(), jsonFormat), func(t *testing.T) {
				t.Parallel()
				// A provider of its own: the subtest counts its sleeps.
				testAccessLogDubbo(t, px, harness.StartDubboProvider(t, "al"), jsonFormat)
			})
		}
	}
}

func testAccessLogDubbo(t *testing.T, px harness.Proxy, p *harness.DubboProvider, jsonFormat bool) {
	path := filepath.Join(t.TempDir(), "access.log")
	b := dubboTraffic(t, []harness.Route{
		{Name: "down", Match: []harness.Match{ifaceMatch, harness.Exact("x-route", "down")}, Cluster: "down"},
		{Name: "gone", Match: []harness.Match{ifaceMatch, methodMatch("sleep"), harness.Exact("x-route", "gone")}, Cluster: "p",
			Extra: map[string]any{"timeout": "10s"}},
		{Name: "sleep", Match: []harness.Match{ifaceMatch, methodMatch("sleep")}, Cluster: "p", Extra: map[string]any{"timeout": "0.5s"}},
		{Name: "hello", Match: []harness.Match{ifaceMatch}, Cluster: "p"},
	}, accessLog(path, jsonFormat),
		harness.Cluster{Name: "p", Endpoints: []string{p.Addr()}},
		harness.Cluster{Name: "down", Endpoints: []string{harness.Addr(harness.FreePort(t))}}) // nobody listens
	start := time.Now()
	addr, _ := trafficStart(t, px, b)
	c := dialRaw(t, addr)
	tagged := func(req rawdubbo.Call, kv ...string) rawdubbo.Call {
		req.Attachments = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			req.Attachments[kv[i]] = kv[i+1]
		}
		return req
	}
	peaks := 0
	sleepPeak := func() int {
		peaks++
		r := call(t, c, tagged(rawdubbo.Call{Interface: harness.DubboInterface, Method: "sleepPeak"}, "x-call", "peak"))
		n, _ := strconv.Atoi(r.String())
		return n
	}

	// A client that goes away while its call sleeps at the provider.
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := rawdubbo.EncodeRequest(1, tagged(sleepCall(1500), "x-call", "gone", "x-route", "gone"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	if !harness.WaitFor(t, 10*time.Second, func() bool { return sleepPeak() > 0 }) {
		t.Fatal("the call of the client that goes away never reached the provider")
	}
	rstClose(nc.(*net.TCPConn))

	for i := range 3 {
		name := fmt.Sprintf("good-%d", i)
		if r := call(t, c, tagged(sayHello(name), "x-call", "good")); r.String() != p.HelloFrom(name) {
			t.Errorf("sayHello: %q", r.String())
		}
	}
	if r := call(t, c, tagged(rawdubbo.Call{Interface: harness.DubboInterface, Method: "fail", Args: []any{"kaput"}}, "x-call", "exception")); r.OK() {
		t.Errorf("fail: %q, want an exception", r.String())
	}
	if r := call(t, c, tagged(rawdubbo.Call{Interface: "org.example.Nope", Method: "sayHello", Args: []any{"x"}}, "x-call", "noroute")); r.OK() {
		t.Errorf("call no route matches: %q, want an error", r.String())
	}
	if r := call(t, c, tagged(sayHello("down"), "x-call", "down", "x-route", "down")); r.OK() {
		t.Errorf("call to a closed port: %q, want an error", r.String())
	}
	if r := call(t, c, tagged(sleepCall(2000), "x-call", "timeout")); r.Status != 31 {
		t.Errorf("sleep(2000) on a 0.5 s route: %q (status %d), want a timeout", r.String(), r.Status)
	}
	if err := c.Send(tagged(rawdubbo.Call{Interface: harness.DubboInterface, Method: "note", Args: []any{"al"}}, "x-call", "oneway")); err != nil {
		t.Fatal(err)
	}

	got := checkAccessLog(t, path, jsonFormat, "dubbo", map[string]int{
		"peak 0 - via_upstream hello p":                 peaks,
		"good 0 - via_upstream hello p":                 3,
		"exception 1 - via_upstream hello p":            1,
		"noroute 1 NR route_not_found - -":              1,
		"down 1 UF unavailable down down":               1,
		"timeout 1 UT timeout sleep p":                  1,
		"oneway 0 - via_upstream hello p":               1,
		"gone 1 DC downstream_remote_disconnect gone p": 1,
	}, start)
	for _, l := range got["timeout 1 UT timeout sleep p"] {
		if l.duration < 400 || l.duration > 3000 {
			t.Errorf("timeout line: duration %d ms, want the route's 0.5 s", l.duration)
		}
	}
	for _, k := range []string{"good 0 - via_upstream hello p", "exception 1 - via_upstream hello p", "noroute 1 NR route_not_found - -"} {
		for _, l := range got[k] {
			if l.out <= 0 {
				t.Errorf("line %q: bytes sent %d, want the answer's size", l.raw, l.out)
			}
		}
	}
	for _, k := range []string{"oneway 0 - via_upstream hello p", "gone 1 DC downstream_remote_disconnect gone p"} {
		for _, l := range got[k] {
			if l.out != 0 {
				t.Errorf("line %q: bytes sent %d, want 0 (no answer)", l.raw, l.out)
			}
		}
	}
}

// thriftCall is a framed binary call of method with one string argument.
func thriftCall(method, arg string, seq int32) []byte {
	var body []byte
	body = binary.BigEndian.AppendUint32(body, 0x80010001) // version 1, CALL
	body = binary.BigEndian.AppendUint32(body, uint32(len(method)))
	body = append(body, method...)
	body = binary.BigEndian.AppendUint32(body, uint32(seq))
	body = append(body, 11, 0, 1) // field 1, a string
	body = binary.BigEndian.AppendUint32(body, uint32(len(arg)))
	body = append(body, arg...)
	body = append(body, 0) // stop
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestAccessLogThrift(t *testing.T) {
	t.Parallel()
	b := startThriftBackend(t, "al", withDelay(3*time.Second), delayOnly("slow"))
	for _, px := range harness.Proxies() {
		for _, jsonFormat := range []bool{false, true} {
			name := fmt.Sprintf("%s/json=%v", px.Name(), jsonFormat)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				testAccessLogThrift(t, px, b, jsonFormat, "slow-gone-"+name)
			})
		}
	}
}

func testAccessLogThrift(t *testing.T, px harness.Proxy, b *thriftBackend, jsonFormat bool, goneName string) {
	path := filepath.Join(t.TempDir(), "access.log")
	svc := func(s string) []harness.Match { return []harness.Match{harness.Exact("interface", s)} }
	bs := thriftTraffic(t, []harness.Route{
		{Name: "down", Match: svc("Hole"), Cluster: "down"},
		{Name: "gone", Match: svc("Long"), Cluster: "b", Extra: map[string]any{"timeout": "10s"}},
		{Name: "slow", Match: svc("Solo"), Cluster: "b", Extra: map[string]any{"timeout": "0.5s"}},
		{Name: "hello", Match: svc("Hello"), Cluster: "b"},
	}, merge(accessLog(path, jsonFormat), map[string]any{"protocol": map[string]any{
		"name": "thrift", "multiplexing": true, "codec": map[string]any{
			"name": "aeraki.meta_protocol.codec.thrift",
			// The Apache Go client sends its oneway ping as a CALL.
			"config": map[string]any{"@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
				"type_url": "type.googleapis.com/metaproxy.codecs.thrift.Config",
				"value":    map[string]any{"oneway_methods": []string{"ping"}}},
		}}}), backendCluster("b", b),
		harness.Cluster{Name: "down", Endpoints: []string{harness.Addr(harness.FreePort(t))}})
	start := time.Now()
	addr, _ := trafficStart(t, px, bs)
	ctx := context.Background()

	// A client that goes away while the backend delays its answer.
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(thriftCall("Long:sayHello", goneName, 1)); err != nil {
		t.Fatal(err)
	}
	if !harness.WaitFor(t, 10*time.Second, func() bool { n, _ := b.helloCount(goneName); return n > 0 }) {
		t.Fatal("the call of the client that goes away never reached the backend")
	}
	rstClose(nc.(*net.TCPConn))

	hello := dialThrift(t, addr, framedBinary, "Hello")
	for i := range 3 {
		name := fmt.Sprintf("good-%d", i)
		if r, err := hello.SayHello(ctx, name); err != nil || r != b.reply(name) {
			t.Errorf("sayHello: %q, %v", r, err)
		}
	}
	if _, err := hello.SayHello(ctx, thriftpeer.ErrorName); err == nil {
		t.Error("sayHello(error): no exception")
	}
	if err := hello.Ping(ctx, "al"); err != nil {
		t.Fatal(err)
	}
	if _, err := dialThrift(t, addr, framedBinary, "Greeter").SayHello(ctx, "x"); appException(err) == nil {
		t.Errorf("call no route matches: %v, want a TApplicationException", err)
	}
	if _, err := dialThrift(t, addr, framedBinary, "Hole").SayHello(ctx, "x"); appException(err) == nil {
		t.Errorf("call to a closed port: %v, want a TApplicationException", err)
	}
	if _, err := dialThrift(t, addr, framedBinary, "Solo").SayHello(ctx, "slow-timeout"); appException(err) == nil {
		t.Errorf("call on a 0.5 s route the backend answers after 3 s: %v, want a TApplicationException", err)
	}

	got := checkAccessLog(t, path, jsonFormat, "thrift", map[string]int{
		"Hello 0 - via_upstream hello b":                4, // 3 sayHello, 1 oneway ping
		"Hello 1 - via_upstream hello b":                1,
		"Greeter 1 NR route_not_found - -":              1,
		"Hole 1 UF unavailable down down":               1,
		"Solo 1 UT timeout slow b":                      1,
		"Long 1 DC downstream_remote_disconnect gone b": 1,
	}, start)
	for _, l := range got["Solo 1 UT timeout slow b"] {
		if l.duration < 400 || l.duration > 3000 {
			t.Errorf("timeout line: duration %d ms, want the route's 0.5 s", l.duration)
		}
	}
	if ls := got["Hello 0 - via_upstream hello b"]; len(ls) == 4 {
		oneway := 0
		for _, l := range ls {
			if l.out == 0 {
				oneway++
			}
		}
		if oneway != 1 {
			t.Errorf("%d of the 4 good lines sent no bytes, want 1 (the oneway ping)", oneway)
		}
	}
}
