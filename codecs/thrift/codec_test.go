package thrift

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

func decodeFrame(t *testing.T, c codec.Codec, f []byte) *codec.Message {
	t.Helper()
	n, err := c.Split(f)
	if err != nil || n != len(f) {
		t.Fatalf("split of %d bytes: n=%d err=%v", len(f), n, err)
	}
	m := &codec.Message{Frame: f}
	if err := c.Decode(f, m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

func wireNamed(t testing.TB, name string) wire {
	for _, w := range wires {
		if w.name == name {
			return w
		}
	}
	t.Fatalf("no wire %s", name)
	return wire{}
}

func TestConfig(t *testing.T) {
	for _, name := range []string{"thrift", "aeraki.meta_protocol.codec.thrift"} {
		if _, ok := codec.Lookup(name); !ok {
			t.Errorf("%s not registered", name)
		}
	}
	good := []string{``, `null`, `{}`, `{"transport":"framed","protocol":"compact"}`, `{"transport":"header","protocol":"binary","max_frame_bytes":1024}`, `{"transport":"auto","protocol":"auto"}`, `{"transport":"framed_header","protocol":"compact"}`}
	for _, c := range good {
		if _, err := New(json.RawMessage(c)); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
	bad := []string{`{"transport":"buffered"}`, `{"protocol":"json"}`, `{"max_frame_bytes":10}`, `{"max_frame_bytes":1073741824}`, `{"framed":true}`, `{"transport":"framed"} {}`, `[1]`}
	for _, c := range bad {
		if _, err := New(json.RawMessage(c)); err == nil {
			t.Errorf("%s: accepted", c)
		}
	}
}

func TestDetect(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		bytes string
		want  uint16 // 0: wait
		err   bool
	}{
		{"unframed strict", Config{}, "\x80\x01\x00\x01", Variant(TransportUnframed, ProtocolBinary), false},
		{"unframed compact", Config{}, "\x82\x21", Variant(TransportUnframed, ProtocolCompact), false},
		{"framed strict", Config{}, "\x00\x00\x00\x20\x80\x01", Variant(TransportFramed, ProtocolBinary), false},
		{"framed compact", Config{}, "\x00\x00\x00\x20\x82\x81", Variant(TransportFramed, ProtocolCompact), false},
		{"header compact", Config{}, "\x00\x00\x00\x20\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x02", Variant(TransportHeader, ProtocolCompact), false},
		{"header waits for its protocol id", Config{}, "\x00\x00\x00\x20\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01", 0, false},
		{"framed non-strict", Config{}, "\x00\x00\x00\x20\x00\x00\x00\x01m\x01", Variant(TransportFramed, ProtocolBinary), false},
		{"framed non-strict waits for its type", Config{}, "\x00\x00\x00\x20\x00\x00\x00\x01m", 0, false},
		{"unframed non-strict needs a pin", Config{}, "\x00\x00\x00\x01m\x01\x00\x00\x00\x01", 0, true},
		{"unframed non-strict, binary pinned", Config{Protocol: "binary"}, "\x00\x00\x00\x01m\x01\x00\x00\x00\x01", Variant(TransportUnframed, ProtocolBinary), false},
		{"unframed non-strict, unframed pinned", Config{Transport: "unframed"}, "\x00\x00\x00\x01m\x01", Variant(TransportUnframed, ProtocolBinary), false},
		{"compact pinned refuses binary", Config{Protocol: "compact"}, "\x80\x01\x00\x01", 0, true},
		{"framed pinned refuses unframed", Config{Transport: "framed"}, "\x80\x01\x00\x01\x00\x00\x00\x01", 0, true},
		{"header pinned refuses framed", Config{Transport: "header"}, "\x00\x00\x00\x20\x80\x01\x00\x01", 0, true},
		{"THeader with the binary protocol, compact pinned", Config{Protocol: "compact"}, "\x00\x00\x00\x20\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x00", 0, true},
		{"frame too large", Config{MaxFrameBytes: 100}, "\x00\x00\x01\x00\x80\x01\x00\x01", 0, true},
		{"one byte", Config{}, "\x80", 0, false},
		{"framed header binary", Config{}, "\x00\x00\x00\x24\x00\x00\x00\x20\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x00", Variant(TransportFramedHeader, ProtocolBinary), false},
		{"framed header compact", Config{}, "\x00\x00\x00\x24\x00\x00\x00\x20\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x02", Variant(TransportFramedHeader, ProtocolCompact), false},
		{"framed header, pinned", Config{Transport: "framed_header", Protocol: "compact"}, "\x00\x00\x00\x24\x00\x00\x00\x20\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x02", Variant(TransportFramedHeader, ProtocolCompact), false},
		{"framed header waits for its magic", Config{}, "\x00\x00\x00\x24\x00\x00\x00\x20\x0f", 0, false},
		{"framed header waits for its protocol id", Config{}, "\x00\x00\x00\x24\x00\x00\x00\x20\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01", 0, false},
		{"framed header with another inner length", Config{}, "\x00\x00\x00\x24\x00\x00\x00\x1f\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x00", 0, true},
		{"framed header with the binary protocol, compact pinned", Config{Protocol: "compact"}, "\x00\x00\x00\x24\x00\x00\x00\x20\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x00", 0, true},
		{"header pinned refuses framed header", Config{Transport: "header"}, "\x00\x00\x00\x24\x00\x00\x00\x20\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x00", 0, true},
		{"framed pinned refuses framed header", Config{Transport: "framed"}, "\x00\x00\x00\x24\x00\x00\x00\x20\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x00", 0, true},
		{"framed header pinned refuses header", Config{Transport: "framed_header"}, "\x00\x00\x00\x20\x0f\xff\x00\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00", 0, true},
		{"framed header pinned refuses framed", Config{Transport: "framed_header"}, "\x00\x00\x00\x20\x80\x01\x00\x01\x00\x00\x00\x01", 0, true},
		{"the largest frame length", Config{}, "\x7f\xff\xff\xff\x80\x01\x00\x01", 0, true},
		{"0x80000000 is no frame length", Config{}, "\x80\x00\x00\x00\x80\x01\x00\x01", 0, true},
		{"80 01 is unframed, not a length", Config{}, "\x80\x01\x00\x01\x00\x00\x00\x01", Variant(TransportUnframed, ProtocolBinary), false},
		{"82 21 is unframed, not a length", Config{}, "\x82\x21\x00\x01", Variant(TransportUnframed, ProtocolCompact), false},
	}
	for _, tc := range cases {
		s, err := tc.cfg.settings()
		if err != nil {
			t.Fatal(err)
		}
		tr, p, ok, err := detect([]byte(tc.bytes), &s)
		switch {
		case tc.err && err == nil:
			t.Errorf("%s: no error (ok=%v %v/%v)", tc.name, ok, tr, p)
		case !tc.err && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.err && tc.want == 0 && ok:
			t.Errorf("%s: decided %v/%v, want wait", tc.name, tr, p)
		case tc.want != 0 && (!ok || Variant(tr, p) != tc.want):
			t.Errorf("%s: ok=%v %v/%v", tc.name, ok, tr, p)
		}
	}
}

// TestVariantIsKept checks that a connection keeps the variant detected on
// its first frame.
func TestVariantIsKept(t *testing.T) {
	binReqs, _ := wireNamed(t, "framed-binary").golden(t)
	compReqs, _ := wireNamed(t, "framed-compact").golden(t)
	c := mustFactory(t, Config{}).NewCodec()
	decodeFrame(t, c, binReqs[0])
	n, err := c.Split(compReqs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Decode(compReqs[0][:n], &codec.Message{Frame: compReqs[0][:n]}); err == nil {
		t.Error("a compact frame on a binary connection was accepted")
	}
	hdrReqs, _ := wireNamed(t, "header-binary").golden(t)
	if n, err := c.Split(hdrReqs[0]); err == nil {
		if err := c.Decode(hdrReqs[0][:n], &codec.Message{Frame: hdrReqs[0][:n]}); err == nil {
			t.Error("a THeader frame on a framed connection was accepted")
		}
	}
	// THeader and THeader inside a framed transport do not mix either, and
	// are different variants.
	fhReqs, _ := wireNamed(t, "framed-header-binary").golden(t)
	for _, tc := range []struct {
		first, then []byte
		name        string
	}{{hdrReqs[0], fhReqs[0], "a framed THeader frame on a THeader connection"}, {fhReqs[0], hdrReqs[0], "a bare THeader frame on a framed THeader connection"}} {
		c := mustFactory(t, Config{}).NewCodec()
		m := decodeFrame(t, c, tc.first)
		if n, err := c.Split(tc.then); err == nil && n <= len(tc.then) {
			if err := c.Decode(tc.then[:n], &codec.Message{Frame: tc.then[:n]}); err == nil {
				t.Errorf("%s was accepted", tc.name)
			}
		}
		m2 := decodeFrame(t, mustFactory(t, Config{}).NewCodec(), tc.then)
		if m.Variant == m2.Variant {
			t.Errorf("THeader and framed THeader share variant %#x", m.Variant)
		}
	}
}

// TestFramedHeaderReplies checks that everything the codec writes for a call
// in THeader inside a framed transport is in the same double framing: the
// outer length counts the THeader frame, whose own length counts the rest.
func TestFramedHeaderReplies(t *testing.T) {
	reqs, _ := wireNamed(t, "framed-header-compact").golden(t)
	check := func(what string, out []byte) {
		t.Helper()
		if len(out) < 10 || int(be32(out)) != len(out)-4 || int(be32(out[4:])) != len(out)-8 || out[8] != 0x0f || out[9] != 0xff {
			t.Errorf("%s: not THeader inside a frame: % x", what, out[:min(len(out), 16)])
		}
	}
	c := mustFactory(t, Config{}).NewCodec()
	m := decodeFrame(t, c, reqs[1]) // Hello:sayHello, seq 2, headers tenant and x-b
	if m.Variant != Variant(TransportFramedHeader, ProtocolCompact) || m.Meta.Value("tenant") != "t1" || m.Meta.Value(codec.KeyService) != "Hello" {
		t.Fatalf("decoded %+v", m)
	}
	out, err := c.Encode(nil, m, &codec.Edit{SetID: true, ID: 1 << 20, Headers: []codec.KV{{Key: "tenant", Value: "t2"}, {Key: "x-new", Value: "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	check("edit", out)
	m2 := decodeFrame(t, mustFactory(t, Config{}).NewCodec(), out)
	if m2.ID != 1<<20 || m2.Meta.Value("tenant") != "t2" || m2.Meta.Value("x-new") != "v" || m2.Meta.Value("x-b") != "ü2" {
		t.Errorf("after the edit: %+v", m2)
	}
	if hd := be32(out[4+8:]); hd != 1<<20 {
		t.Errorf("THeader sequence id %d after the edit", hd)
	}
	check("error reply", c.ErrorReply(nil, m, codec.Errorf(codec.ErrRouteNotFound, "x")))
	check("reject reply", c.(codec.Rejecter).RejectReply(nil, reqs[1], codec.Errorf(codec.ErrBadRequest, "x")))
}

func TestMetadata(t *testing.T) {
	reqs, rsps := wireNamed(t, "header-compact").golden(t)
	c := mustFactory(t, Config{}).NewCodec()
	m := decodeFrame(t, c, reqs[1]) // Hello:sayHello, seq 2, headers tenant and x-b
	want := map[string]string{codec.KeyService: "Hello", codec.KeyMethod: "sayHello", KeyMessageType: "call", "tenant": "t1", "x-b": "ü2"}
	for k, v := range want {
		if got := m.Meta.Value(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if m.Meta.Len() != len(want) || m.ID != 2 || m.Kind != codec.KindRequest || m.Variant != Variant(TransportHeader, ProtocolCompact) {
		t.Errorf("got %+v", m)
	}
	if m := decodeFrame(t, c, reqs[2]); m.Kind != codec.KindOneway || m.Meta.Value(KeyMessageType) != "oneway" {
		t.Errorf("ping decoded as %v %q", m.Kind, m.Meta.Value(KeyMessageType))
	}
	if m := decodeFrame(t, c, reqs[4]); m.ID != 0xfffffffe {
		t.Errorf("sequence id -2 decoded as %d", m.ID)
	}
	statuses := []codec.Status{codec.StatusOK, codec.StatusError, codec.StatusServerFailure, codec.StatusOK, codec.StatusOK}
	r := mustFactory(t, Config{}).NewCodec()
	for i, f := range rsps {
		if m := decodeFrame(t, r, f); m.Kind != codec.KindResponse || m.Status != statuses[i] {
			t.Errorf("response %d: %v %v, want response %v", i, m.Kind, m.Status, statuses[i])
		}
	}
}

// TestHeadersCannotSpoofTheMethod checks that an info header named like a
// routing key does not replace what the message itself says.
func TestHeadersCannotSpoofTheMethod(t *testing.T) {
	reqs, _ := wireNamed(t, "header-binary").golden(t)
	c := mustFactory(t, Config{}).NewCodec()
	m := decodeFrame(t, c, reqs[0])
	out, err := c.Encode(nil, m, &codec.Edit{Headers: []codec.KV{{Key: "Method", Value: "evil"}, {Key: "message_type", Value: "reply"}}})
	if err != nil {
		t.Fatal(err)
	}
	m2 := decodeFrame(t, mustFactory(t, Config{}).NewCodec(), out)
	if m2.Meta.Value(codec.KeyMethod) != "sayHello" || m2.Meta.Value(KeyMessageType) != "call" {
		t.Errorf("method %q, message_type %q", m2.Meta.Value(codec.KeyMethod), m2.Meta.Value(KeyMessageType))
	}
}

func TestEncodeErrors(t *testing.T) {
	reqs, _ := wireNamed(t, "framed-binary").golden(t)
	c := mustFactory(t, Config{}).NewCodec()
	m := decodeFrame(t, c, reqs[0])
	_, err := c.Encode(nil, m, &codec.Edit{Headers: []codec.KV{{Key: "k", Value: "v"}}})
	if !errors.Is(err, codec.ErrUnsupported) {
		t.Errorf("header edit on framed: %v", err)
	}
	if _, err := c.Encode(nil, m, &codec.Edit{SetID: true, ID: 1 << 32}); err == nil {
		t.Error("a 33-bit sequence id was accepted")
	}
	m.Variant = 0
	if _, err := c.Encode(nil, m, &codec.Edit{SetID: true, ID: 1}); err == nil {
		t.Error("a message without a variant was encoded")
	}
	if out := c.ErrorReply(nil, m, codec.Errorf(codec.ErrInternal, "x")); len(out) != 0 {
		t.Error("an error reply without a variant")
	}
}

// TestSizeLimits checks max_frame_bytes on framed and unframed messages,
// also when the unframed message arrives a byte at a time.
func TestSizeLimits(t *testing.T) {
	f := mustFactory(t, Config{MaxFrameBytes: 64})
	frame := append([]byte{0, 0, 0, 65, 0x80, 0x01}, make([]byte, 65)...)
	if _, err := f.NewCodec().Split(frame); err == nil {
		t.Error("a 65-byte frame was accepted with max_frame_bytes 64")
	}
	// An unframed call whose argument is a 100-byte string.
	msg := append([]byte("\x80\x01\x00\x01\x00\x00\x00\x01m\x00\x00\x00\x01\x0b\x00\x01\x00\x00\x00\x64"), make([]byte, 100)...)
	msg = append(msg, 0)
	if _, err := f.NewCodec().Split(msg); err == nil {
		t.Error("a 120-byte unframed message was accepted with max_frame_bytes 64")
	}
	c := f.NewCodec()
	var err error
	for k := 1; k <= len(msg) && err == nil; k++ {
		_, err = c.Split(msg[:k])
	}
	if err == nil {
		t.Error("a trickled 120-byte unframed message was accepted with max_frame_bytes 64")
	}
	if _, err := mustFactory(t, Config{}).NewCodec().Split(msg); err != nil {
		t.Errorf("with the default limit: %v", err)
	}
}

// TestWalkResumes checks that trickled bytes are walked once: between calls
// the walker keeps its place, which only moves forward.
func TestWalkResumes(t *testing.T) {
	for _, name := range []string{"unframed-binary", "unframed-compact"} {
		reqs, _ := wireNamed(t, name).golden(t)
		f := reqs[3] // echoBag: every type, nested
		c := mustFactory(t, Config{}).NewCodec().(*Codec)
		last := 0
		for k := 1; k < len(f); k++ {
			if n, err := c.Split(f[:k]); n != 0 || err != nil {
				t.Fatalf("%s: %d of %d bytes: n=%d err=%v", name, k, len(f), n, err)
			}
			if c.w.pos < last || (k > 64 && c.w.pos == 0) {
				t.Fatalf("%s: after %d bytes the walk is at %d, was at %d", name, k, c.w.pos, last)
			}
			last = c.w.pos
		}
		if last < len(f)-16 {
			t.Errorf("%s: the walk stopped at %d of %d bytes", name, last, len(f))
		}
		if n, err := c.Split(f); n != len(f) || err != nil {
			t.Errorf("%s: n=%d err=%v", name, n, err)
		}
	}
}

// TestDecodeAllocatesNothing checks the steady state: a reused message
// decodes every golden frame without allocating.
func TestDecodeAllocatesNothing(t *testing.T) {
	for _, w := range wires {
		reqs, rsps := w.golden(t)
		for i, f := range append(reqs, rsps...) {
			c := mustFactory(t, Config{Transport: w.transport.String(), Protocol: w.protocol.String()}).NewCodec()
			var m codec.Message
			decode := func() {
				m.Reset()
				m.Frame = f
				if n, err := c.Split(f); err != nil || n != len(f) {
					t.Fatalf("%s frame %d: split %d %v", w.name, i, n, err)
				}
				if err := c.Decode(f, &m); err != nil {
					t.Fatalf("%s frame %d: %v", w.name, i, err)
				}
			}
			decode()
			if a := testing.AllocsPerRun(100, decode); a != 0 {
				t.Errorf("%s frame %d: %v allocations per split and decode", w.name, i, a)
			}
		}
	}
}

// TestOnewayMethods checks that configured methods, which the Apache Go
// client sends as CALL, decode as oneway, by method or by Service:method.
func TestOnewayMethods(t *testing.T) {
	reqs, _ := wireNamed(t, "framed-compact").golden(t) // 0: sayHello, 1: Hello:sayHello
	for _, tc := range []struct {
		names        []string
		want0, want1 codec.Kind
	}{
		{nil, codec.KindRequest, codec.KindRequest},
		{[]string{"sayHello"}, codec.KindOneway, codec.KindOneway},
		{[]string{"Hello:sayHello"}, codec.KindRequest, codec.KindOneway},
		{[]string{"Other:sayHello", "ping"}, codec.KindRequest, codec.KindRequest},
	} {
		f := mustFactory(t, Config{OnewayMethods: tc.names})
		c := f.NewCodec()
		m0, m1 := decodeFrame(t, c, reqs[0]), decodeFrame(t, c, reqs[1])
		if m0.Kind != tc.want0 || m1.Kind != tc.want1 {
			t.Errorf("%v: kinds %v %v, want %v %v", tc.names, m0.Kind, m1.Kind, tc.want0, tc.want1)
		}
		if m0.Kind == codec.KindOneway && len(c.ErrorReply(nil, m0, codec.Errorf(codec.ErrInternal, "x"))) != 0 {
			t.Errorf("%v: an error reply to a oneway call", tc.names)
		}
		for i, m := range []*codec.Message{m0, m1} {
			rejected := c.(codec.Rejecter).RejectReply(nil, m.Frame, codec.Errorf(codec.ErrBadRequest, "x"))
			if (len(rejected) == 0) != (m.Kind == codec.KindOneway) {
				t.Errorf("%v: call %d (%v) rejected with a %d-byte reply", tc.names, i, m.Kind, len(rejected))
			}
		}
		var m codec.Message
		if a := testing.AllocsPerRun(50, func() {
			m.Reset()
			m.Frame = reqs[1]
			_ = c.Decode(reqs[1], &m)
		}); a != 0 {
			t.Errorf("%v: %v allocations per decode", tc.names, a)
		}
	}
	if _, err := NewFactory(Config{OnewayMethods: []string{"Hello:"}}); err == nil {
		t.Error(`oneway method "Hello:" accepted`)
	}
}

// TestSerialClients: Thrift clients are taken to be serial (codec.Serial)
// unless concurrent_clients says they pipeline.
func TestSerialClients(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		f, err := NewFactory(Config{ConcurrentClients: concurrent})
		if err != nil {
			t.Fatal(err)
		}
		s, ok := f.NewCodec().(codec.Serial)
		if !ok || s.SerialClients() == concurrent {
			t.Errorf("concurrent_clients %v: Serial %v, SerialClients %v", concurrent, ok, ok && s.SerialClients())
		}
	}
}
