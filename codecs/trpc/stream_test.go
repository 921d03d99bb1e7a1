package trpc

import (
	"math/rand"
	"testing"

	"google.golang.org/protobuf/proto"
	trpcpb "trpc.group/trpc/trpc-protocol/pb/go/trpc"

	"github.com/metaproxy/metaproxy/codec"
)

// streamFrame returns a stream frame of type typ for stream id with meta m
// marshalled by the generated code, as trpc-go writes them (header length 0).
func streamFrame(t *testing.T, typ byte, id uint32, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	f := appendHead(nil, head{frameType: frameStream, streamType: typ, total: HeadLen + len(b), streamID: id, version: 1})
	return append(f, b...)
}

// TestStreamFrames: INIT, CLOSE and FEEDBACK metas built by the generated
// code decode to their kind, stream id, status and metadata.
func TestStreamFrames(t *testing.T) {
	reqMeta := &trpcpb.TrpcStreamInitRequestMeta{Caller: []byte("trpc.app.c.s"), Callee: []byte("trpc.app.s.Svc"),
		Func: []byte("/trpc.app.s.Svc/Chat"), TransInfo: map[string][]byte{"x-k": []byte("v"), "func": []byte("spoof")}}
	for _, tc := range []struct {
		name   string
		frame  []byte
		kind   codec.Kind
		status codec.Status
		meta   map[string]string
	}{
		{"client init", streamFrame(t, streamInit, 101, &trpcpb.TrpcStreamInitMeta{RequestMeta: reqMeta, InitWindowSize: 65535}),
			codec.KindStreamInit, codec.StatusOK, map[string]string{"caller": "trpc.app.c.s", "callee": "trpc.app.s.Svc",
				"func": "/trpc.app.s.Svc/Chat", "interface": "trpc.app.s.Svc", "method": "Chat", "x-k": "v"}},
		{"server init refused", streamFrame(t, streamInit, 101, &trpcpb.TrpcStreamInitMeta{
			ResponseMeta: &trpcpb.TrpcStreamInitResponseMeta{Ret: 12, ErrorMsg: []byte("no func")}}),
			codec.KindStreamInit, codec.StatusServerFailure, nil},
		{"close", streamFrame(t, streamClose, 102, &trpcpb.TrpcStreamCloseMeta{TransInfo: map[string][]byte{"a": []byte("b")}}),
			codec.KindStreamClose, codec.StatusOK, map[string]string{"a": "b"}},
		{"reset", streamFrame(t, streamClose, 102, &trpcpb.TrpcStreamCloseMeta{CloseType: closeReset}),
			codec.KindStreamClose, codec.StatusServerFailure, nil},
		{"close with ret", streamFrame(t, streamClose, 102, &trpcpb.TrpcStreamCloseMeta{Ret: 201, Msg: []byte("net")}),
			codec.KindStreamClose, codec.StatusServerFailure, nil},
		{"close with func_ret", streamFrame(t, streamClose, 102, &trpcpb.TrpcStreamCloseMeta{FuncRet: 7}),
			codec.KindStreamClose, codec.StatusError, nil},
		{"feedback", streamFrame(t, streamFeedback, 103, &trpcpb.TrpcStreamFeedBackMeta{WindowSizeIncrement: 1 << 20}),
			codec.KindStreamData, codec.StatusOK, nil},
	} {
		m := decodeFrame(t, tc.frame)
		if m.Kind != tc.kind || m.Status != tc.status || m.StreamID != uint64(tc.frame[13]) || m.ID != m.StreamID {
			t.Errorf("%s: %v %v stream %d id %d", tc.name, m.Kind, m.Status, m.StreamID, m.ID)
		}
		if m.Meta.Len() != len(tc.meta) {
			t.Errorf("%s: metadata %v, want %v", tc.name, m.Meta.All(), tc.meta)
		}
		for k, v := range tc.meta {
			if m.Meta.Value(k) != v {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, m.Meta.Value(k), v)
			}
		}
	}
}

// TestStreamInitMerged: a request_meta given twice is merged, as protobuf
// merges a repeated message field: the later func wins, trans_info adds up.
func TestStreamInitMerged(t *testing.T) {
	a, _ := proto.Marshal(&trpcpb.TrpcStreamInitMeta{RequestMeta: &trpcpb.TrpcStreamInitRequestMeta{
		Func: []byte("/s/A"), Callee: []byte("s"), TransInfo: map[string][]byte{"k1": []byte("1")}}})
	b, _ := proto.Marshal(&trpcpb.TrpcStreamInitMeta{RequestMeta: &trpcpb.TrpcStreamInitRequestMeta{
		Func: []byte("/s/B"), TransInfo: map[string][]byte{"k2": []byte("2")}}})
	meta := append(a, b...)
	var lib trpcpb.TrpcStreamInitMeta
	if err := proto.Unmarshal(meta, &lib); err != nil {
		t.Fatal(err)
	}
	f := appendHead(nil, head{frameType: frameStream, streamType: streamInit, total: HeadLen + len(meta), streamID: 100, version: 1})
	m := decodeFrame(t, append(f, meta...))
	rm := lib.RequestMeta
	if m.Meta.Value("func") != string(rm.Func) || m.Meta.Value("callee") != string(rm.Callee) ||
		m.Meta.Value("k1") != "1" || m.Meta.Value("k2") != "2" || len(rm.TransInfo) != 2 {
		t.Errorf("merged: %v, protobuf-go %v", m.Meta.All(), rm)
	}
}

// TestStreamMetaRandom: random init and close metas marshalled by the
// generated code decode to their trans_info and call metadata.
func TestStreamMetaRandom(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for range 500 {
		rm := &trpcpb.TrpcStreamInitRequestMeta{Caller: randBytes(r, 20), Callee: randBytes(r, 20),
			Func: randBytes(r, 20), MessageType: randU32(r), TransInfo: randTransInfo(r)}
		m := decodeFrame(t, streamFrame(t, streamInit, r.Uint32(), &trpcpb.TrpcStreamInitMeta{RequestMeta: rm,
			InitWindowSize: randU32(r), ContentType: randU32(r)}))
		want := map[string]string{}
		// callMeta's rule: trans_info never shadows the call's keys.
		for k, v := range rm.TransInfo {
			if !reserved(k) {
				want[k] = string(v)
			}
		}
		if m.Meta.Value("caller") != string(rm.Caller) || m.Meta.Value("func") != string(rm.Func) {
			t.Fatalf("init %v: %v", rm, m.Meta.All())
		}
		for k, v := range want {
			if m.Meta.Value(k) != v {
				t.Fatalf("init %v: %s = %q", rm, k, m.Meta.Value(k))
			}
		}
		cm := &trpcpb.TrpcStreamCloseMeta{Ret: int32(randU32(r) % 3), FuncRet: int32(randU32(r) % 3),
			Msg: randBytes(r, 10), TransInfo: randTransInfo(r)}
		m = decodeFrame(t, streamFrame(t, streamClose, 1, cm))
		if m.Meta.Len() > len(cm.TransInfo) || (m.Status == codec.StatusOK) != (cm.Ret == 0 && cm.FuncRet == 0) {
			t.Fatalf("close %v: %v %v", cm, m.Status, m.Meta.All())
		}
	}
}

// TestStreamMalformed: bad metas and stream frame types are errors.
func TestStreamMalformed(t *testing.T) {
	c := newTestCodec(t)
	for _, f := range [][]byte{
		{0x09, 0x30, 1, 1, 0, 0, 0, 18, 0, 0, 0, 0, 0, 100, 1, 0, 0x0a, 0x05}, // INIT: truncated request_meta
		{0x09, 0x30, 1, 4, 0, 0, 0, 18, 0, 0, 0, 0, 0, 100, 1, 0, 0x10, 0xff}, // CLOSE: truncated varint
		{0x09, 0x30, 1, 3, 0, 0, 0, 17, 0, 0, 0, 0, 0, 100, 1, 0, 0x07},       // FEEDBACK: wire type 7
		{0x09, 0x30, 1, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 100, 1, 0},             // stream frame type 0
		{0x09, 0x30, 1, 9, 0, 0, 0, 16, 0, 0, 0, 0, 0, 100, 1, 0},             // stream frame type 9
	} {
		if err := c.Decode(f, &codec.Message{Frame: f}); err == nil {
			t.Errorf("% x: no error", f)
		}
	}
}
