package accesslog

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/api/envoy"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/filter/filtertest"
	"github.com/metaproxy/metaproxy/router"
)

const proxyBase = `
stat_prefix: test
protocol:
  name: dubbo
  codec:
    name: aeraki.meta_protocol.codec.dubbo
route_config:
  name: test
  routes:
  - name: r0
    route:
      cluster: c
`

// logsOf parses access_log entries given as YAML (the list items).
func logsOf(t testing.TB, yaml string) ([]*envoy.AccessLog, error) {
	t.Helper()
	p, err := api.ParseProxy([]byte(proxyBase + "access_log:\n" + yaml))
	if err != nil {
		return nil, err
	}
	return p.GetAccessLog(), nil
}

// fileLog is one file logger of path with a log_format given as YAML
// (indented for its place).
func fileLog(path, logFormat string) string {
	s := "- name: envoy.access_loggers.file\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n    path: " + path + "\n"
	if logFormat != "" {
		s += "    log_format:\n" + logFormat
	}
	return s
}

func inline(format string) string {
	b, _ := json.Marshal(format)
	return "      text_format_source:\n        inline_string: " + string(b) + "\n"
}

// exchange is a served request with every field an operator reads.
func exchange(t *testing.T) *filtertest.Call {
	h := filtertest.New(t)
	c := h.Run(filter.Func(func(*filter.Exchange) filter.Status { return filter.Continue }),
		"interface", "org.demo.Svc", "method", "sayHello", "x-request-id", "req-1")
	x := &c.X
	x.Start = time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)
	x.Route = &router.Route{Name: "r1"}
	x.Cluster, x.Upstream = "c1", "10.0.0.9:20880"
	x.Response = &codec.Message{Kind: codec.KindResponse}
	x.Response.Meta.Set("x-resp", "rv")
	x.SetRequestHeader("foo", "mutated")
	x.Outcome = filter.Outcome{End: x.Start.Add(1234 * time.Millisecond), Status: codec.StatusOK, Tries: 1, BytesIn: 100, BytesOut: 200}
	return c
}

func render(t *testing.T, format string, x *filter.Exchange) string {
	t.Helper()
	f, err := compileText(format)
	if err != nil {
		t.Fatalf("compile %q: %v", format, err)
	}
	return string(f.appendText(nil, &ctx{x: x, protocol: "dubbo"}, "-"))
}

func TestOperators(t *testing.T) {
	x := &exchange(t).X
	for _, tc := range []struct{ format, want string }{
		{"%START_TIME%", "2026-01-02T03:04:05.678Z"},
		{"%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%", "2026-01-02T03:04:05.678Z"},
		{"%START_TIME(%Y/%m/%d %H:%M:%S %z %6f %9f %f)%", "2026/01/02 03:04:05 +0000 678901 678901234 678901234"},
		{"%START_TIME(%s)%", "1767323045"},
		{"%START_TIME(%F %T %e %j %y %b %a %Z 100%%)%", "2026-01-02 03:04:05  2 002 26 Jan Fri UTC 100%"},
		{"%DURATION%", "1234"},
		{"%RESPONSE_FLAGS%", "-"},
		{"%RESPONSE_CODE%", "0"},
		{"%RESPONSE_CODE_DETAILS%", "via_upstream"},
		{"%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_CLUSTER_RAW% %ROUTE_NAME%", "10.0.0.9:20880 c1 c1 r1"},
		{"%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "10.1.2.3:4567 10.1.2.3"},
		{"%BYTES_RECEIVED% %BYTES_SENT% %UPSTREAM_REQUEST_ATTEMPT_COUNT%", "100 200 1"},
		{"%REQ(method)% %REQ(METHOD)% %REQ(nope)% %REQ(nope?method)% %REQ(method?interface)%", "sayHello sayHello - sayHello sayHello"},
		{"%REQ(method):3% %REQ(nope?interface):5% %RESP(X-RESP)% %RESP(method)%", "say org.d rv -"},
		{"%REQ(foo)% %METADATA(interface)% %METADATA(foo)%", "mutated org.demo.Svc -"},
		{"%PROTOCOL%", "dubbo"},
		{"%UPSTREAM_TRANSPORT_FAILURE_REASON% %CONNECTION_TERMINATION_DETAILS% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %REQUESTED_SERVER_NAME%", "- - - - -"},
		{"100%% [%REQ(:AUTHORITY)%]", "100% [-]"},
	} {
		if got := render(t, tc.format, x); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.format, got, tc.want)
		}
	}
}

func TestOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name               string
		o                  filter.Outcome
		resp               bool
		code, flags, detai string
	}{
		{"ok", filter.Outcome{Status: codec.StatusOK}, true, "0", "-", "via_upstream"},
		{"callee exception", filter.Outcome{Status: codec.StatusError}, true, "1", "-", "via_upstream"},
		{"no route", filter.Outcome{Local: true, ErrorType: codec.ErrRouteNotFound}, false, "1", "NR", "route_not_found"},
		{"upstream down", filter.Outcome{Local: true, ErrorType: codec.ErrUnavailable}, false, "1", "UF", "unavailable"},
		{"timeout", filter.Outcome{Local: true, ErrorType: codec.ErrTimeout}, false, "1", "UT", "timeout"},
		{"rate limited", filter.Outcome{Local: true, ErrorType: codec.ErrOverloaded, Flags: filter.FlagRateLimited}, false, "1", "RL", "overloaded"},
		{"oneway", filter.Outcome{Oneway: true}, false, "0", "-", "via_upstream"},
		{"client gone", filter.Outcome{ClientGone: true}, false, "1", "DC", "downstream_remote_disconnect"},
	} {
		x := &exchange(t).X
		x.Outcome = tc.o
		if !tc.resp {
			x.Response = nil
		}
		want := tc.code + " " + tc.flags + " " + tc.detai
		if got := render(t, "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%", x); got != want {
			t.Errorf("%s: %q, want %q", tc.name, got, want)
		}
	}
	// A request answered before routing: no route, cluster, upstream.
	h := filtertest.New(t)
	c := h.Run(filter.Func(func(*filter.Exchange) filter.Status { return filter.Continue }))
	c.X.Start = time.Time{}
	if got := render(t, "%ROUTE_NAME% %UPSTREAM_CLUSTER% %UPSTREAM_HOST% %DURATION% %START_TIME% %RESP(a)% %BYTES_SENT%", &c.X); got != "- - - - - - 0" {
		t.Errorf("unrouted exchange: %q", got)
	}
}

func TestWithoutPort(t *testing.T) {
	for in, want := range map[string]string{"1.2.3.4:5": "1.2.3.4", "[::1]:80": "::1", "::1": "::1", "host": "host", "": ""} {
		if got := withoutPort(in); got != want {
			t.Errorf("withoutPort(%q) = %q, want %q", in, got, want)
		}
	}
}

// IstioFormat is Istio's default text access log format (1.20 and later;
// earlier releases say %UPSTREAM_CLUSTER%).
const IstioFormat = `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%` + "\n"

func TestIstioAndAerakiDefaults(t *testing.T) {
	x := &exchange(t).X
	want := `[2026-01-02T03:04:05.678Z] "- - dubbo" 0 - via_upstream - "-" 100 200 1234 - "-" "-" "req-1" "-" "10.0.0.9:20880" c1 - - 10.1.2.3:4567 - r1` + "\n"
	if got := render(t, IstioFormat, x); got != want {
		t.Errorf("Istio's format:\n got %q\nwant %q", got, want)
	}
	if got := render(t, strings.ReplaceAll(IstioFormat, "%UPSTREAM_CLUSTER_RAW%", "%UPSTREAM_CLUSTER%"), x); got != want {
		t.Errorf("Istio's older format:\n got %q\nwant %q", got, want)
	}
	x.Request.Meta.Set("x-meta-protocol-application-protocol", "dubbo")
	want = `[2026-01-02T03:04:05.678Z] dubbo 0 via_upstream - "-" 100 200 1234 "-" "req-1" c1 - - 10.1.2.3:4567 r1` + "\n"
	if got := render(t, DefaultFormat, x); got != want {
		t.Errorf("Aeraki's default format:\n got %q\nwant %q", got, want)
	}
}

func TestJSON(t *testing.T) {
	x := &exchange(t).X
	x.Request.Meta.Set("quote", "a\"b\\c\n\x01é")
	m := map[string]any{
		"start_time": "%START_TIME%", "duration": "%DURATION%", "bytes_received": "%BYTES_RECEIVED%",
		"bytes_sent": "%BYTES_SENT%", "response_code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%",
		"missing": "%REQ(nope)%", "mixed": "m=%REQ(method)% n=%REQ(nope)%", "quote": "%REQ(quote)%",
		"short": "%REQ(method):3%", "const": 7.0, "yes": true,
		"nested": map[string]any{"route": "%ROUTE_NAME%", "authority": "%REQ(:AUTHORITY)%"},
	}
	jf, err := compileJSON(m, "json_format")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jf.appendJSON(nil, nil, &ctx{x: x, protocol: "dubbo"}, false)
	want := `{"bytes_received":100,"bytes_sent":200,"const":7,"duration":1234,"flags":"-","missing":null,"mixed":"m=sayHello n=-",` +
		`"nested":{"authority":null,"route":"r1"},"quote":"a\"b\\c\n\u0001é","response_code":0,"short":"say","start_time":"2026-01-02T03:04:05.678Z","yes":true}`
	if string(out) != want {
		t.Errorf("JSON:\n got %s\nwant %s", out, want)
	}
	var back map[string]any
	if err := json.Unmarshal(out, &back); err != nil {
		t.Errorf("output is not JSON: %v", err)
	}
	out, _ = jf.appendJSON(nil, nil, &ctx{x: x}, true)
	if strings.Contains(string(out), "missing") || strings.Contains(string(out), "authority") || !strings.Contains(string(out), `"mixed":"m=sayHello n="`) {
		t.Errorf("omit_empty_values: %s", out)
	}
}

// readLines polls path until it holds n lines (5 s at most).
func readLines(t *testing.T, path string, n int) []string {
	t.Helper()
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		lines = strings.SplitAfter(string(b), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		if len(lines) >= n || time.Now().After(deadline) {
			break
		}
	}
	if len(lines) != n {
		t.Fatalf("%s has %d lines, want %d: %q", path, len(lines), n, lines)
	}
	return lines
}

func newFilter(t *testing.T, h *filtertest.Harness, yaml string) *Filter {
	t.Helper()
	logs, err := logsOf(t, yaml)
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(logs, "dubbo", h.Env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestFileLoggers(t *testing.T) {
	h := filtertest.New(t)
	dir := t.TempDir()
	text, js, dflt := filepath.Join(dir, "text.log"), filepath.Join(dir, "json.log"), filepath.Join(dir, "default.log")
	if err := os.WriteFile(text, []byte("old line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFilter(t, h, fileLog(text, inline("%REQ(method)% %RESPONSE_CODE%"))+ // no newline: one is added
		fileLog(js, "      json_format:\n        method: '%REQ(method)%'\n        d: '%DURATION%'\n")+
		fileLog(dflt, "")+
		"- name: envoy.access_loggers.file\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n    path: "+text+"\n    format: \"deprecated %REQ(method)%\\n\"\n")
	if got := f.OnRequest(&filter.Exchange{}); got != filter.Continue {
		t.Fatalf("OnRequest = %v, want Continue", got)
	}
	for _, m := range []string{"a", "b"} {
		c := h.Run(f, "method", m)
		h.Clock.Advance(5 * time.Millisecond)
		c.Complete(filter.Outcome{End: h.Clock.Now(), Status: codec.StatusOK})
	}
	f.Close() // flushes
	lines := readLines(t, text, 5)
	if lines[0] != "old line\n" || !sameSet(lines[1:], []string{"a 1\n", "deprecated a\n", "b 1\n", "deprecated b\n"}) {
		t.Errorf("text log (appended to): %q", lines)
	}
	if lines := readLines(t, js, 2); lines[0] != `{"d":5,"method":"a"}`+"\n" || lines[1] != `{"d":5,"method":"b"}`+"\n" {
		t.Errorf("JSON log: %q", lines)
	}
	if lines := readLines(t, dflt, 2); !strings.HasPrefix(lines[0], "[2026-01-01T00:00:00.000Z] - 1 via_upstream - \"-\" 0 0 5 ") {
		t.Errorf("default format: %q", lines)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	n := map[string]int{}
	for _, s := range a {
		n[s]++
	}
	for _, s := range b {
		if n[s]--; n[s] < 0 {
			return false
		}
	}
	return true
}

func TestSharedWriter(t *testing.T) {
	h := filtertest.New(t)
	path := filepath.Join(t.TempDir(), "shared.log")
	f1 := newFilter(t, h, fileLog(path, inline("one %REQ(n)%\n")))
	f2 := newFilter(t, h, fileLog(path, inline("two %REQ(n)%\n")))
	writers.mu.Lock()
	w := writers.m[path]
	refs := 0
	if w != nil {
		refs = w.refs
	}
	writers.mu.Unlock()
	if refs != 2 || f1.sinks[0].w != f2.sinks[0].w {
		t.Fatalf("two loggers of one path: refs %d, shared %v", refs, f1.sinks[0].w == f2.sinks[0].w)
	}
	f1.Close()
	f1.Close()                                     // idempotent
	h.Run(f2, "n", "1").Complete(filter.Outcome{}) // the writer lives on for f2
	f2.Close()
	if lines := readLines(t, path, 1); lines[0] != "two 1\n" {
		t.Errorf("after the first Close: %q", lines)
	}
	writers.mu.Lock()
	_, open := writers.m[path]
	writers.mu.Unlock()
	if open {
		t.Error("the writer is still registered after the last Close")
	}
}

func TestStdout(t *testing.T) {
	logs, err := logsOf(t, "- name: envoy.access_loggers.stdout\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog\n")
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := parse(logs)
	if err != nil || cfgs[0].path != "/dev/stdout" || cfgs[0].text == nil {
		t.Fatalf("stdout logger: %+v, %v", cfgs, err)
	}
}

// TestDropOnFull: a writer blocked on a full pipe never blocks
// OnComplete; lines beyond the queue are dropped and counted, and Close
// flushes the queue once the pipe is read.
func TestDropOnFull(t *testing.T) {
	h := filtertest.New(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	logs, err := logsOf(t, fileLog("/pipe/under-test", inline("%REQ(n)% xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")))
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := parse(logs)
	if err != nil {
		t.Fatal(err)
	}
	f, err := build(cfgs, "dubbo", h.Env, func(string) (io.Writer, io.Closer, error) { return w, w, nil })
	if err != nil {
		t.Fatal(err)
	}
	// A pipe holds 64 KiB: 80-byte lines fill it and then the queue.
	const n = 3 * QueueLen
	start := time.Now()
	for i := range n {
		c := h.Run(f, "n", "x")
		_ = i
		c.Complete(filter.Outcome{})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d OnComplete calls took %v with the writer blocked", n, d)
	}
	dropped := h.Stats.Value("test.access_log.dropped")
	if dropped == 0 || dropped > n-QueueLen {
		t.Fatalf("access_log.dropped = %d, want between 1 and %d", dropped, n-QueueLen)
	}
	read := make(chan int64)
	go func() {
		b, _ := io.ReadAll(r)
		read <- int64(strings.Count(string(b), "\n"))
	}()
	f.Close() // flushes into the pipe, now read, then closes it
	select {
	case lines := <-read:
		if lines+dropped != n {
			t.Errorf("%d lines written + %d dropped, want %d in all", lines, dropped, n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pipe was not closed by Close")
	}
}

func TestConfigErrors(t *testing.T) {
	file := "'@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown operator", fileLog("/tmp/x", inline("%FOO%")), "access_log[0].typed_config.log_format.text_format_source: unknown command operator %FOO%"},
		{"no argument", fileLog("/tmp/x", inline("%REQ%")), "%REQ% needs an argument"},
		{"empty argument", fileLog("/tmp/x", inline("%REQ()%")), "%REQ% needs an argument"},
		{"unexpected argument", fileLog("/tmp/x", inline("%DURATION(x)%")), "%DURATION% takes no argument"},
		{"bad length", fileLog("/tmp/x", inline("%REQ(a):x%")), "bad length"},
		{"unterminated", fileLog("/tmp/x", inline("%REQ(a")), "unterminated argument"},
		{"no closing", fileLog("/tmp/x", inline("%DURATION")), "no closing %"},
		{"lone percent", fileLog("/tmp/x", inline("50% off")), "does not start a command operator"},
		{"bad time", fileLog("/tmp/x", inline("%START_TIME(%Q)%")), "unsupported conversion %Q"},
		{"bad alternative", fileLog("/tmp/x", inline("%REQ(a?b?c)%")), "key or key?alternative"},
		{"json operator", fileLog("/tmp/x", "      json_format:\n        a: '%NOPE%'\n"), "access_log[0].typed_config.log_format.json_format.a: unknown command operator %NOPE%"},
		{"json list", fileLog("/tmp/x", "      json_format:\n        a: [1]\n"), "json_format.a: a []interface {} value is not supported"},
		{"empty log_format", fileLog("/tmp/x", "      omit_empty_values: true\n"), "log_format: text_format_source, text_format or json_format is required"},
		{"unknown logger", "- name: envoy.access_loggers.syslog\n  typed_config:\n    " + file + "\n    path: /tmp/x\n", "access_log[0].name: unknown access logger"},
		{"mismatched logger", "- name: envoy.access_loggers.stdout\n  typed_config:\n    " + file + "\n    path: /tmp/x\n", "does not match typed_config, a FileAccessLog"},
		{"no typed_config", "- name: envoy.access_loggers.file\n", "access_log[0].typed_config: value is required"},
		{"second logger", fileLog("/tmp/x", "") + fileLog("/tmp/y", inline("%BAD%")), "access_log[1].typed_config"},
	} {
		logs, err := logsOf(t, tc.yaml)
		if err == nil {
			_, err = parse(logs)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	// An output that cannot be opened.
	logs, _ := logsOf(t, fileLog(filepath.Join(t.TempDir(), "no", "such", "dir"), ""))
	if _, err := New(logs, "dubbo", filtertest.New(t).Env); err == nil || !strings.Contains(err.Error(), "access_log[0]: opening") {
		t.Errorf("unopenable path: %v", err)
	}
}

func BenchmarkOnComplete(b *testing.B) {
	for _, bc := range []struct{ name, yaml string }{
		{"text", inline(IstioFormat)},
		{"json", "      json_format:\n        start_time: '%START_TIME%'\n        method: '%REQ(method)%'\n        code: '%RESPONSE_CODE%'\n" +
			"        flags: '%RESPONSE_FLAGS%'\n        duration: '%DURATION%'\n        upstream: '%UPSTREAM_HOST%'\n        cluster: '%UPSTREAM_CLUSTER%'\n" +
			"        bytes_sent: '%BYTES_SENT%'\n        request_id: '%REQ(x-request-id)%'\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := filtertest.New(b)
			logs, err := logsOf(b, fileLog(filepath.Join(b.TempDir(), "bench.log"), bc.yaml))
			if err != nil {
				b.Fatal(err)
			}
			f, err := New(logs, "dubbo", h.Env)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			c := h.Run(f, "interface", "org.demo.Svc", "method", "sayHello", "x-request-id", "5f1e2d3c-aaaa-bbbb")
			c.X.Route, c.X.Cluster, c.X.Upstream = &router.Route{Name: "r1"}, "outbound|20880||demo", "10.0.0.9:20880"
			c.X.Response = &codec.Message{Kind: codec.KindResponse}
			c.X.Outcome = filter.Outcome{End: c.X.Start.Add(3 * time.Millisecond), Tries: 1, BytesIn: 180, BytesOut: 90}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				f.OnComplete(&c.X)
			}
			b.StopTimer()
			b.ReportMetric(float64(h.Stats.Value("test.access_log.dropped")), "dropped")
		})
	}
}
