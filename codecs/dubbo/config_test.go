package dubbo

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

func TestRegistered(t *testing.T) {
	for _, name := range []string{"dubbo", "aeraki.meta_protocol.codec.dubbo"} {
		p, ok := codec.Lookup(name)
		if !ok {
			t.Fatalf("%s is not registered", name)
		}
		for _, cfg := range []string{"", "null", "{}", `{"max_frame_bytes": 1024}`} {
			if _, err := p.New(json.RawMessage(cfg)); err != nil {
				t.Errorf("%s with config %q: %v", name, cfg, err)
			}
		}
		for _, cfg := range []string{`{"bogus": 1}`, `{"max_frame_bytes": 8}`, `{"max_frame_bytes": -1}`,
			`{"max_frame_bytes": 5000000000}`, `{} {}`, `[1]`} {
			if _, err := p.New(json.RawMessage(cfg)); err == nil {
				t.Errorf("%s accepted config %q", name, cfg)
			}
		}
	}
}

// header16 returns a request header announcing a body of n bytes.
func header16(n uint32) []byte {
	h := appendHeader(nil, flagRequest|flagTwoWay|serialHessian2, 0, 1)
	binary.BigEndian.PutUint32(h[12:], n)
	return h
}

func TestSplitLimits(t *testing.T) {
	p, _ := codec.Lookup(Name)
	f, err := p.New(json.RawMessage(`{"max_frame_bytes": 100}`))
	if err != nil {
		t.Fatal(err)
	}
	c := f.NewCodec()
	if n, err := c.Split(header16(84)); n != 0 || err != nil {
		t.Errorf("a 100-byte frame, header only: n=%d err=%v, want more data", n, err)
	}
	var pe *codec.ProtocolError
	if _, err := c.Split(header16(85)); !errors.As(err, &pe) {
		t.Errorf("a 101-byte frame over a 100-byte limit: err=%v, want a *codec.ProtocolError", err)
	}
	d := newTestCodec(t)
	if _, err := d.Split(header16(8 << 20)); err != nil {
		t.Errorf("an 8 MiB body under the default limit: %v", err)
	}
	if _, err := d.Split(header16(8<<20 + 1)); !errors.As(err, &pe) {
		t.Errorf("a body over 8 MiB: err=%v, want a *codec.ProtocolError", err)
	}
	if _, err := d.Split(header16(1<<32 - 1)); !errors.As(err, &pe) {
		t.Errorf("a 4 GiB body: err=%v, want a *codec.ProtocolError", err)
	}
	if _, err := d.Split([]byte{0xdb}); !errors.As(err, &pe) {
		t.Errorf("one byte of bad magic: err=%v", err)
	}
	if n, err := d.Split([]byte{0xda, 0xbb, 0xc2}); n != 0 || err != nil {
		t.Errorf("a partial header: n=%d err=%v", n, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := goldenFrame(t, "lib_req_typical")
	for name, f := range map[string][]byte{
		"short":          good[:10],
		"bad magic":      append([]byte{0xda, 0xbc}, good[2:]...),
		"body too short": good[:len(good)-1],
		"body too long":  append(append([]byte(nil), good...), 'N'),
	} {
		var m codec.Message
		var pe *codec.ProtocolError
		if err := newTestCodec(t).Decode(f, &m); !errors.As(err, &pe) {
			t.Errorf("%s: err=%v, want a *codec.ProtocolError", name, err)
		}
	}
}
