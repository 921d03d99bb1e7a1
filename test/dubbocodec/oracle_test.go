// Package dubbocodec cross-checks metaproxy's Dubbo codec against the real
// Dubbo libraries: dubbo-go-hessian2 v1.12.5 is the oracle for every frame's
// meaning, and a dubbo-go v3.3.1 provider and consumer produce real traffic.
// It also writes the golden frames the codec's own tests use
// (codecs/dubbo/testdata), with -update.
package dubbocodec

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	hessian "github.com/apache/dubbo-go-hessian2"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codecs/dubbo"
)

// errOraclePanic marks frames the library cannot decode.
var errOraclePanic = errors.New("dubbo-go-hessian2 panicked")

var update = flag.Bool("update", false, "rewrite the golden frames in codecs/dubbo/testdata")

// goldenDir is where the codec's own tests read their frames.
const goldenDir = "../../codecs/dubbo/testdata"

// golden is one frame and what it means, as the oracle decodes it. The JSON
// form is read by codecs/dubbo's tests.
type golden struct {
	Name   string `json:"-"`
	Origin string `json:"origin"`
	Frame  string `json:"frame"` // hex
	Want   want   `json:"want"`
}

// want is the decoding the codec must produce.
type want struct {
	Kind             string            `json:"kind"`
	ID               uint64            `json:"id"`
	Status           string            `json:"status,omitempty"`
	HeartbeatRequest bool              `json:"heartbeat_request,omitempty"`
	Meta             map[string]string `json:"meta"`
}

// oracle decodes frame with dubbo-go-hessian2 and derives the metadata the
// codec promises: interface, method, dubbo, path and (non-empty) version
// from a request body, then every string attachment, except that interface
// and method always come from the body; on responses, the attachments.
// args and result are the decoded call arguments or response value.
type oracleResult struct {
	want   want
	args   []any
	result any
	errMsg string // non-OK status message or exception text
}

func oracle(frame []byte) (o oracleResult, err error) {
	defer func() {
		// dubbo-go-hessian2 panics on some frames it wrote itself (a
		// reference to an object of another type in nested POJOs).
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errOraclePanic, p)
		}
	}()
	if len(frame) < dubbo.HeaderLen || frame[0] != 0xda || frame[1] != 0xbb {
		return o, errors.New("not a dubbo frame")
	}
	hc := hessian.NewHessianCodec(bufio.NewReaderSize(bytes.NewReader(frame), len(frame)+16))
	var h hessian.DubboHeader
	if err := hc.ReadHeader(&h); err != nil {
		return o, fmt.Errorf("oracle header: %w", err)
	}
	flags := frame[2]
	o.want = want{ID: binary.BigEndian.Uint64(frame[4:12]), Meta: map[string]string{}}
	event, request, twoWay := flags&0x20 != 0, flags&0x80 != 0, flags&0x40 != 0
	switch {
	case event:
		o.want.Kind = "heartbeat"
		o.want.HeartbeatRequest = request && twoWay
		return o, nil
	case request && twoWay:
		o.want.Kind = "request"
	case request:
		o.want.Kind = "oneway"
	default:
		o.want.Kind = "response"
		o.want.Status = "error"
		if frame[3] == hessian.Response_OK && h.SerialID != 2 {
			o.want.Status = "ok"
		}
	}
	if h.SerialID != 2 {
		return o, nil
	}
	if request {
		body := make([]any, 7)
		if err := hc.ReadBody(body); err != nil {
			return o, fmt.Errorf("oracle request body: %w", err)
		}
		path, _ := body[1].(string)
		version, _ := body[2].(string)
		method, _ := body[3].(string)
		dubboVersion, _ := body[0].(string)
		m := o.want.Meta
		m["interface"], m["method"], m["dubbo"], m["path"] = path, method, dubboVersion, path
		if version != "" {
			m["version"] = version
		}
		for k, v := range body[6].(map[string]string) {
			if !strings.EqualFold(k, "interface") && !strings.EqualFold(k, "method") {
				m[k] = v
			}
		}
		o.args, _ = body[5].([]any)
		return o, nil
	}
	rsp := &hessian.Response{}
	if err := hc.ReadBody(rsp); err != nil {
		return o, fmt.Errorf("oracle response body: %w", err)
	}
	if frame[3] != hessian.Response_OK {
		o.errMsg = rsp.Exception.Error()
		return o, nil
	}
	if rsp.Exception == nil {
		o.want.Status = "ok"
	} else {
		o.errMsg = rsp.Exception.Error()
	}
	maps.Copy(o.want.Meta, rsp.Attachments)
	o.result = rsp.RspObj
	return o, nil
}

// decode splits and decodes frame with a fresh metaproxy codec.
func decode(t *testing.T, frame []byte) (want, *codec.Message) {
	t.Helper()
	f, err := dubbo.NewFactory(dubbo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := f.NewCodec()
	n, err := c.Split(frame)
	if err != nil || n != len(frame) {
		t.Fatalf("split: n=%d of %d, err=%v", n, len(frame), err)
	}
	m := &codec.Message{Frame: frame}
	if err := c.Decode(frame, m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	w := want{Kind: m.Kind.String(), ID: m.ID, HeartbeatRequest: m.HeartbeatRequest, Meta: map[string]string{}}
	if m.Kind == codec.KindResponse {
		w.Status = "ok" // the goldens say "error" for every other status
		if m.Status != codec.StatusOK {
			w.Status = "error"
		}
	}
	for _, kv := range m.Meta.All() {
		w.Meta[kv.Key] = kv.Value
	}
	return w, m
}

// crossCheck decodes frame with both the codec and the oracle and fails on
// any difference.
func crossCheck(t *testing.T, name string, frame []byte) want {
	t.Helper()
	o, err := oracle(frame)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return crossCheckWith(t, name, frame, o)
}

func crossCheckWith(t *testing.T, name string, frame []byte, o oracleResult) want {
	t.Helper()
	got, _ := decode(t, frame)
	if diff := diffWant(got, o.want); diff != "" {
		t.Errorf("%s: codec and oracle disagree: %s", name, diff)
	}
	return o.want
}

func diffWant(got, w want) string {
	var d []string
	if got.Kind != w.Kind || got.ID != w.ID || got.Status != w.Status || got.HeartbeatRequest != w.HeartbeatRequest {
		d = append(d, fmt.Sprintf("header: got %+v want %+v", got, w))
	}
	for _, k := range slices.Sorted(maps.Keys(w.Meta)) {
		if v, ok := got.Meta[k]; !ok || v != w.Meta[k] {
			d = append(d, fmt.Sprintf("%s: got %q (present %v), want %q", k, v, ok, w.Meta[k]))
		}
	}
	for k, v := range got.Meta {
		if _, ok := w.Meta[k]; !ok {
			d = append(d, fmt.Sprintf("%s: got %q, want absent", k, v))
		}
	}
	return strings.Join(d, "; ")
}

// writeGoldens replaces the files of one origin prefix in goldenDir.
func writeGoldens(t *testing.T, prefix string, gs []golden) {
	t.Helper()
	old, _ := filepath.Glob(filepath.Join(goldenDir, prefix+"*.json"))
	for _, f := range old {
		os.Remove(f)
	}
	for _, g := range gs {
		b, err := json.MarshalIndent(g, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(goldenDir, g.Name+".json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readGoldens loads every golden frame.
func readGoldens(t *testing.T) []golden {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden frames in %s (run with -update): %v", goldenDir, err)
	}
	var gs []golden
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		g.Name = strings.TrimSuffix(filepath.Base(f), ".json")
		gs = append(gs, g)
	}
	return gs
}

func newGolden(name, origin string, frame []byte, w want) golden {
	return golden{Name: name, Origin: origin, Frame: hex.EncodeToString(frame), Want: w}
}
