package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
	"trpc.group/trpc-go/trpc-go/client"
	"trpc.group/trpc-go/trpc-go/codec"
	"trpc.group/trpc-go/trpc-go/stream"
)

// Golden is one file of codecs/trpc/testdata: a frame a real trpc-go peer
// sent and what it means, read with trpc-protocol's generated types (see
// describe).
type Golden struct {
	Origin string `json:"origin"`
	Frame  string `json:"frame"`
	Want   Want   `json:"want"`
}

// Want is the decoding the codec must give.
type Want struct {
	Kind     string            `json:"kind"`
	ID       uint64            `json:"id"`
	StreamID uint64            `json:"stream_id,omitempty"`
	Status   string            `json:"status,omitempty"`
	Meta     map[string]string `json:"meta"`
}

const origin = "trpc-go v1.1.0 %s, captured by test/peers/trpc -mode capture"

// runCapture makes the calls below through a recording relay and writes
// every frame they exchanged to dir as <name>.json.
func runCapture(dir string) error {
	if dir == "" {
		return fmt.Errorf("capture: -out is required")
	}
	_, saddr, err := startServer("127.0.0.1:0", "golden")
	if err != nil {
		return err
	}
	r, err := startRelay(saddr)
	if err != nil {
		return err
	}
	defer r.close()
	opts := func(meta map[string]string, more ...client.Option) []client.Option {
		return append(callOpts(r.addr(), 5*time.Second, meta), more...)
	}
	type call struct {
		req, rsp string // golden names; "" drops the frame
		fn, arg  string
		opts     []client.Option
	}
	att := client.NewAttachment(strings.NewReader("attached bytes"))
	calls := []call{
		{"req_hello", "rsp_hello", "SayHello", "alice", opts(nil)},
		{"req_trans_info", "rsp_hi", "SayHi", "bob", opts(map[string]string{
			"x-route": "p2", "x-trace-id": "4bf92f3577b34da6", "x-empty": "", "x-utf8": "grüße"})},
		{"req_fail", "rsp_func_error", "Fail", "on purpose", opts(nil)},
		{"req_no_func", "rsp_no_func", "NoSuchMethod", "x", opts(nil)},
		{"req_attachment", "rsp_attachment", "SayHello", "carol", opts(nil, client.WithAttachment(att))},
		{"req_oneway", "", "SayHi", "fire and forget", opts(nil, client.WithSendOnly())},
	}
	for _, c := range calls {
		invoke(Service, Func(c.fn), c.arg, c.opts...)
		n := 2
		if c.rsp == "" {
			n = 1
		}
		fs, err := r.take(n, 50*time.Millisecond)
		if err != nil {
			return fmt.Errorf("%s: %v", c.fn, err)
		}
		if len(fs) != n {
			return fmt.Errorf("%s: %d frames, want %d", c.fn, len(fs), n)
		}
		names := []string{c.req, c.rsp}
		for i, f := range fs {
			if err := writeGolden(dir, names[i], f); err != nil {
				return err
			}
		}
	}
	// Request ids count up from 1 in each client: call until one needs a
	// two-byte varint.
	for i := 0; i < 200; i++ {
		invoke(Service, Func("SayHi"), "many", opts(nil)...)
	}
	fs, err := r.take(400, 50*time.Millisecond)
	if err != nil {
		return err
	}
	if err := writeGolden(dir, "req_id_2byte", fs[len(fs)-2]); err != nil {
		return err
	}
	return captureStream(dir, r)
}

// captureStream runs one bidirectional Chat stream: two messages, the
// second large enough that the server sends a window update (FEEDBACK),
// then the client's close.
func captureStream(dir string, r *relay) error {
	ctx, msg := codec.WithCloneMessage(context.Background())
	defer codec.PutBackMessage(msg)
	msg.WithClientRPCName(Func("Chat"))
	msg.WithCalleeServiceName(Service)
	msg.WithSerializationType(codec.SerializationTypePB)
	cs, err := stream.NewStreamClient().NewStream(ctx,
		&client.ClientStreamDesc{StreamName: Func("Chat"), ClientStreams: true, ServerStreams: true},
		Func("Chat"), callOpts(r.addr(), 5*time.Second, map[string]string{"x-stream": "chat"})...)
	if err != nil {
		return fmt.Errorf("stream: %v", err)
	}
	for _, m := range []string{"hi", strings.Repeat("x", 20000)} {
		if err := cs.SendMsg(wrapperspb.String(m)); err != nil {
			return fmt.Errorf("stream send: %v", err)
		}
		if err := cs.RecvMsg(&wrapperspb.StringValue{}); err != nil {
			return fmt.Errorf("stream recv: %v", err)
		}
	}
	if err := cs.CloseSend(); err != nil {
		return fmt.Errorf("stream close: %v", err)
	}
	_ = cs.RecvMsg(&wrapperspb.StringValue{}) // io.EOF once the server closes
	fs, err := r.take(7, 200*time.Millisecond)
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for _, f := range fs {
		dirn := "s2c"
		if f.toServer {
			dirn = "c2s"
		}
		name := "stream_" + dirn + "_" + streamTypes[f.b[3]]
		seen[name]++
		if k := seen[name]; k > 1 {
			name += fmt.Sprint(k)
		}
		if err := writeGolden(dir, name, f); err != nil {
			return err
		}
	}
	return nil
}

var streamTypes = map[byte]string{0: "unary", 1: "init", 2: "data", 3: "feedback", 4: "close"}

// writeGolden writes frame f as dir/name.json, described by describe.
func writeGolden(dir, name string, f frame) error {
	if name == "" {
		return nil
	}
	w, err := describe(f)
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	side := "server"
	if f.toServer {
		side = "client"
	}
	g := Golden{Origin: fmt.Sprintf(origin, side), Frame: hex.EncodeToString(f.b), Want: w}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".json"), append(b, '\n'), 0o644)
}
