package dubbo

import (
	"encoding/binary"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
)

func TestRejectReply(t *testing.T) {
	f, err := NewFactory(Options{MaxFrame: 64})
	if err != nil {
		t.Fatal(err)
	}
	c := f.NewCodec().(*Codec)
	big := goldenFrame(t, "lib_req_hello") // larger than 64 bytes
	if _, err := c.Split(big); err == nil {
		t.Fatal("Split accepted a frame over max_frame_bytes")
	}
	out := c.RejectReply(nil, big[:HeaderLen], &codec.Error{Type: codec.ErrBadRequest, Message: "frame too large"})
	d, n, err := codectest.DecodeOne(NewCodecForTest(), out)
	if err != nil || n != len(out) || d.Kind != codec.KindResponse || d.Status != codec.StatusServerFailure ||
		d.ID != binary.BigEndian.Uint64(big[4:12]) {
		t.Fatalf("reject reply %+v n=%d err=%v", d, n, err)
	}
	for name, b := range map[string][]byte{
		"short":     big[:HeaderLen-1],
		"oneway":    withFlags(big, big[2]&^flagTwoWay),
		"response":  withFlags(big, big[2]&^flagRequest),
		"heartbeat": withFlags(big, big[2]|flagEvent),
	} {
		if out := c.RejectReply(nil, b, &codec.Error{Type: codec.ErrBadRequest}); len(out) != 0 {
			t.Errorf("%s: got a reply", name)
		}
	}
}

func withFlags(f []byte, flags byte) []byte {
	b := append([]byte(nil), f...)
	b[2] = flags
	return b
}

// NewCodecForTest returns a codec with the default limits.
func NewCodecForTest() codec.Codec {
	f, _ := NewFactory(Options{})
	return f.NewCodec()
}
