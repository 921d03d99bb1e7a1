package mysql

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

func TestConfig(t *testing.T) {
	p, ok := codec.Lookup(Alias)
	if q, ok2 := codec.Lookup(Name); !ok || !ok2 || p != q {
		t.Fatal("not registered under both names")
	}
	f, err := p.New([]byte(`{"max_frame_bytes": 1024}`))
	if err != nil || f.(*Factory).Options().MaxFrame != 1024 {
		t.Fatalf("%v %+v", err, f)
	}
	if f, err := p.New(nil); err != nil || f.(*Factory).Options().MaxFrame != DefaultMaxFrame {
		t.Fatalf("default: %v", err)
	}
	for _, bad := range []string{`{"max_frame":1}`, `{"max_frame_bytes": 255}`, `{"max_frame_bytes": "x"}`, `{} {}`} {
		if _, err := p.New([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if !codec.CapabilitiesOf(f).ServerFirst {
		t.Error("not server-first")
	}
	for side, want := range map[codec.Side]codec.Side{codec.SideBoth: codec.SideDownstream,
		codec.SideDownstream: codec.SideDownstream, codec.SideUpstream: codec.SideUpstream} {
		if got := codec.NewCodecFor(f, side).(*Codec).Side(); got != want {
			t.Errorf("side %d: %d", side, got)
		}
	}
	if f.NewCodec().(*Codec).Side() != codec.SideDownstream {
		t.Error("NewCodec is not downstream")
	}
}
