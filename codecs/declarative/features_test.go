package declarative

import (
	"encoding/binary"
	"maps"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"sigs.k8s.io/yaml"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
)

// featDesc exercises what the examples do not: little endian, a length
// counting after its field, literal magic, a raw bytes field, nested
// protobuf paths and maps, a fixed32 id, signed and bool fields, a kv
// region with a pair count, and both header targets.
const featDesc = `
name: feat
endian: little
max_frame_bytes: 400
header:
  size: 12
  fields:
    - {name: magic, offset: 0, size: 2, magic: "FT"}
    - {name: kind, offset: 2, size: 1, allowed: [1, 2]}
    - {name: hb, offset: 3, size: 1, mask: 0x80}
    - {name: len, offset: 4, size: 2}
    - {name: meta_len, offset: 6, size: 2}
    - {name: tag, offset: 8, size: 4, type: bytes}
length: {field: len, counts: after_field}
regions:
  - name: meta
    length: meta_len
    format: protobuf
    fields:
      - {name: id, path: "1", type: fixed32}
      - {name: service, path: "2.1", type: string}
      - {name: call_attrs, path: "2.5", type: "map<string,string>"}
      - {name: prio, path: "3", type: sint32}
      - {name: debug, path: "4", type: bool}
      - {name: attrs, path: "6", type: "map<string,bytes>"}
  - name: body
    length: rest
    format: kv
    kv: {count_bytes: 2, key_bytes: 2, value_bytes: 4}
kinds:
  - {kind: request, when: [{field: kind, equals: 1}]}
  - {kind: response}
request_id: {field: id}
status:
  - {field: prio, ok: [0], error: [-1]}
metadata:
  - {entries: call_attrs, kinds: [request]}
  - {entries: attrs, kinds: [request]}
  - {entries: body, kinds: [response]}
  - {key: service, from: service}
  - {key: prio, from: prio}
  - {key: debug, from: debug}
  - {key: tag, from: tag}
edits:
  headers:
    - {into: attrs, kinds: [request]}
    - {into: body, kinds: [response]}
replies:
  error:
    set: {kind: 2}
    copy: [tag]
    status: {field: prio, default: -5, by_error: {timeout: -1}}
    message: {region: body, key: err}
`

func featFactory(t testing.TB) codec.Factory {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(featDesc))
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFromJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// featFrame builds a frame: meta is the protobuf region, pairs the body.
func featFrame(kind byte, meta []byte, pairs ...string) []byte {
	f := []byte{'F', 'T', kind, 0x80, 0, 0, 0, 0, 't', 'a', 'g', '1'}
	binary.LittleEndian.PutUint16(f[6:], uint16(len(meta)))
	f = append(f, meta...)
	f = binary.LittleEndian.AppendUint16(f, uint16(len(pairs)/2))
	for i := 0; i+1 < len(pairs); i += 2 {
		f = binary.LittleEndian.AppendUint16(f, uint16(len(pairs[i])))
		f = append(f, pairs[i]...)
		f = binary.LittleEndian.AppendUint32(f, uint32(len(pairs[i+1])))
		f = append(f, pairs[i+1]...)
	}
	binary.LittleEndian.PutUint16(f[4:], uint16(len(f)-6))
	return f
}

func featMeta(id uint32, prio int64) []byte {
	var call []byte
	call = protowire.AppendTag(call, 1, protowire.BytesType)
	call = protowire.AppendString(call, "svc.A")
	entry := protowire.AppendTag(nil, 1, protowire.BytesType)
	entry = protowire.AppendString(entry, "zone")
	entry = protowire.AppendTag(entry, 2, protowire.BytesType)
	entry = protowire.AppendString(entry, "z1")
	call = protowire.AppendTag(call, 5, protowire.BytesType)
	call = protowire.AppendBytes(call, entry)
	m := protowire.AppendTag(nil, 1, protowire.Fixed32Type)
	m = protowire.AppendFixed32(m, id)
	m = protowire.AppendTag(m, 2, protowire.BytesType)
	m = protowire.AppendBytes(m, call)
	m = protowire.AppendTag(m, 3, protowire.VarintType)
	m = protowire.AppendVarint(m, protowire.EncodeZigZag(prio))
	m = protowire.AppendTag(m, 4, protowire.VarintType)
	return protowire.AppendVarint(m, 1)
}

func TestFeatures(t *testing.T) {
	f := featFactory(t)
	req := featFrame(1, featMeta(0x01020304, 0), "ignored", "in requests")
	m := decode(t, f, req)
	want := map[string]string{"service": "svc.A", "zone": "z1", "prio": "0", "debug": "true", "tag": "tag1"}
	if m.Kind != codec.KindRequest || m.ID != 0x01020304 || !maps.Equal(metaMap(m), want) {
		t.Fatalf("%v %x %v", m.Kind, m.ID, metaMap(m))
	}
	for prio, st := range map[int64]codec.Status{0: codec.StatusOK, -1: codec.StatusError, 3: codec.StatusServerFailure} {
		r := decode(t, f, featFrame(2, featMeta(5, prio), "k", "v"))
		if r.Kind != codec.KindResponse || r.Status != st || r.Meta.Value("k") != "v" || r.Meta.Value("prio") != decimal(uint64(prio), true) {
			t.Errorf("prio %d: %v %v %v", prio, r.Kind, r.Status, metaMap(r))
		}
	}
	// A fixed32 id is patched in place; a header edit rewrites the region
	// and fixes both little-endian lengths.
	out, err := f.NewCodec().Encode(nil, m, &codec.Edit{SetID: true, ID: 0xfffffff0, Headers: []codec.KV{{Key: "x-h", Value: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	m2 := decode(t, f, out)
	if m2.ID != 0xfffffff0 || m2.Meta.Value("x-h") != "1" || m2.Meta.Value("zone") != "z1" {
		t.Errorf("edited: %x %v", m2.ID, metaMap(m2))
	}
	// Error replies: the status by error type, the tag copied, the text as
	// a counted pair.
	for et, st := range map[codec.ErrorType]codec.Status{codec.ErrRouteNotFound: codec.StatusServerFailure, codec.ErrTimeout: codec.StatusError} {
		r := decode(t, f, f.NewCodec().ErrorReply(nil, m, &codec.Error{Type: et, Message: "x"}))
		if r.Kind != codec.KindResponse || r.ID != m.ID || r.Status != st || r.Meta.Value("tag") != "tag1" || r.Meta.Value("err") != et.String()+": x" {
			t.Errorf("%v: %v %x %v %v", et, r.Kind, r.ID, r.Status, metaMap(r))
		}
	}
	// A frame over max_frame_bytes is answered from its first bytes.
	big := featFrame(1, featMeta(42, 0), "pad", string(make([]byte, 400)))
	c := f.NewCodec()
	if _, err := c.Split(big); err == nil {
		t.Fatal("an oversized frame was accepted")
	}
	r := decode(t, f, c.(codec.Rejecter).RejectReply(nil, big[:12+len(featMeta(42, 0))], &codec.Error{Type: codec.ErrBadRequest}))
	if r.ID != 42 || r.Status == codec.StatusOK {
		t.Errorf("reject reply %x %v", r.ID, r.Status)
	}
	if out := c.(codec.Rejecter).RejectReply(nil, big[:14], &codec.Error{}); len(out) != 0 {
		t.Error("a reject reply without the id's region")
	}
	codectest.Run(t, codectest.Suite{
		Factory:   f,
		Requests:  [][]byte{req, featFrame(1, nil)},
		Responses: [][]byte{featFrame(2, featMeta(9, 0), "a", "b", "c", ""), featFrame(2, nil)},
		Garbage:   [][]byte{[]byte("FX"), featFrame(3, nil), featFrame(2, []byte{0x0a, 0x05})},
	})
}
