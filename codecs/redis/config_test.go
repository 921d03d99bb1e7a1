package redis

import (
	"encoding/json"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

func TestRegistered(t *testing.T) {
	for _, name := range []string{Name, Alias} {
		p, ok := codec.Lookup(name)
		if !ok {
			t.Fatalf("%s is not registered", name)
		}
		for _, cfg := range []string{"", "null", "{}", `{"max_frame_bytes": 1024, "max_depth": 8, "max_elements": 100}`} {
			if _, err := p.New(json.RawMessage(cfg)); err != nil {
				t.Errorf("%s with config %q: %v", name, cfg, err)
			}
		}
		for _, cfg := range []string{`{"bogus": 1}`, `{"max_frame_bytes": 8}`, `{"max_frame_bytes": -1}`, `{"max_depth": 2000}`,
			`{"max_depth": -1}`, `{"max_elements": -5}`, `{} {}`, `[1]`} {
			if _, err := p.New(json.RawMessage(cfg)); err == nil {
				t.Errorf("%s accepted config %q", name, cfg)
			}
		}
	}
	p, _ := codec.Lookup(Name)
	f, err := p.New(json.RawMessage(`{"max_frame_bytes": 1024}`))
	if err != nil {
		t.Fatal(err)
	}
	if o := f.(*Factory).Options(); o != (Options{MaxFrame: 1024, MaxDepth: DefaultMaxDepth, MaxElements: DefaultMaxElements}) {
		t.Errorf("options %+v", o)
	}
	if o := newTestFactory(t).Options(); o.MaxFrame != 64<<20 {
		t.Errorf("default max frame %d", o.MaxFrame)
	}
}

// TestCapabilities: the factory declares ordered responses and makes
// codecs of a known side for the engine.
func TestCapabilities(t *testing.T) {
	f := newTestFactory(t)
	if c := codec.CapabilitiesOf(f); c != (codec.Capabilities{OrderedResponses: true}) {
		t.Fatalf("capabilities %+v", c)
	}
	if s := codec.NewCodecFor(f, codec.SideUpstream).(*Codec).Side(); s != codec.SideUpstream {
		t.Errorf("NewCodecFor(SideUpstream) side %d", s)
	}
	if s := f.NewCodec().(*Codec).Side(); s != codec.SideBoth {
		t.Errorf("NewCodec side %d", s)
	}
}
