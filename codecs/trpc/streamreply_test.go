package trpc

import (
	"testing"

	"google.golang.org/protobuf/proto"
	trpcpb "trpc.group/trpc/trpc-protocol/pb/go/trpc"

	"github.com/metaproxy/metaproxy/codec"
)

// TestStreamErrorReply checks the frames that end a stream with the
// protocol's generated types: a refused INIT is an INIT whose
// response_meta has the ret and message trpc-go's client turns into an
// error; any other stream frame gets a CLOSE of type RESET.
func TestStreamErrorReply(t *testing.T) {
	for _, tc := range []struct {
		golden string
		kind   codec.Kind
	}{{"stream_c2s_init", codec.KindStreamInit}, {"stream_c2s_data", codec.KindStreamData}, {"stream_c2s_close", codec.KindStreamClose}, {"", codec.KindStreamData}} {
		m := &codec.Message{Kind: tc.kind, ID: 777, StreamID: 777}
		if tc.golden != "" {
			m = decodeFrame(t, goldenFrame(t, tc.golden))
		}
		out := newTestCodec(t).ErrorReply(nil, m, codec.Errorf(codec.ErrUnavailable, "upstream gone"))
		h, err := parseHead(out)
		if err != nil || h.frameType != frameStream || h.streamID != uint32(m.StreamID) || h.headerLen != 0 {
			t.Fatalf("%s: head %+v err %v", tc.golden, h, err)
		}
		if tc.kind == codec.KindStreamInit {
			var im trpcpb.TrpcStreamInitMeta
			if err := proto.Unmarshal(out[HeadLen:], &im); err != nil || h.streamType != streamInit {
				t.Fatalf("init reply: type %d err %v", h.streamType, err)
			}
			if r := im.GetResponseMeta(); r.GetRet() != RetClientNetwork || string(r.GetErrorMsg()) != "unavailable: upstream gone" {
				t.Errorf("init reply meta %v", r)
			}
			continue
		}
		var cm trpcpb.TrpcStreamCloseMeta
		if err := proto.Unmarshal(out[HeadLen:], &cm); err != nil || h.streamType != streamClose {
			t.Fatalf("%s: close reply type %d err %v", tc.golden, h.streamType, err)
		}
		if cm.GetCloseType() != int32(trpcpb.TrpcStreamCloseType_TRPC_STREAM_RESET) || cm.GetRet() != RetClientNetwork || string(cm.GetMsg()) != "unavailable: upstream gone" {
			t.Errorf("%s: close meta %v", tc.golden, &cm)
		}
	}
}
