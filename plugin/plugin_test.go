//go:build cgo

package main

// These tests drive the plugin's Go side with fakes of the SDK's callbacks;
// nothing here may reach Envoy's C functions, which the test binary lacks.
// The plugin against the real ABI is tested in test/abihost and test/e2e.

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	xds "github.com/cncf/xds/go/xds/type/v3"
	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metaproxy/metaproxy/transport"
)

// fakeLog is api.CommonCAPI recording what the plugin logs.
type fakeLog struct {
	mu    sync.Mutex
	level api.LogType
	lines []string
	by    []api.LogType
}

func (f *fakeLog) Log(l api.LogType, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = append(f.lines, msg)
	f.by = append(f.by, l)
}

func (f *fakeLog) LogLevel() api.LogType {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.level
}

func (f *fakeLog) take() ([]string, []api.LogType) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, b := f.lines, f.by
	f.lines, f.by = nil, nil
	return l, b
}

var logs = &fakeLog{level: api.Debug}

func TestMain(m *testing.M) {
	api.SetCommonCAPI(logs)
	os.Exit(m.Run())
}

func TestLogHandler(t *testing.T) {
	logs.take()
	l := logger.With("listener", "dubbo").WithGroup("req")
	l.Info("hello world", "method", "say hi", "n", 3, slog.Group("up", "addr", "10.0.0.1:20880"))
	l.Debug("debug line")
	l.Log(t.Context(), slog.LevelDebug-4, "trace line is below Envoy's level")
	l.Error("bad", "err", errors.New(`quote " here`))
	lines, levels := logs.take()
	want := []string{
		`hello world listener=dubbo req.method="say hi" req.n=3 req.up.addr=10.0.0.1:20880`,
		`debug line listener=dubbo`,
		`bad listener=dubbo req.err="quote \" here"`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if wantLv := []api.LogType{api.Info, api.Debug, api.Error}; len(levels) != 3 || levels[0] != wantLv[0] || levels[1] != wantLv[1] || levels[2] != wantLv[2] {
		t.Errorf("levels %v, want %v", levels, wantLv)
	}
}

const goodValue = `{
	"stat_prefix": "dubbo",
	"protocol": {"name": "dubbo", "codec": {"name": "aeraki.meta_protocol.codec.dubbo"}},
	"route_config": {"name": "r", "routes": [{"name": "all", "route": {"cluster": "c"}}]},
	"clusters": [{"name": "c", "type": "STATIC", "connect_timeout": "1s", "load_assignment": {"cluster_name": "c",
		"endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 20880}}}}]}]}}]
}`

func typedStruct(t *testing.T, typeURL, value string) *anypb.Any {
	t.Helper()
	v := &structpb.Struct{}
	if err := v.UnmarshalJSON([]byte(value)); err != nil {
		t.Fatal(err)
	}
	a, err := anypb.New(&xds.TypedStruct{TypeUrl: typeURL, Value: v})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseConfig(t *testing.T) {
	const proxyURL = "type.googleapis.com/aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy"
	structAny, err := anypb.New(&structpb.Struct{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		config  *anypb.Any
		wantErr string // empty: the config is good
	}{
		{"good", typedStruct(t, proxyURL, goodValue), ""},
		{"no type_url", typedStruct(t, "", goodValue), ""},
		{"missing", &anypb.Any{}, "plugin_config is missing"},
		{"not a TypedStruct", structAny, "plugin_config is a google.protobuf.Struct"},
		{"other message", typedStruct(t, "type.googleapis.com/envoy.config.cluster.v3.Cluster", goodValue), "type_url is"},
		{"unknown codec", typedStruct(t, proxyURL, strings.Replace(goodValue, "aeraki.meta_protocol.codec.dubbo", "nope", 1)), `unknown codec \"nope\"`},
		{"unknown field", typedStruct(t, proxyURL, strings.Replace(goodValue, `"stat_prefix"`, `"stat_prefixx"`, 1)), "stat_prefixx"},
		{"unknown cluster", typedStruct(t, proxyURL, strings.Replace(goodValue, `"cluster": "c"`, `"cluster": "d"`, 1)), `unknown cluster \"d\"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs.take()
			lc, ok := parser{}.ParseConfig(c.config).(*listenerConfig)
			if !ok {
				t.Fatal("ParseConfig did not return a *listenerConfig")
			}
			lines, _ := logs.take()
			if c.wantErr == "" {
				if lc.err != nil || lc.srv == nil {
					t.Fatalf("err %v, server %v", lc.err, lc.srv)
				}
				lc.srv.Close()
				return
			}
			if lc.err == nil || lc.srv != nil {
				t.Fatalf("a bad config was accepted: err %v, server %v", lc.err, lc.srv)
			}
			if len(lines) != 1 || !strings.Contains(lines[0], "invalid plugin_config") || !strings.Contains(lines[0], c.wantErr) {
				t.Errorf("logged %q, want one line naming %s", lines, c.wantErr)
			}
		})
	}
}

// fakeCallback is api.ConnectionCallback recording what the plugin asks.
type fakeCallback struct {
	mu         sync.Mutex
	writes     [][]byte
	closes     []api.ConnectionCloseType
	remote     string
	infoPanics bool
}

// fakeInfo answers UpstreamRemoteAddress, which on a downstream callback
// is the client's address; its other methods panic (nil embedded).
type fakeInfo struct {
	api.StreamInfo
	remote string
}

func (f fakeInfo) UpstreamRemoteAddress() (string, bool) { return f.remote, true }

func (f *fakeCallback) StreamInfo() api.StreamInfo {
	if f.infoPanics {
		panic("implement me") // as most of the SDK's StreamInfo does
	}
	return fakeInfo{remote: f.remote}
}

func (f *fakeCallback) Write(b []byte, _ bool) {
	if len(b) == 0 {
		panic("the SDK indexes buffer[0]")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, append([]byte(nil), b...))
}

func (f *fakeCallback) Close(t api.ConnectionCloseType) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes = append(f.closes, t)
}

func (f *fakeCallback) EnableHalfClose(bool) { panic("the plugin never enables half close") }

func TestBadConfigRefusesEachConnection(t *testing.T) {
	lc := factory{}.CreateFactoryFromConfig(&listenerConfig{err: errors.New("no codec")}).(*listenerConfig)
	logs.take()
	for range 2 {
		cb := &fakeCallback{remote: "10.1.1.1:4242"}
		f := lc.CreateFilter(cb)
		if st := f.OnNewConnection(); st != api.NetworkFilterStopIteration {
			t.Errorf("OnNewConnection = %v, want StopIteration", st)
		}
		f.OnData([]byte("bytes that must go nowhere"), false)
		f.OnEvent(api.LocalClose)
		if len(cb.closes) != 1 || cb.closes[0] != api.NoFlush || len(cb.writes) != 0 {
			t.Errorf("closes %v, writes %q: want one NoFlush close and nothing written", cb.closes, cb.writes)
		}
	}
	lines, _ := logs.take()
	if len(lines) != 2 || !strings.Contains(lines[0], "refusing connection") || !strings.Contains(lines[0], "no codec") || !strings.Contains(lines[0], "10.1.1.1:4242") {
		t.Errorf("logged %q, want one refusal per connection naming the peer and the error", lines)
	}
}

func TestForeignConfigIsRefused(t *testing.T) {
	lc := factory{}.CreateFactoryFromConfig("a config from another parser").(*listenerConfig)
	if lc.err == nil || !strings.Contains(lc.err.Error(), "string") {
		t.Errorf("err = %v, want one naming the foreign type", lc.err)
	}
}

func TestPanicIsContained(t *testing.T) {
	lc := parser{}.ParseConfig(typedStruct(t, "", goodValue)).(*listenerConfig)
	if lc.err != nil {
		t.Fatal(lc.err)
	}
	t.Cleanup(lc.srv.Close)
	logs.take()
	cb := &fakeCallback{infoPanics: true}
	if st := lc.CreateFilter(cb).OnNewConnection(); st != api.NetworkFilterStopIteration {
		t.Errorf("OnNewConnection = %v, want StopIteration", st)
	}
	if len(cb.closes) != 1 || cb.closes[0] != api.NoFlush {
		t.Errorf("closes %v, want one NoFlush", cb.closes)
	}
	lines, _ := logs.take()
	if len(lines) != 1 || !strings.Contains(lines[0], "panic contained") || !strings.Contains(lines[0], "implement me") {
		t.Errorf("logged %q, want the contained panic", lines)
	}
}

func TestConn(t *testing.T) {
	cb := &fakeCallback{}
	c := newConn(cb)
	if err := c.Write(nil); err != nil {
		t.Errorf("empty write: %v", err)
	}
	if err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	c.Close(true)
	c.Close(false)
	if err := c.Write([]byte("b")); !errors.Is(err, errClosed) {
		t.Errorf("write after close: %v, want errClosed", err)
	}
	c.detach()
	c.Close(true)
	if err := c.Write([]byte("c")); !errors.Is(err, errClosed) {
		t.Errorf("write after detach: %v, want errClosed", err)
	}
	if len(cb.writes) != 1 || string(cb.writes[0]) != "a" || len(cb.closes) != 1 || cb.closes[0] != api.FlushWrite {
		t.Errorf("writes %q closes %v: want a, then one FlushWrite close", cb.writes, cb.closes)
	}
}

// fakeHandler is transport.UpstreamHandler recording events.
type fakeHandler struct {
	conn    transport.Conn
	failure chan error
	data    []string
	closes  []error
}

func (h *fakeHandler) OnConnect(c transport.Conn) { h.conn = c }
func (h *fakeHandler) OnConnectFailure(err error) { h.failure <- err }
func (h *fakeHandler) OnData(b []byte)            { h.data = append(h.data, string(b)) }
func (h *fakeHandler) OnClose(err error)          { h.closes = append(h.closes, err) }

func TestDialRefusesWhatEnvoyCannotParse(t *testing.T) {
	for _, addr := range []string{"example.com:80", "10.0.0.1", "[fe80::1%eth0]:80", "10.0.0.1:99999"} {
		h := &fakeHandler{failure: make(chan error, 1)}
		dialer{}.Dial(addr, h) // reaching Envoy would crash the test binary
		if err := <-h.failure; err == nil || !strings.Contains(err.Error(), addr) {
			t.Errorf("dial %s: %v, want an error naming it", addr, err)
		}
	}
	for _, addr := range []string{"10.0.0.1:20880", "[::1]:20880"} {
		if err := literal(addr); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestUpstreamEvents(t *testing.T) {
	h := &fakeHandler{failure: make(chan error, 1)}
	u := &upstream{h: h, addr: "10.0.0.1:20880"}
	cb := &fakeCallback{}
	u.OnPoolReady(cb)
	if h.conn == nil {
		t.Fatal("no OnConnect")
	}
	u.OnData(nil, false)
	u.OnData([]byte("reply"), false)
	u.OnEvent(api.RemoteClose)
	u.OnEvent(api.LocalClose)
	if err := h.conn.Write([]byte("late")); !errors.Is(err, errClosed) {
		t.Errorf("write after close: %v, want errClosed", err)
	}
	if len(h.data) != 1 || h.data[0] != "reply" || len(h.closes) != 1 || !errors.Is(h.closes[0], errRemoteClose) {
		t.Errorf("data %q closes %v: want one reply and one remote close", h.data, h.closes)
	}

	h = &fakeHandler{failure: make(chan error, 1)}
	(&upstream{h: h, addr: "10.0.0.1:20880"}).OnPoolFailure(api.RemoteConnectionFailure, "refused")
	if err := <-h.failure; err == nil || !strings.Contains(err.Error(), "RemoteConnectionFailure") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("failure: %v", err)
	}
}
