package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/codec"
)

// The kv codec's stream frames (memhost_test.go): 7 INIT, 11 refused
// INIT, 8 DATA, 9 CLOSE, 10 reset; the id is the stream id.

type streamingFactory struct{ codec.Factory }

func (streamingFactory) Capabilities() codec.Capabilities { return codec.Capabilities{Streams: true} }

// streamEnv is newTestEnv with a streaming kv codec, and servers a and b
// answering streams as chatServer does.
func streamEnv(t *testing.T, mux bool, edit func(*Config)) *testEnv {
	t.Helper()
	e := newTestEnvWith(t, mux, func(c *Config) {
		c.Codec = streamingFactory{c.Codec}
		if edit != nil {
			edit(c)
		}
	})
	for _, s := range []*memServer{e.a, e.b} {
		s.streams = chatServer(s)
	}
	return e
}

// chatServer answers an INIT with an INIT, DATA "x" with DATA
// "echo=x;from=<addr>", DATA "end" and a client's CLOSE with its CLOSE, and
// DATA "hold" not at all.
func chatServer(s *memServer) func(codec.Message) []byte {
	return func(m codec.Message) []byte {
		body := string(m.Frame[13:])
		switch {
		case m.Kind == codec.KindStreamInit:
			return kvFrame(7, m.StreamID, "")
		case m.Kind == codec.KindStreamClose && m.Status == codec.StatusOK, body == "end":
			return kvFrame(9, m.StreamID, "")
		case m.Kind == codec.KindStreamData && body != "hold":
			return kvFrame(8, m.StreamID, fmt.Sprintf("echo=%s;from=%p", body, s))
		}
		return nil
	}
}

func sinit(id uint64, method string) []byte { return kvFrame(7, id, "method="+method) }
func sdata(id uint64, body string) []byte   { return kvFrame(8, id, body) }

// body returns frame m's body.
func body(m codec.Message) string { return string(m.Frame[13:]) }

// TestStreamsShareAnUpstreamUnderTheirOwnIDs: two clients open stream 100
// each; on a multiplexed connection the upstream sees two stream ids, and
// each client gets its own echoes back under its own id, until the
// server's CLOSE ends the stream.
func TestStreamsShareAnUpstreamUnderTheirOwnIDs(t *testing.T) {
	e := streamEnv(t, true, func(c *Config) { c.UpstreamConnsPerHost = 1 })
	c1, c2 := newMemConn(), newMemConn()
	s1, s2 := e.srv.NewSession(c1, "c1"), e.srv.NewSession(c2, "c2")
	s1.OnData(sinit(100, "a"))
	s2.OnData(sinit(100, "a"))
	c1.waitFrames(t, 1)
	c2.waitFrames(t, 1)
	s1.OnData(sdata(100, "one"))
	s2.OnData(sdata(100, "two"))
	for _, c := range []struct {
		conn *memConn
		want string
	}{{c1, "echo=one"}, {c2, "echo=two"}} {
		fs := c.conn.waitFrames(t, 2)
		if fs[0].Kind != codec.KindStreamInit || fs[0].StreamID != 100 || fs[1].StreamID != 100 || !strings.HasPrefix(body(fs[1]), c.want) {
			t.Fatalf("client got %v %d, %q %d", fs[0].Kind, fs[0].StreamID, body(fs[1]), fs[1].StreamID)
		}
	}
	e.a.mu.Lock()
	type onConn struct {
		u  *memUpstream
		id uint64
	}
	streams := map[onConn]bool{}
	for i, m := range e.a.seen {
		streams[onConn{e.a.seenOn[i], m.StreamID}] = true
	}
	e.a.mu.Unlock()
	if len(streams) != 2 || len(e.a.conns) != 1 {
		t.Fatalf("upstream saw streams %v on %d connections, want two ids on one", streams, len(e.a.conns))
	}
	if n := e.srv.Stats().StreamActive.Load(); n != 2 {
		t.Fatalf("stream_active = %d, want 2", n)
	}
	s1.OnData(sdata(100, "end"))
	if fs := c1.waitFrames(t, 3); fs[2].Kind != codec.KindStreamClose || fs[2].StreamID != 100 {
		t.Fatalf("after end: %v %d", fs[2].Kind, fs[2].StreamID)
	}
	eventually(t, "stream_active 1", func() bool { return e.srv.Stats().StreamActive.Load() == 1 })
	s1.OnData(sdata(100, "late")) // the stream is over: dropped
	eventually(t, "a dropped frame", func() bool { return e.srv.Stats().StreamFrameUnknown.Load() == 1 })
}

// TestStreamOutlivesTheRequestTimeout: a stream is not a request: once
// open it takes frames long after request_timeout.
func TestStreamOutlivesTheRequestTimeout(t *testing.T) {
	e := streamEnv(t, true, func(c *Config) { c.RequestTimeout = 50 * time.Millisecond })
	c := newMemConn()
	ss := e.srv.NewSession(c, "c")
	ss.OnData(sinit(7, "a"))
	c.waitFrames(t, 1)
	time.Sleep(200 * time.Millisecond) // four request timeouts
	ss.OnData(sdata(7, "later"))
	if fs := c.waitFrames(t, 2); fs[1].Kind != codec.KindStreamData || !strings.HasPrefix(body(fs[1]), "echo=later") {
		t.Fatalf("got %v %q", fs[1].Kind, body(fs[1]))
	}
}

// TestStreamEnds: the native ends of a stream — a refused INIT, an
// upstream dying mid-stream (the client gets a reset), a client leaving
// (the server gets one).
func TestStreamEnds(t *testing.T) {
	for _, mux := range []bool{true, false} {
		t.Run(fmt.Sprintf("multiplexing=%v", mux), func(t *testing.T) {
			e := streamEnv(t, mux, nil)
			c := newMemConn()
			ss := e.srv.NewSession(c, "c")
			ss.OnData(sinit(5, "nowhere"))
			if fs := c.waitFrames(t, 1); fs[0].Kind != codec.KindStreamInit || fs[0].Status == codec.StatusOK || fs[0].StreamID != 5 {
				t.Fatalf("no route: %v %v %d", fs[0].Kind, fs[0].Status, fs[0].StreamID)
			}

			ss.OnData(sinit(6, "a"))
			c.waitFrames(t, 2)
			ss.OnData(sdata(6, "hold"))
			eventually(t, "the held frame upstream", func() bool { return len(seenOf(e.a, codec.KindStreamData)) == 1 })
			e.a.kill()
			if fs := c.waitFrames(t, 3); fs[2].Kind != codec.KindStreamClose || fs[2].Status == codec.StatusOK || fs[2].StreamID != 6 ||
				!strings.Contains(body(fs[2]), "unavailable") {
				t.Fatalf("upstream died: %v %v %d %q", fs[2].Kind, fs[2].Status, fs[2].StreamID, body(fs[2]))
			}
			eventually(t, "stream_active 0", func() bool { return e.srv.Stats().StreamActive.Load() == 0 })

			ss.OnData(sinit(8, "a"))
			c.waitFrames(t, 4)
			ss.Close()
			eventually(t, "the server's reset", func() bool {
				for _, m := range seenOf(e.a, codec.KindStreamClose) {
					if m.Status != codec.StatusOK {
						return true
					}
				}
				return false
			})
			if n := e.srv.Stats().StreamActive.Load(); n != 0 {
				t.Fatalf("stream_active = %d after the client left", n)
			}
		})
	}
}

// TestStreamFramesWaitForTheOpen: frames a client sends before its INIT is
// answered reach the server after the INIT, in order.
func TestStreamFramesWaitForTheOpen(t *testing.T) {
	e := streamEnv(t, true, nil)
	c := newMemConn()
	ss := e.srv.NewSession(c, "c")
	ss.OnData(append(append(sinit(9, "a"), sdata(9, "first")...), sdata(9, "second")...))
	fs := c.waitFrames(t, 3)
	if !strings.HasPrefix(body(fs[1]), "echo=first") || !strings.HasPrefix(body(fs[2]), "echo=second") {
		t.Fatalf("got %q, %q", body(fs[1]), body(fs[2]))
	}
}

// seenOf returns the frames of kind k s has seen.
func seenOf(s *memServer, k codec.Kind) []codec.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []codec.Message
	for _, m := range s.seen {
		if m.Kind == k {
			out = append(out, m)
		}
	}
	return out
}

// TestStreamsPerConnectionAreBounded: a connection opens at most
// max_active_requests_per_connection streams; the next INIT is refused
// natively, and a stream that ends makes room.
func TestStreamsPerConnectionAreBounded(t *testing.T) {
	e := streamEnv(t, true, func(c *Config) { c.MaxActiveRequestsPerConnection = 2 })
	c := newMemConn()
	ss := e.srv.NewSession(c, "c")
	ss.OnData(sinit(1, "a"))
	ss.OnData(sinit(2, "a"))
	c.waitFrames(t, 2)
	ss.OnData(sinit(3, "a"))
	if fs := c.waitFrames(t, 3); fs[2].StreamID != 3 || fs[2].Status == codec.StatusOK || !strings.Contains(body(fs[2]), "overloaded") {
		t.Fatalf("third stream: %v %v %q", fs[2].Kind, fs[2].Status, body(fs[2]))
	}
	ss.OnData(sdata(1, "end"))
	c.waitFrames(t, 4)
	ss.OnData(sinit(4, "a"))
	if fs := c.waitFrames(t, 5); fs[4].StreamID != 4 || fs[4].Status != codec.StatusOK {
		t.Fatalf("after one ended: %v %v %d", fs[4].Kind, fs[4].Status, fs[4].StreamID)
	}
}
