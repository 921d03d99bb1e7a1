// Package e2e runs real peers through metaproxy. The tests build the peers
// and the proxy once per run (see harness.Build); a cold dubbo-go build takes
// a couple of minutes.
package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

func TestMain(m *testing.M) { harness.Main(m) }

// callTimeout bounds every single call a test makes: a call that needs it
// has hung.
const callTimeout = 10 * time.Second

func sayHello(name string) rawdubbo.Call {
	return rawdubbo.Call{Interface: harness.DubboInterface, Method: "sayHello", Args: []any{name}}
}

func sleepCall(ms int64) rawdubbo.Call {
	return rawdubbo.Call{Interface: harness.DubboInterface, Method: "sleep", Args: []any{ms}}
}

func dialRaw(t *testing.T, addr string) *rawdubbo.Conn {
	t.Helper()
	c, err := rawdubbo.Dial(addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func call(t *testing.T, c *rawdubbo.Conn, req rawdubbo.Call) rawdubbo.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	r, err := c.Call(ctx, req)
	if err != nil {
		t.Fatalf("%s(%v): %v", req.Method, req.Args, err)
	}
	return r
}

// goCall makes req on c in a goroutine. The channel receives nil once the
// call succeeded, or why it did not (transport error or error reply).
func goCall(c *rawdubbo.Conn, req rawdubbo.Call) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		r, err := c.Call(ctx, req)
		if err == nil && !r.OK() {
			err = fmt.Errorf("%s(%v) failed: %s", req.Method, req.Args, r.String())
		}
		done <- err
	}()
	return done
}

// concurrentHellos makes n concurrent sayHello calls on c, each with its own
// name, and checks that every caller got the answer to its own call.
func concurrentHellos(t *testing.T, c *rawdubbo.Conn, n int, prefix string, want func(name string) []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("%s-%d", prefix, i)
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			defer cancel()
			r, err := c.Call(ctx, sayHello(name))
			switch {
			case err != nil:
				errs <- fmt.Sprintf("%s: %v", name, err)
			case !slices.Contains(want(name), r.String()):
				errs <- fmt.Sprintf("%s: got %q, want one of %q", name, r.String(), want(name))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if s := c.Stray(); len(s) > 0 {
		t.Errorf("responses for ids nobody waited for: %v", s)
	}
}

// TestDubboDirect proves the peers work without a proxy in between.
func TestDubboDirect(t *testing.T) {
	p := harness.StartDubboProvider(t, "direct")
	bin := harness.Build(t, harness.DubboPeer)

	t.Run("consumer", func(t *testing.T) {
		out, err := harness.DubboConsumer(t, p.Addr(), "-name", "alice", "-n", "2")
		if err != nil {
			t.Fatal(err)
		}
		want := p.HelloFrom("alice") + "\n" + p.HelloFrom("alice") + "\n"
		if out != want {
			t.Errorf("got %q, want %q", out, want)
		}
	})

	t.Run("consumer fail", func(t *testing.T) {
		out, err := harness.DubboConsumer(t, p.Addr(), "-method", "fail", "-name", "boom")
		if err == nil {
			t.Fatalf("fail() succeeded: %q", out)
		}
		if !strings.HasPrefix(out, "ERROR ") || !strings.Contains(out, "boom") {
			t.Errorf("got %q, want an ERROR line carrying boom", out)
		}
	})

	t.Run("consumer load", func(t *testing.T) {
		out, err := harness.DubboConsumer(t, p.Addr(), "-c", "4", "-n", "200", "-warmup", "2")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out, `{"ok":200,"errors":0,`) {
			t.Errorf("got %q, want 200 ok calls", out)
		}
	})

	t.Run("raw attachments", func(t *testing.T) {
		c := dialRaw(t, p.Addr())
		r := call(t, c, rawdubbo.Call{Interface: harness.DubboInterface, Method: "echoAttachment",
			Args: []any{"x-color"}, Attachments: map[string]string{"x-color": "blue", "other": "x"}})
		if r.String() != "blue" {
			t.Errorf("echoAttachment(x-color) = %q, want blue", r.String())
		}
		r = call(t, c, rawdubbo.Call{Interface: harness.DubboInterface, Method: "echoAttachment", Args: []any{"absent"}})
		if !r.OK() || r.String() != "" {
			t.Errorf("echoAttachment(absent) = %q, want empty", r.String())
		}
	})

	t.Run("raw binary attachments", func(t *testing.T) {
		out, _, err := harness.Run(t, time.Minute, bin, "-mode", "raw", "-addr", p.Addr(),
			"-method", "echoAttachment", "-arg", "k2", "-attach", "k1=v1,k2=v2")
		if err != nil || out != "v2\n" {
			t.Errorf("raw echoAttachment: %q, %v; want v2", out, err)
		}
	})

	t.Run("raw fail", func(t *testing.T) {
		r := call(t, dialRaw(t, p.Addr()), rawdubbo.Call{Interface: harness.DubboInterface, Method: "fail", Args: []any{"kaput"}})
		if r.OK() || !strings.Contains(r.Exception, "kaput") {
			t.Errorf("fail(kaput) = %q, want an exception carrying kaput", r.String())
		}
	})

	t.Run("raw concurrent ids", func(t *testing.T) {
		concurrentHellos(t, dialRaw(t, p.Addr()), 100, "c", func(n string) []string { return []string{p.HelloFrom(n)} })
	})

	t.Run("raw binary concurrent", func(t *testing.T) {
		out, _, err := harness.Run(t, time.Minute, bin, "-mode", "raw", "-addr", p.Addr(),
			"-method", "sayHello", "-arg", "u{i}", "-n", "20", "-c", "20")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		ids := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var id, arg string
			if _, err := fmt.Sscanf(line, "id=%s arg=%s", &id, &arg); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if want := fmt.Sprintf("id=%s arg=%s %s", id, arg, p.HelloFrom(arg)); line != want {
				t.Errorf("got %q, want %q", line, want)
			}
			ids[id] = true
		}
		if len(ids) != 20 {
			t.Errorf("%d distinct ids in %d calls", len(ids), 20)
		}
	})

	t.Run("heartbeat", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		r, err := dialRaw(t, p.Addr()).Heartbeat(ctx)
		if err != nil || !r.Heartbeat || !r.OK() {
			t.Errorf("heartbeat: %+v, %v", r, err)
		}
	})

	t.Run("oneway", func(t *testing.T) {
		c := dialRaw(t, p.Addr())
		if err := c.Send(rawdubbo.Call{Interface: harness.DubboInterface, Method: "note", Args: []any{"direct-oneway"}}); err != nil {
			t.Fatal(err)
		}
		waitNote(t, c, "direct-oneway")
	})
}

// waitNote polls the provider's notes() over c until note shows up.
func waitNote(t *testing.T, c *rawdubbo.Conn, note string) {
	t.Helper()
	deadline := time.Now().Add(callTimeout)
	for {
		r := call(t, c, rawdubbo.Call{Interface: harness.DubboInterface, Method: "notes", Args: []any{}})
		if slices.Contains(strings.Split(r.String(), ","), note) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("provider never got oneway note %q; notes: %q", note, r.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
