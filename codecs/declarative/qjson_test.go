package declarative

import (
	"encoding/json"
	"errors"
	"maps"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
)

func qjson(typ byte, id uint32, body string) []byte {
	return append([]byte{typ, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, body+"\n"...)
}

var (
	qCall    = qjson('Q', 7, `{"method":"get","params":{"user":"ann","tags":["a","b"]}}`)
	qEscaped = qjson('Q', 0x0a0a0a0a, ` { "params" : {"tags": [], "user":"an\u006e \"x\""}, "method" : "put", "method": "last" } `)
	qBare    = qjson('Q', 9, ``)
	qReply   = qjson('R', 7, `{"result":[1,2.5e3,-0.1,true,null,{}]}`)
	qError   = qjson('E', 8, `{"error":"boom"}`)
)

func TestQJSONDecode(t *testing.T) {
	f := loadExample(t, "qjson.yaml")
	for _, tc := range []struct {
		frame  []byte
		kind   codec.Kind
		id     uint64
		status codec.Status
		meta   map[string]string
	}{
		{qCall, codec.KindRequest, 7, codec.StatusOK, map[string]string{"method": "get", "user": "ann", "first-tag": "a"}},
		{qEscaped, codec.KindRequest, 0x0a0a0a0a, codec.StatusOK, map[string]string{"method": "last", "user": `ann "x"`}},
		{qBare, codec.KindRequest, 9, codec.StatusOK, map[string]string{}},
		{qReply, codec.KindResponse, 7, codec.StatusOK, map[string]string{}},
		{qError, codec.KindResponse, 8, codec.StatusServerFailure, map[string]string{}},
	} {
		m := decode(t, f, tc.frame)
		if m.Kind != tc.kind || m.ID != tc.id || m.Status != tc.status || !maps.Equal(metaMap(m), tc.meta) {
			t.Errorf("%q: %v %d %v %v", tc.frame, m.Kind, m.ID, m.Status, metaMap(m))
		}
	}
	for _, bad := range []string{`{"a":}`, `{"a":1,}`, `[1 2]`, `"\x"`, `{"a":"b"} x`, `01`, `{"a":tru}`} {
		c := f.NewCodec()
		frame := qjson('Q', 1, bad)
		err := c.Decode(frame, &codec.Message{Frame: frame})
		var pe *codec.ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a malformed frame", bad, err)
		}
	}
	c := f.NewCodec()
	var m codec.Message
	if n := testing.AllocsPerRun(100, func() {
		m.Reset()
		m.Frame = qCall
		if _, err := c.Split(qCall); err != nil || c.Decode(qCall, &m) != nil {
			t.Fatal("decode failed")
		}
	}); n != 0 {
		t.Errorf("decoding a JSON call allocates %v times", n)
	}
}

func TestQJSONErrorReply(t *testing.T) {
	f := loadExample(t, "qjson.yaml")
	out := f.NewCodec().ErrorReply(nil, decode(t, f, qCall), &codec.Error{Type: codec.ErrRouteNotFound, Message: "no <route>\nfor get"})
	var body struct{ Error string }
	if out[0] != 'E' || string(out[1:5]) != "\x00\x00\x00\x07" || json.Unmarshal(out[5:len(out)-1], &body) != nil ||
		body.Error != "route_not_found: no <route>\nfor get" || out[len(out)-1] != '\n' {
		t.Errorf("reply %q", out)
	}
}

func TestQJSONConformance(t *testing.T) {
	codectest.Run(t, codectest.Suite{
		Factory:   loadExample(t, "qjson.yaml"),
		Requests:  [][]byte{qCall, qEscaped, qBare},
		Responses: [][]byte{qReply, qError},
		Garbage:   [][]byte{[]byte("GET / HTTP/1.1\r\n"), qjson('X', 1, "{}"), qjson('Q', 1, "{")},
		Body:      func(b []byte) ([]byte, error) { return b[5:], nil },
		NoHeaders: true,
	})
}
