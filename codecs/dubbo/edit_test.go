package dubbo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// requestFrame builds a two-way Hessian 2 request for the no-argument
// method ping whose attachments are att (raw Hessian, possibly empty).
func requestFrame(att []byte) []byte {
	f := appendHeader(nil, flagRequest|flagTwoWay|serialHessian2, 0, 9)
	for _, s := range []string{"2.0.2", "org.example.Svc", "", "ping", ""} {
		f = appendString(f, s)
	}
	f = append(f, att...)
	binary.BigEndian.PutUint32(f[12:], uint32(len(f)-HeaderLen))
	return f
}

// edit encodes frame with e and decodes the result with a fresh codec.
func edit(t *testing.T, frame []byte, e *codec.Edit) ([]byte, *codec.Message, error) {
	t.Helper()
	c := newTestCodec(t)
	out, err := c.Encode(nil, decodeFrame(t, frame), e)
	if err != nil {
		return out, nil, err
	}
	return out, decodeFrame(t, out), nil
}

// attachmentsOffset returns where the attachments of a request body start.
func attachmentsOffset(t *testing.T, frame []byte) int {
	t.Helper()
	var r reader
	r.reset(frame[HeaderLen:])
	req, err := r.request()
	if err != nil {
		t.Fatal(err)
	}
	return HeaderLen + req.att
}

func TestEditRequest(t *testing.T) {
	frame := goldenFrame(t, "lib_req_objects")
	before := decodeFrame(t, frame)
	e := &codec.Edit{SetID: true, ID: 1 << 60, Headers: []codec.KV{
		{Key: "foo", Value: "first"}, {Key: "x-new", Value: "v"}, {Key: "foo", Value: "baz"}, {Key: "astral", Value: "🤣"},
	}}
	out, after, err := edit(t, frame, e)
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != 1<<60 || after.Kind != codec.KindRequest {
		t.Errorf("id %d kind %v after the edit", after.ID, after.Kind)
	}
	for k, v := range map[string]string{"foo": "baz", "x-new": "v", "astral": "🤣"} {
		if got := after.Meta.Value(k); got != v {
			t.Errorf("%s = %q after the edit, want %q", k, got, v)
		}
	}
	if after.Meta.Len() != before.Meta.Len()+2 {
		t.Errorf("%d metadata entries after the edit, want %d", after.Meta.Len(), before.Meta.Len()+2)
	}
	// Everything up to the attachments (header aside) is untouched.
	at := attachmentsOffset(t, frame)
	if !bytes.Equal(out[HeaderLen:at], frame[HeaderLen:at]) {
		t.Error("the edit changed the call arguments")
	}
	if got := binary.BigEndian.Uint32(out[12:16]); int(got) != len(out)-HeaderLen {
		t.Errorf("body length %d in a %d-byte frame", got, len(out))
	}
}

func TestEditAttachmentForms(t *testing.T) {
	hs := []codec.KV{{Key: "k", Value: "v2"}, {Key: "added", Value: strings.Repeat("ü", 2000)}}
	for _, tc := range []struct {
		name string
		att  []byte
		keep map[string]string // metadata the edit must keep
	}{
		{"absent", nil, nil},
		{"null", []byte{'N'}, nil},
		{"untyped", cat('H', 0x01, "k", 0x02, "v1", 0x01, "n", 0x78, 'Z'), nil},
		{"typed", cat('M', 0x07, "HashMap", 0x01, "k", 0x91, 0x01, "o", 0x01, "x", 'Z'), map[string]string{"o": "x"}},
		{"null value", cat('H', 0x01, "k", 'N', 'Z'), nil},
		{"non-string key", cat('H', 0x91, 0x01, "x", 0x01, "k", 0x01, "v", 'Z'), nil},
	} {
		frame := requestFrame(tc.att)
		_, m, err := edit(t, frame, &codec.Edit{Headers: hs})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		for _, kv := range hs {
			if got := m.Meta.Value(kv.Key); got != kv.Value {
				t.Errorf("%s: %s = %.20q after the edit, want %.20q", tc.name, kv.Key, got, kv.Value)
			}
		}
		for k, v := range tc.keep {
			if got := m.Meta.Value(k); got != v {
				t.Errorf("%s: %s = %q after the edit, want %q", tc.name, k, got, v)
			}
		}
		if m.Meta.Value(codec.KeyMethod) != "ping" {
			t.Errorf("%s: method lost", tc.name)
		}
	}
}

func TestEditUnsupported(t *testing.T) {
	hs := []codec.KV{{Key: "k", Value: "v"}}
	for _, name := range []string{"lib_rsp_value", "lib_rsp_null", "lib_rsp_exception", "lib_rsp_service_not_found",
		"lib_req_heartbeat", "lib_rsp_heartbeat", "lib_req_serial6"} {
		if _, _, err := edit(t, goldenFrame(t, name), &codec.Edit{Headers: hs}); !errors.Is(err, codec.ErrUnsupported) {
			t.Errorf("%s: header edit gave %v, want codec.ErrUnsupported", name, err)
		}
	}
	// A list under the edited key: replacing it would renumber references.
	compound := requestFrame(cat('H', 0x01, "k", 0x79, 0x91, 'Z'))
	if _, _, err := edit(t, compound, &codec.Edit{Headers: hs}); !errors.Is(err, codec.ErrUnsupported) {
		t.Errorf("overwriting a list attachment gave %v, want codec.ErrUnsupported", err)
	}
	if _, m, err := edit(t, compound, &codec.Edit{Headers: []codec.KV{{Key: "other", Value: "v"}}}); err != nil || m.Meta.Value("other") != "v" {
		t.Errorf("adding beside a list attachment: %v", err)
	}
	// The id of a frame the codec does not read can still be rewritten.
	out, m, err := edit(t, goldenFrame(t, "lib_req_serial6"), &codec.Edit{SetID: true, ID: 5})
	if err != nil || m.ID != 5 || !bytes.Equal(out[12:], goldenFrame(t, "lib_req_serial6")[12:]) {
		t.Errorf("id rewrite of a serialization-6 frame: %v", err)
	}
}

func TestEditResponse(t *testing.T) {
	for _, name := range []string{"lib_rsp_value_attachments", "lib_rsp_null_attachments", "lib_rsp_exception_attachments", "lib_rsp_object_attachments"} {
		frame := goldenFrame(t, name)
		before := decodeFrame(t, frame)
		_, m, err := edit(t, frame, &codec.Edit{Headers: []codec.KV{{Key: "k", Value: "edited"}, {Key: "x-upstream", Value: "10.0.0.1"}}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Meta.Value("k") != "edited" || m.Meta.Value("x-upstream") != "10.0.0.1" || m.Status != before.Status {
			t.Errorf("%s: after the edit %v, status %v", name, m.Meta.All(), m.Status)
		}
	}
}

func TestEditLimits(t *testing.T) {
	frame := goldenFrame(t, "lib_req_typical")
	f, err := NewFactory(Options{MaxFrame: len(frame) + 4})
	if err != nil {
		t.Fatal(err)
	}
	c := f.NewCodec()
	m := decodeFrame(t, frame)
	dst := []byte("kept")
	out, err := c.Encode(dst, m, &codec.Edit{Headers: []codec.KV{{Key: "big", Value: "0123456789"}}})
	if err == nil || string(out) != "kept" {
		t.Errorf("an edit past the frame limit: err=%v, dst % x", err, out)
	}
	// A message whose frame is not a frame is an error, not a panic.
	bad := &codec.Message{Frame: frame[:8]}
	if _, err := c.Encode(nil, bad, &codec.Edit{SetID: true}); err == nil {
		t.Error("an 8-byte frame was encoded")
	}
}
