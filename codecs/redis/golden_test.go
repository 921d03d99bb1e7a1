package redis

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codecs/redis/internal/golden"
)

// The golden files in testdata were recorded from redis-server 7.0.15,
// redis-cli and redis-benchmark by internal/gengolden (go run
// ./codecs/redis/internal/gengolden -out codecs/redis/testdata). What a
// frame must decode to comes from the server: COMMAND lists the known
// commands, COMMAND GETKEYS the keys, and replies were delimited by a
// sentinel PING, not by this codec.

// loadFile reads one golden session file.
func loadFile(tb testing.TB, name string) golden.File {
	tb.Helper()
	var f golden.File
	readJSON(tb, name, &f)
	if len(f.Exchanges) == 0 {
		tb.Fatalf("%s: no exchanges", name)
	}
	return f
}

func readJSON(tb testing.TB, name string, v any) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
}

// sessions are the golden files of exchanges on one connection.
var sessions = []string{"resp2.json", "resp3.json", "inline.json"}

// goldenExchanges returns every exchange of the session files.
func goldenExchanges(tb testing.TB) []golden.Exchange {
	var all []golden.Exchange
	for _, s := range sessions {
		all = append(all, loadFile(tb, s).Exchanges...)
	}
	return all
}

// goldenRequests and goldenResponses are the single frames of the
// goldens, for the conformance kit and the fuzzer's seeds.
func goldenRequests(tb testing.TB) (reqs [][]byte) {
	for _, e := range goldenExchanges(tb) {
		if e.RequestFrames <= 1 {
			reqs = append(reqs, e.Request)
		}
	}
	return reqs
}

func goldenResponses(tb testing.TB) (rsps [][]byte) {
	for _, e := range goldenExchanges(tb) {
		if e.Frames == 1 {
			rsps = append(rsps, e.Response)
		}
	}
	return rsps
}

func newTestFactory(tb testing.TB) *Factory {
	tb.Helper()
	f, err := NewFactory(Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// splitAll splits stream into frames with c, failing on leftovers.
func splitAll(tb testing.TB, c *Codec, stream []byte) [][]byte {
	tb.Helper()
	var frames [][]byte
	for len(stream) > 0 {
		n, err := c.Split(stream)
		if err != nil || n == 0 {
			tb.Fatalf("split after %d frames: n=%d err=%v in %.60q", len(frames), n, err, stream)
		}
		frames = append(frames, stream[:n])
		stream = stream[n:]
	}
	return frames
}

func decode(tb testing.TB, c *Codec, frame []byte) *codec.Message {
	tb.Helper()
	m := &codec.Message{Frame: frame}
	if err := c.Decode(frame, m); err != nil {
		tb.Fatalf("decode %.60q: %v", frame, err)
	}
	return m
}

// keyNames returns the keys of m by KeyPositions.
func keyNames(tb testing.TB, m *codec.Message) []string {
	args, err := Args(nil, m)
	if err != nil {
		tb.Fatal(err)
	}
	names := []string{}
	for _, p := range KeyPositions(nil, m) {
		names = append(names, string(args[p]))
	}
	return names
}

// TestGoldens decodes every recorded request as a client's codec does
// (both a NewCodec codec and a downstream one) and compares its method and
// keys with the server's; and every reply as an upstream codec does.
func TestGoldens(t *testing.T) {
	f := newTestFactory(t)
	for _, file := range sessions {
		for _, e := range loadFile(t, file).Exchanges {
			t.Run(file+"/"+e.Name, func(t *testing.T) {
				for _, side := range []codec.Side{codec.SideBoth, codec.SideDownstream} {
					c := f.NewCodecFor(side)
					reqs := splitAll(t, c, e.Request)
					if want := max(e.RequestFrames, 1); len(reqs) != want {
						t.Fatalf("side %d: %d request frames, want %d", side, len(reqs), want)
					}
					m := decode(t, c, reqs[0])
					switch {
					case e.Frames == 0:
						if m.Kind != codec.KindOneway {
							t.Errorf("side %d: a request Redis does not answer decoded as %v", side, m.Kind)
						}
					case m.Kind != codec.KindRequest:
						t.Errorf("side %d: kind %v", side, m.Kind)
					}
					if e.Method != "" && m.Meta.Value(codec.KeyMethod) != e.Method {
						t.Errorf("side %d: method %q, want %q", side, m.Meta.Value(codec.KeyMethod), e.Method)
					}
					if e.Keys != nil {
						if got := keyNames(t, m); !equalStrings(got, e.Keys) {
							t.Errorf("side %d: keys %q, COMMAND GETKEYS says %q", side, got, e.Keys)
						}
						key, ok := m.Meta.Get(KeyKey)
						if ok != (len(e.Keys) > 0) || (ok && key != e.Keys[0]) {
							t.Errorf("side %d: key %q (%v), want the first of %q", side, key, ok, e.Keys)
						}
					}
				}
				up := f.NewCodecFor(codec.SideUpstream)
				var rsps [][]byte
				if len(e.Response) > 0 {
					rsps = splitAll(t, up, e.Response)
				}
				if len(rsps) != e.Frames {
					t.Fatalf("%d reply frames, want %d", len(rsps), e.Frames)
				}
				for _, r := range rsps {
					m := decode(t, up, r)
					isErr := r[0] == '-' || r[0] == '!'
					if m.Kind != codec.KindResponse || (m.Status == codec.StatusError) != isErr || m.ID != 0 || m.Meta.Len() != 0 {
						t.Errorf("reply %.40q: kind %v status %v id %d meta %v", r, m.Kind, m.Status, m.ID, m.Meta.All())
					}
					if IsPush(m) != (r[0] == '>') {
						t.Errorf("reply %.40q: IsPush %v", r, IsPush(m))
					}
				}
			})
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGoldenLearnedSide: a NewCodec codec that has encoded a request (an
// upstream connection's) reads every recorded reply as a reply, even
// those shaped like commands (an MGET reply is an array of bulk strings).
func TestGoldenLearnedSide(t *testing.T) {
	f := newTestFactory(t)
	c := f.NewCodec().(*Codec)
	if _, err := c.Encode(nil, &codec.Message{Kind: codec.KindRequest, Frame: []byte("*1\r\n$4\r\nPING\r\n")}, nil); err != nil {
		t.Fatal(err)
	}
	if c.Side() != codec.SideUpstream {
		t.Fatalf("side %d after encoding a request", c.Side())
	}
	for _, e := range goldenExchanges(t) {
		if len(e.Response) == 0 {
			continue
		}
		for _, r := range splitAll(t, c, e.Response) {
			if m := decode(t, c, r); m.Kind != codec.KindResponse {
				t.Errorf("%s: reply decoded as %v", e.Name, m.Kind)
			}
		}
	}
	d := f.NewCodec().(*Codec)
	if _, err := d.Encode(nil, &codec.Message{Kind: codec.KindResponse, Frame: []byte("+OK\r\n")}, nil); err != nil || d.Side() != codec.SideDownstream {
		t.Fatalf("side %d after encoding a response (%v)", d.Side(), err)
	}
}

// TestGoldenRefused: what redis-server refuses, Split refuses, and the
// client gets the very reply redis-server sends before closing.
func TestGoldenRefused(t *testing.T) {
	f := newTestFactory(t)
	for _, e := range loadFile(t, "refused.json").Exchanges {
		c := f.NewCodecFor(codec.SideDownstream)
		_, err := c.Split(e.Request)
		if err == nil {
			t.Errorf("%s: %q accepted", e.Name, e.Request)
			continue
		}
		got := c.RejectReply(nil, e.Request, &codec.Error{Type: codec.ErrBadRequest, Message: err.Error()})
		if !bytes.Equal(got, e.Response) {
			t.Errorf("%s: reply %q, redis-server says %q", e.Name, got, e.Response)
		}
	}
}

// TestGoldenClients splits what redis-cli and redis-benchmark sent and
// what the server answered, connection by connection: every request
// decodes, and there are as many replies as requests.
func TestGoldenClients(t *testing.T) {
	f := newTestFactory(t)
	var cs golden.Clients
	readJSON(t, "clients.json", &cs)
	for _, r := range cs.Runs {
		requests := 0
		for _, conn := range r.Conns {
			down, up := f.NewCodecFor(codec.SideDownstream), f.NewCodecFor(codec.SideUpstream)
			reqs := splitAll(t, down, conn.Client)
			for _, q := range reqs {
				if m := decode(t, down, q); m.Kind != codec.KindRequest || lookup([]byte(m.Meta.Value(codec.KeyMethod))) == nil {
					t.Errorf("%s: %.40q decoded as %v %v", r.Name, q, m.Kind, m.Meta.All())
				}
			}
			rsps := splitAll(t, up, conn.Server)
			if len(rsps) != len(reqs) {
				t.Errorf("%s: %d requests, %d replies", r.Name, len(reqs), len(rsps))
			}
			requests += len(reqs)
		}
		if r.Requests != 0 && requests != r.Requests {
			t.Errorf("%s: %d requests, want %d", r.Name, requests, r.Requests)
		}
	}
}

// benchmarkPipeline returns the 16 GETs redis-benchmark -P 16 sent on one
// connection.
func benchmarkPipeline(tb testing.TB) []byte {
	var cs golden.Clients
	readJSON(tb, "clients.json", &cs)
	for _, r := range cs.Runs {
		for _, c := range r.Conns {
			if r.Name == "redis_benchmark_pipeline" && bytes.HasPrefix(c.Client, []byte("*2\r\n$3\r\nGET\r\n")) {
				return c.Client
			}
		}
	}
	tb.Fatal("no GET pipeline in clients.json")
	return nil
}
