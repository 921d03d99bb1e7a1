package trpc

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// TestRegistered: the codec is registered under its name and Aeraki's.
func TestRegistered(t *testing.T) {
	for _, n := range []string{"trpc", "aeraki.meta_protocol.codec.trpc"} {
		p, ok := codec.Lookup(n)
		if !ok || p.Name != Name {
			t.Fatalf("%s: not registered", n)
		}
		if _, err := p.New(nil); err != nil {
			t.Fatal(err)
		}
		if c := codec.CapabilitiesOf(newFactory(t, nil)); c != (codec.Capabilities{Streams: true}) {
			t.Errorf("capabilities %+v: the codec declares streams, and only them", c)
		}
	}
}

func newFactory(t *testing.T, config json.RawMessage) codec.Factory {
	t.Helper()
	f, err := newFromJSON(config)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestConfig: max_frame_bytes bounds Split; bad configs are refused.
func TestConfig(t *testing.T) {
	for _, cfg := range []string{``, `null`, `{}`, ` {"max_frame_bytes": 0} `} {
		if c := newFactory(t, json.RawMessage(cfg)).NewCodec().(*Codec); c.maxFrame != DefaultMaxFrame {
			t.Errorf("%q: max %d", cfg, c.maxFrame)
		}
	}
	c := newFactory(t, json.RawMessage(`{"max_frame_bytes": 100}`)).NewCodec()
	f := goldenFrame(t, "req_hello") // 155 bytes
	if _, err := c.Split(f); err == nil || !strings.Contains(err.Error(), "exceeds the maximum of 100") {
		t.Errorf("split of a %d-byte frame with a 100-byte maximum: %v", len(f), err)
	}
	for _, bad := range []string{`{"max_frame_bytes": 15}`, `{"max_frame_bytes": 4294967296}`,
		`{"max_frame_size": 100}`, `{"max_frame_bytes": 100} {}`, `[]`} {
		if _, err := newFromJSON(json.RawMessage(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// TestDecodeAllocations: decoding requests and responses allocates nothing.
func TestDecodeAllocations(t *testing.T) {
	for _, name := range []string{"req_trans_info", "req_hello", "rsp_hello", "rsp_no_func", "stream_c2s_init", "stream_s2c_close"} {
		f := goldenFrame(t, name)
		c := newTestCodec(t)
		var m codec.Message
		if n := testing.AllocsPerRun(100, func() {
			m.Reset()
			m.Frame = f
			if err := c.Decode(f, &m); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}
