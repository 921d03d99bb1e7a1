package thriftcodec

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
	thriftcodec "github.com/metaproxy/metaproxy/codecs/thrift"
	"github.com/metaproxy/metaproxy/test/peers/thrift/gen/hello"
)

// config pins w's transport and protocol.
func (w Wire) config() thriftcodec.Config {
	return thriftcodec.Config{Transport: w.Transport, Protocol: w.Protocol}
}

func factory(t *testing.T, c thriftcodec.Config) *thriftcodec.Factory {
	t.Helper()
	f, err := thriftcodec.NewFactory(c)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func decode(t *testing.T, c codec.Codec, frame []byte) *codec.Message {
	t.Helper()
	n, err := c.Split(frame)
	if err != nil || n != len(frame) {
		t.Fatalf("split of %d bytes: n=%d err=%v", len(frame), n, err)
	}
	m := &codec.Message{Frame: frame}
	if err := c.Decode(frame, m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// TestConformanceWithLibraryBody runs the conformance kit on frames the
// library writes now, checking with the library that edits keep the body.
func TestConformanceWithLibraryBody(t *testing.T) {
	for _, w := range Wires {
		t.Run(w.Name, func(t *testing.T) {
			codectest.Run(t, codectest.Suite{
				Factory:   factory(t, w.config()),
				Requests:  frames(t, w, Requests(w)),
				Responses: frames(t, w, Responses(w)),
				Body:      Body(w),
				NoHeaders: !w.Header(),
			})
		})
	}
}

// TestDecodeAgreesWithLibrary decodes every frame with the codec (detecting
// the wire where it can) and with the library, and compares.
func TestDecodeAgreesWithLibrary(t *testing.T) {
	for _, w := range Wires {
		cfg := thriftcodec.Config{}
		if w.NonStrict && w.Transport == "unframed" {
			cfg.Protocol = "binary" // too ambiguous to detect
		}
		for _, s := range append(Requests(w), Responses(w)...) {
			f, err := w.Write(s)
			if err != nil {
				t.Fatal(err)
			}
			lib, err := Read(w, f)
			if err != nil {
				t.Fatal(err)
			}
			m := decode(t, factory(t, cfg).NewCodec(), f)
			name := fmt.Sprintf("%s %s %d", w.Name, lib.Name, lib.Seq)
			tr, pr, ok := thriftcodec.SplitVariant(m.Variant)
			if !ok || tr.String() != w.Transport || pr.String() != w.Protocol {
				t.Errorf("%s: variant %v/%v", name, tr, pr)
			}
			if m.ID != uint64(uint32(lib.Seq)) {
				t.Errorf("%s: id %d", name, m.ID)
			}
			svc, method, _ := strings.Cut(lib.Name, ":")
			if method == "" {
				svc, method = "", lib.Name
			}
			if m.Meta.Value(codec.KeyMethod) != method || m.Meta.Value(codec.KeyService) != svc {
				t.Errorf("%s: method %q service %q", name, m.Meta.Value(codec.KeyMethod), m.Meta.Value(codec.KeyService))
			}
			for k, v := range lib.Headers {
				if got := m.Meta.Value(k); got != v {
					t.Errorf("%s: header %s=%q, want %q", name, k, got, v)
				}
			}
			kind, status := expect(lib)
			if m.Kind != kind || m.Status != status {
				t.Errorf("%s: kind %v status %v, want %v %v", name, m.Kind, m.Status, kind, status)
			}
		}
	}
}

// expect is what the codec must say about a message the library read.
func expect(lib Parsed) (codec.Kind, codec.Status) {
	switch lib.Type {
	case thrift.CALL:
		return codec.KindRequest, codec.StatusOK
	case thrift.ONEWAY:
		return codec.KindOneway, codec.StatusOK
	case thrift.EXCEPTION:
		return codec.KindResponse, codec.StatusServerFailure
	}
	if bytes.Contains(lib.Body, []byte(`"err":{`)) {
		return codec.KindResponse, codec.StatusError
	}
	return codec.KindResponse, codec.StatusOK
}

// TestEditsReadByLibrary rewrites sequence ids (small, large, across
// compact varint lengths) and adds headers, and reads the result with the
// library.
func TestEditsReadByLibrary(t *testing.T) {
	for _, w := range Wires {
		f := factory(t, w.config())
		for _, s := range Requests(w) {
			frame, err := w.Write(s)
			if err != nil {
				t.Fatal(err)
			}
			before, err := Read(w, frame)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []uint64{0, 1, 127, 128, 1 << 20, 1<<32 - 1} {
				e := &codec.Edit{SetID: true, ID: id}
				if w.Header() {
					e.Headers = []codec.KV{{Key: "x-route", Value: fmt.Sprint(id)}, {Key: "tenant", Value: "t9"}}
				}
				c := f.NewCodec()
				out, err := c.Encode(nil, decode(t, c, frame), e)
				if err != nil {
					t.Fatalf("%s %s: %v", w.Name, s.Method, err)
				}
				after, err := Read(w, out)
				if err != nil {
					t.Fatalf("%s %s id %d: the library cannot read the edited frame: %v", w.Name, s.Method, id, err)
				}
				if after.Seq != int32(uint32(id)) || after.Name != before.Name || !bytes.Equal(after.Body, before.Body) {
					t.Errorf("%s %s id %d: library read seq %d name %q", w.Name, s.Method, id, after.Seq, after.Name)
				}
				if w.Header() {
					want := map[string]string{"x-route": fmt.Sprint(id), "tenant": "t9"}
					for k, v := range before.Headers {
						if _, edited := want[k]; !edited {
							want[k] = v
						}
					}
					if fmt.Sprint(after.Headers) != fmt.Sprint(want) {
						t.Errorf("%s %s: headers %v, want %v", w.Name, s.Method, after.Headers, want)
					}
				}
			}
		}
	}
}

// TestErrorReplyReadByLibrary checks that a real client would get a
// TApplicationException of the right type, method and sequence id.
func TestErrorReplyReadByLibrary(t *testing.T) {
	want := map[codec.ErrorType]int32{
		codec.ErrRouteNotFound: thrift.UNKNOWN_METHOD, codec.ErrUnknownMethod: thrift.UNKNOWN_METHOD,
		codec.ErrBadRequest: thrift.PROTOCOL_ERROR, codec.ErrBadResponse: thrift.PROTOCOL_ERROR,
		codec.ErrTimeout: thrift.INTERNAL_ERROR, codec.ErrInternal: thrift.INTERNAL_ERROR,
		codec.ErrUnavailable: thrift.INTERNAL_ERROR, codec.ErrNoHealthyUpstream: thrift.INTERNAL_ERROR,
		codec.ErrClusterNotFound: thrift.INTERNAL_ERROR, codec.ErrOverloaded: thrift.UNKNOWN_APPLICATION_EXCEPTION,
		codec.ErrUnauthorized: thrift.UNKNOWN_APPLICATION_EXCEPTION,
	}
	for _, w := range Wires {
		f := factory(t, w.config())
		for _, s := range Requests(w) {
			frame, err := w.Write(s)
			if err != nil {
				t.Fatal(err)
			}
			c := f.NewCodec()
			req := decode(t, c, frame)
			for et := codec.ErrorType(0); et < codec.NumErrorTypes; et++ {
				out := c.ErrorReply(nil, req, codec.Errorf(et, "for %s", s.Method))
				if s.Type == thrift.ONEWAY {
					if len(out) != 0 {
						t.Errorf("%s: an error reply to a oneway call", w.Name)
					}
					continue
				}
				r, err := Read(w, out)
				if err != nil {
					t.Fatalf("%s %s %v: %v", w.Name, s.Method, et, err)
				}
				if r.Type != thrift.EXCEPTION || r.Name != s.Method || r.Seq != s.Seq || r.AppException == nil {
					t.Fatalf("%s %s %v: read %q type %d seq %d", w.Name, s.Method, et, r.Name, r.Type, r.Seq)
				}
				if got := r.AppException.TypeId(); got != want[et] || !strings.Contains(r.AppException.Error(), et.String()) {
					t.Errorf("%s %v: exception type %d %q, want type %d", w.Name, et, got, r.AppException.Error(), want[et])
				}
			}
		}
	}
}

// TestUnframedWalkRandomBags splits unframed streams of random, deeply
// nested messages written by the library, whole and trickled.
func TestUnframedWalkRandomBags(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for _, w := range Wires {
		if w.Transport != "unframed" {
			continue
		}
		var stream []byte
		var lens []int
		for i := 0; i < 40; i++ {
			s := Spec{Method: "echoBag", Type: thrift.CALL, Seq: int32(i), Body: &hello.HelloEchoBagArgs{Bag: RandomBag(r, 4)}}
			if i%2 == 1 {
				s = Spec{Method: "echoBag", Type: thrift.REPLY, Seq: int32(i), Body: &hello.HelloEchoBagResult{Success: RandomBag(r, 4)}}
			}
			f, err := w.Write(s)
			if err != nil {
				t.Fatal(err)
			}
			stream = append(stream, f...)
			lens = append(lens, len(f))
		}
		c := factory(t, thriftcodec.Config{Protocol: w.Protocol}).NewCodec()
		rest := stream
		for i, want := range lens {
			n, err := c.Split(rest)
			if err != nil || n != want {
				t.Fatalf("%s message %d: split %d err %v, want %d", w.Name, i, n, err, want)
			}
			rest = rest[n:]
		}
		// The same stream in reads of 1 to 64 bytes.
		c = factory(t, thriftcodec.Config{Protocol: w.Protocol}).NewCodec()
		var buf []byte
		got := 0
		for off := 0; off < len(stream); {
			k := min(1+r.Intn(64), len(stream)-off)
			buf = append(buf, stream[off:off+k]...)
			off += k
			for {
				n, err := c.Split(buf)
				if err != nil {
					t.Fatalf("%s trickled: %v", w.Name, err)
				}
				if n == 0 {
					break
				}
				if n != lens[got] {
					t.Fatalf("%s trickled message %d: %d bytes, want %d", w.Name, got, n, lens[got])
				}
				buf = buf[n:]
				got++
			}
		}
		if got != len(lens) {
			t.Fatalf("%s trickled: %d of %d messages", w.Name, got, len(lens))
		}
	}
}
