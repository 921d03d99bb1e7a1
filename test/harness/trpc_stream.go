package harness

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tRPC streams through the peer's trpc-go stream client (trpcpeer -mode
// stream). The server's streams:
//
//   - Chat (bidirectional): m is answered "echo: m", "whoami" with the
//     server's tag; "hold" is not answered and the stream then stays open,
//     answering nothing, until the client's side or the connection ends.
//   - Count (client streaming): after the client's close, one reply
//     "got N: a,b,c", its N messages joined with commas.
//   - Repeat (server streaming): "text*N" is answered with "text #1" …
//     "text #N", then the stream ends.
//
// Every stream of one client goes through one trpc-go stream client: the
// streams get ids 100, 101, … (in the order they open) and share one TCP
// connection to the address (trpc-go dials a second, idle one). See
// test/peers/trpc/stream.go.

// TRPCStreams describes a run of the peer's stream client. Stream i sends
// "m<i>-0" … "m<i>-<Msgs-1>" (Chat, Count), or "s<i>*<Msgs>" (Repeat),
// with Meta as the INIT's trans_info, and checks every reply: Chat's are
// "echo: m<i>-<k>", Count's "got <Msgs>: m<i>-0,…", Repeat's "s<i> #1" …
// "s<i> #<Msgs>"; then the stream must end normally (io.EOF).
type TRPCStreams struct {
	Method  string // Chat (when empty), Count or Repeat
	Streams int    // streams opened at once; 1 when 0
	Msgs    int    // messages per stream; 3 when 0
	Meta    map[string]string
	// Hold (Chat): after Msgs messages each stream sends "hold" and waits
	// until receiving fails, which it reports as its error. Use with
	// TRPCStreamAsync, which returns once every stream holds.
	Hold bool
	// Duration (Chat) makes each stream do round trips as fast as it can
	// for this long; the replies are counted, not kept.
	Duration time.Duration
	Timeout  time.Duration // per stream (plus Duration); 10s when 0
}

// TRPCStreamResult is what the stream client reports. Messages counts the
// replies received over all streams (Chat: round trips).
type TRPCStreamResult struct {
	Streams   int             `json:"streams"`
	OK        int             `json:"ok"`
	Errors    int             `json:"errors"`
	Messages  int             `json:"messages"`
	ElapsedNS int64           `json:"elapsed_ns"`
	Results   []TRPCStreamOne `json:"results"`
}

// Elapsed is the run's duration, from opening the streams to the last
// one's end.
func (r TRPCStreamResult) Elapsed() time.Duration { return time.Duration(r.ElapsedNS) }

// TRPCStreamOne is one stream's outcome, in stream order: the replies it
// received (none kept with Duration; Messages counts them), and its error
// if any: trpc-go's, with its code (errs.Code) and type as in TRPCOne, or
// Type "mismatch" (Code 0) for a reply that was not the expected one.
type TRPCStreamOne struct {
	Replies  []string `json:"replies"`
	Messages int      `json:"messages"`
	Code     int      `json:"code"`
	Type     string   `json:"type"`
	Error    string   `json:"error"`
}

func trpcStreamArgs(addr string, s TRPCStreams) []string {
	args := []string{"-mode", "stream", "-addr", addr}
	if s.Method != "" {
		args = append(args, "-func", s.Method)
	}
	if s.Streams != 0 {
		args = append(args, "-streams", strconv.Itoa(s.Streams))
	}
	if s.Msgs != 0 {
		args = append(args, "-msgs", strconv.Itoa(s.Msgs))
	}
	if s.Hold {
		args = append(args, "-hold")
	}
	if s.Duration != 0 {
		args = append(args, "-duration", s.Duration.String())
	}
	if s.Timeout != 0 {
		args = append(args, "-timeout", s.Timeout.String())
	}
	if len(s.Meta) > 0 {
		var kv []string
		for k, v := range s.Meta {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		args = append(args, "-meta", strings.Join(kv, ","))
	}
	return args
}

// parseTRPCStream reads the RESULT line of out.
func parseTRPCStream(args []string, out string) (TRPCStreamResult, error) {
	var r TRPCStreamResult
	for _, line := range strings.Split(out, "\n") {
		if js, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				return r, fmt.Errorf("trpc stream client result %q: %v", js, err)
			}
			return r, nil
		}
	}
	return r, fmt.Errorf("trpc stream client %v printed no RESULT line\n%s", args, out)
}

// TRPCStream runs the peer's stream client against addr and returns its
// result. Failed streams are in the result; err is for a client that did
// not run.
func TRPCStream(t testing.TB, addr string, s TRPCStreams) (TRPCStreamResult, error) {
	t.Helper()
	bin := BuildTRPCPeer(t)
	args := trpcStreamArgs(addr, s)
	out, stderr, err := Run(t, 2*time.Minute+s.Duration, bin, args...)
	if err != nil {
		return TRPCStreamResult{}, fmt.Errorf("trpc stream client %v: %w\nstdout:\n%s\nstderr:\n%s", args, err, out, stderr)
	}
	r, err := parseTRPCStream(args, out)
	if err != nil {
		err = fmt.Errorf("%w\nstderr:\n%s", err, stderr)
	}
	return r, err
}

// TRPCStreamAsync starts the peer's stream client against addr and
// returns a function that waits for its result. With s.Hold it returns
// once every stream has sent "hold" (or ended before), so that the test
// can then act on the held streams, e.g. kill the server.
func TRPCStreamAsync(t testing.TB, addr string, s TRPCStreams) (wait func() (TRPCStreamResult, error)) {
	t.Helper()
	bin := BuildTRPCPeer(t)
	args := trpcStreamArgs(addr, s)
	p := launch(t, "trpc stream client", bin, args)
	if s.Hold {
		select {
		case <-p.ready: // "READY holding"
		case <-p.exited: // wait reports it
		case <-time.After(StartTimeout):
			t.Fatalf("trpc stream client %v: streams not holding after %v\n%s", args, StartTimeout, p.Output())
		}
	}
	return func() (TRPCStreamResult, error) {
		if err := p.Wait(); err != nil {
			return TRPCStreamResult{}, fmt.Errorf("trpc stream client %v: %w\n%s", args, err, p.Output())
		}
		return parseTRPCStream(args, p.Output())
	}
}
