package main

// -mode stream opens -streams tRPC streams at once through trpc-go's
// stream client and drives each on its own goroutine (see runStream).
//
// How trpc-go v1.1.0 carries concurrent streams (stream/client.go,
// transport/client_transport_stream.go, pool/multiplexed/multiplexed.go):
//
//   - Stream ids: each stream.Client (stream.NewStreamClient) numbers its
//     streams with its own atomic counter, from 100 up (0-99 are reserved);
//     the id is the frame head's stream id of every frame of the stream
//     (INIT, DATA, FEEDBACK, CLOSE). Concurrent NewStream calls get distinct
//     ids, in the order they reach the counter, not in any caller's order.
//   - Connections: every stream client sends through the process-wide
//     transport.DefaultClientStreamTransport, whose multiplexed pool keeps,
//     per network+address, 2 TCP connections (both dialled when the first
//     stream to the address opens) with up to 1000 streams each. A new
//     stream takes the first connection with room, so concurrent streams
//     from one process to one address share ONE TCP connection (the second
//     stays open and idle) until 1000 are open at once. Frames are matched
//     to streams by the head's stream id. The pool keeps idle connections
//     (at most 2 per address) after streams end and reuses them.
//   - The transport maps stream id → connection in one map for the whole
//     process, keyed by the id alone: two stream clients in one process
//     would both start at 100 and take each other's entries. runStream uses
//     ONE stream client for all its streams.
//   - When the connection fails (the server dies), the pool cancels every
//     stream on it: a pending RecvMsg returns the read error wrapped as a
//     framework error errs.RetClientStreamReadEnd (351) "stream is already
//     closed". The pool then redials in the background.
//   - client.WithTimeout does not apply to streams: the context given to
//     NewStream bounds the stream (runStream gives each -timeout).
//   - A client-streaming RecvMsg (ClientStreamDesc.ServerStreams false)
//     reads the reply and then itself requires the server's close (io.EOF);
//     a further message fails it with RetClientStreamReadEnd.
//
// The server's streams (server.go): Chat echoes, Count counts, Repeat
// repeats.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
	"trpc.group/trpc-go/trpc-go/client"
	"trpc.group/trpc-go/trpc-go/codec"
	"trpc.group/trpc-go/trpc-go/errs"
	"trpc.group/trpc-go/trpc-go/stream"
)

type streamFlags struct {
	addr, method, callee, meta string
	streams, msgs              int
	hold                       bool
	duration, timeout          time.Duration
}

// StreamResult is what -mode stream prints after "RESULT ": every
// stream's outcome, in stream order. Messages counts the replies the
// client received, over all streams (Chat: its round trips).
type StreamResult struct {
	Streams   int         `json:"streams"`
	OK        int         `json:"ok"`
	Errors    int         `json:"errors"`
	Messages  int         `json:"messages"`
	ElapsedNS int64       `json:"elapsed_ns"`
	Results   []StreamOne `json:"results"`
}

// StreamOne is one stream's outcome: the replies it received (not kept in
// -duration mode, where Messages counts them), and its error, if any, with
// its code (errs.Code) and type as in Call. A reply that is not the
// expected one is an error too (code 0, type "mismatch").
type StreamOne struct {
	Replies  []string `json:"replies,omitempty"`
	Messages int      `json:"messages"`
	Code     int      `json:"code,omitempty"`
	Type     string   `json:"type,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// fail records err as the stream's error.
func (o *StreamOne) fail(err error) {
	o.Code, o.Error = int(errs.Code(err)), errs.Msg(err)
	var e *errs.Error
	if errors.As(err, &e) {
		o.Type = errType(e.Type)
	}
}

// mismatch records a reply that is not the expected one.
func (o *StreamOne) mismatch(format string, a ...any) {
	o.Type, o.Error = "mismatch", fmt.Sprintf(format, a...)
}

// runStream runs sf.streams streams of sf.method at once and prints the
// StreamResult. With -hold it prints "READY holding" once every stream
// has sent "hold" (or ended before).
func runStream(sf streamFlags) error {
	if sf.addr == "" {
		return fmt.Errorf("stream: -addr is required")
	}
	var desc client.ClientStreamDesc
	switch sf.method {
	case "Chat":
		desc = client.ClientStreamDesc{ClientStreams: true, ServerStreams: true}
	case "Count":
		desc = client.ClientStreamDesc{ClientStreams: true}
	case "Repeat":
		desc = client.ClientStreamDesc{ServerStreams: true}
	default:
		// Any other name opens a bidirectional stream the server does not
		// have (or the proxy does not route): tests of refused INITs.
		desc = client.ClientStreamDesc{ClientStreams: true, ServerStreams: true}
	}
	if (sf.hold || sf.duration > 0) && sf.method != "Chat" {
		return fmt.Errorf("stream: -hold and -duration are for Chat")
	}
	if sf.hold && sf.duration > 0 {
		return fmt.Errorf("stream: -hold and -duration exclude each other")
	}
	desc.StreamName = sf.method
	if !strings.HasPrefix(sf.method, "/") {
		desc.StreamName = Func(sf.method)
	}
	meta := map[string]string{}
	for _, kv := range strings.Split(sf.meta, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			meta[k] = v
		}
	}
	sf.streams = max(sf.streams, 1)
	st := &streamRun{
		sf:   sf,
		desc: &desc,
		cli:  stream.NewStreamClient(), // one client: see the top of this file
		opts: callOpts(sf.addr, sf.timeout, meta),
	}
	var held sync.WaitGroup
	ready := make(chan struct{})
	if sf.hold {
		held.Add(sf.streams)
		go func() {
			held.Wait()
			fmt.Println("READY holding")
			close(ready)
		}()
	} else {
		close(ready)
	}
	results := make([]StreamOne, sf.streams)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range sf.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			holding := func() {
				if sf.hold {
					once.Do(held.Done)
				}
			}
			defer holding()
			results[i] = st.run(i, holding)
		}()
	}
	wg.Wait()
	<-ready
	r := StreamResult{Streams: sf.streams, ElapsedNS: time.Since(start).Nanoseconds(), Results: results}
	for _, o := range results {
		r.Messages += o.Messages
		if o.Error == "" && o.Code == 0 {
			r.OK++
		} else {
			r.Errors++
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	fmt.Println("RESULT", string(b))
	return nil
}

type streamRun struct {
	sf   streamFlags
	desc *client.ClientStreamDesc
	cli  stream.Client
	opts []client.Option
}

// run opens stream i and drives it; holding is called once it has sent
// "hold".
func (st *streamRun) run(i int, holding func()) StreamOne {
	var o StreamOne
	timeout := st.sf.timeout
	if st.sf.duration > 0 {
		timeout += st.sf.duration
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel() // also releases the stream (trpc-go watches the context)
	ctx, msg := codec.WithCloneMessage(ctx)
	defer codec.PutBackMessage(msg)
	msg.WithClientRPCName(st.desc.StreamName)
	msg.WithCalleeServiceName(st.sf.callee)
	msg.WithSerializationType(codec.SerializationTypePB)
	cs, err := st.cli.NewStream(ctx, st.desc, st.desc.StreamName, st.opts...)
	if err != nil {
		o.fail(err)
		return o
	}
	recv := func() (string, error) {
		m := &wrapperspb.StringValue{}
		err := cs.RecvMsg(m)
		return m.GetValue(), err
	}
	// reply records a reply, and checks it when want is not "".
	reply := func(got, want string) bool {
		o.Messages++
		if st.sf.duration == 0 {
			o.Replies = append(o.Replies, got)
		}
		if want != "" && got != want {
			o.mismatch("reply %d is %q, want %q", o.Messages, got, want)
			return false
		}
		return true
	}
	send := func(s string) bool {
		if err := cs.SendMsg(wrapperspb.String(s)); err != nil {
			o.fail(err)
			return false
		}
		return true
	}
	closeSend := func() bool {
		if err := cs.CloseSend(); err != nil {
			o.fail(err)
			return false
		}
		return true
	}
	// eof expects the server's close.
	eof := func() {
		got, err := recv()
		switch {
		case err == nil:
			o.mismatch("after %d replies another one %q, want the end of the stream", o.Messages, got)
		case !errors.Is(err, io.EOF):
			o.fail(err)
		}
	}
	ping := func(k int) bool {
		m := fmt.Sprintf("m%d-%d", i, k)
		if !send(m) {
			return false
		}
		got, err := recv()
		if err != nil {
			o.fail(err)
			return false
		}
		return reply(got, "echo: "+m)
	}

	switch st.sf.method {
	case "Chat":
		if st.sf.duration > 0 {
			end := time.Now().Add(st.sf.duration)
			for k := 0; time.Now().Before(end); k++ {
				if !ping(k) {
					return o
				}
			}
		} else {
			for k := range st.sf.msgs {
				if !ping(k) {
					return o
				}
			}
		}
		if st.sf.hold {
			if !send("hold") {
				return o
			}
			holding()
			got, err := recv()
			if err == nil {
				o.mismatch("hold answered %q", got)
			} else {
				o.fail(err) // io.EOF too: report how the stream ended
			}
			return o
		}
		if closeSend() {
			eof()
		}
	case "Count":
		var sent []string
		for k := range st.sf.msgs {
			m := fmt.Sprintf("m%d-%d", i, k)
			if !send(m) {
				return o
			}
			sent = append(sent, m)
		}
		if !closeSend() {
			return o
		}
		// A client-streaming RecvMsg reads the reply and then requires
		// the server's close itself.
		got, err := recv()
		if err != nil {
			o.fail(err)
			return o
		}
		reply(got, fmt.Sprintf("got %d: %s", len(sent), strings.Join(sent, ",")))
	case "Repeat":
		text := fmt.Sprintf("s%d", i)
		if !send(fmt.Sprintf("%s*%d", text, st.sf.msgs)) || !closeSend() {
			return o
		}
		for k := 1; ; k++ {
			got, err := recv()
			if errors.Is(err, io.EOF) {
				if k-1 != st.sf.msgs {
					o.mismatch("%d replies, want %d", k-1, st.sf.msgs)
				}
				return o
			}
			if err != nil {
				o.fail(err)
				return o
			}
			want := fmt.Sprintf("%s #%d", text, k)
			if k > st.sf.msgs {
				want = "the end of the stream"
			}
			if !reply(got, want) {
				return o
			}
		}
	}
	return o
}
