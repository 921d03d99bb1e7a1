package harness_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
)

// TestTRPCStreamDirect runs the peer's stream client against a trpc-go
// server, no proxy between: 4 concurrent streams of 3 messages for each of
// Chat, Count and Repeat, every reply checked; then Chat streams held
// while the server is killed end with trpc-go's stream-read-end error.
func TestTRPCStreamDirect(t *testing.T) {
	srv := harness.StartTRPCServer(t, "direct")
	const streams, msgs = 4, 3
	want := map[string]func(i int) []string{
		"Chat": func(i int) (r []string) {
			for k := range msgs {
				r = append(r, fmt.Sprintf("echo: m%d-%d", i, k))
			}
			return r
		},
		"Count": func(i int) []string {
			var sent []string
			for k := range msgs {
				sent = append(sent, fmt.Sprintf("m%d-%d", i, k))
			}
			return []string{fmt.Sprintf("got %d: %s", msgs, strings.Join(sent, ","))}
		},
		"Repeat": func(i int) (r []string) {
			for k := 1; k <= msgs; k++ {
				r = append(r, fmt.Sprintf("s%d #%d", i, k))
			}
			return r
		},
	}
	for _, m := range []string{"Chat", "Count", "Repeat"} {
		r, err := harness.TRPCStream(t, srv.Addr(), harness.TRPCStreams{
			Method: m, Streams: streams, Msgs: msgs, Meta: map[string]string{"x-test": m}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Streams != streams || r.OK != streams || r.Errors != 0 || len(r.Results) != streams {
			t.Fatalf("%s: %+v", m, r)
		}
		n := 0
		for i, o := range r.Results {
			if w := want[m](i); !reflect.DeepEqual(o.Replies, w) || o.Messages != len(w) {
				t.Errorf("%s stream %d: replies %q (%d), want %q", m, i, o.Replies, o.Messages, w)
			}
			n += len(want[m](i))
		}
		if r.Messages != n {
			t.Errorf("%s: %d messages, want %d", m, r.Messages, n)
		}
	}

	wait := harness.TRPCStreamAsync(t, srv.Addr(), harness.TRPCStreams{Streams: 2, Msgs: 1, Hold: true, Timeout: time.Minute})
	srv.Kill()
	r, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 2 {
		t.Fatalf("held streams: %+v", r)
	}
	for i, o := range r.Results {
		// errs.RetClientStreamReadEnd, "stream is already closed, caused by EOF"
		if w := []string{fmt.Sprintf("echo: m%d-0", i)}; !reflect.DeepEqual(o.Replies, w) || o.Code != 351 || o.Type != "framework" {
			t.Errorf("held stream %d: %+v, want replies %q and a framework error 351", i, o, w)
		}
	}
}
