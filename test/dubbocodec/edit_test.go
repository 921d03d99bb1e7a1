package dubbocodec

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
	"github.com/metaproxy/metaproxy/codecs/dubbo"
)

// canon renders a value decoded by the oracle in a form that does not
// depend on pointer addresses or map order, to compare bodies.
func canon(v reflect.Value, depth int) string {
	if depth > 24 {
		return "…"
	}
	switch v.Kind() {
	case reflect.Invalid:
		return "nil"
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "nil"
		}
		return canon(v.Elem(), depth+1)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() && v.CanInterface() {
			return v.Interface().(time.Time).UTC().Format(time.RFC3339Nano)
		}
		var b strings.Builder
		b.WriteString(v.Type().Name() + "{")
		for i := range v.NumField() {
			fmt.Fprintf(&b, "%s:%s ", v.Type().Field(i).Name, canon(v.Field(i), depth+1))
		}
		return b.String() + "}"
	case reflect.Map:
		var kv []string
		for it := v.MapRange(); it.Next(); {
			kv = append(kv, canon(it.Key(), depth+1)+"="+canon(it.Value(), depth+1))
		}
		slices.Sort(kv)
		return "map[" + strings.Join(kv, " ") + "]"
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 && v.Kind() == reflect.Slice {
			return hex.EncodeToString(v.Bytes())
		}
		var el []string
		for i := range v.Len() {
			el = append(el, canon(v.Index(i), depth+1))
		}
		return "[" + strings.Join(el, " ") + "]"
	}
	if v.CanInterface() {
		return fmt.Sprintf("%#v", v.Interface())
	}
	return fmt.Sprint(v)
}

// body is the call arguments or the result of a frame, as the oracle
// decodes them: codectest's body extractor.
func body(frame []byte) ([]byte, error) {
	o, err := oracle(frame)
	if err != nil {
		return nil, err
	}
	return []byte(canon(reflect.ValueOf(o.args), 0) + "|" + canon(reflect.ValueOf(o.result), 0) + "|" + o.errMsg), nil
}

// TestConformanceWithOracleBodies runs the conformance kit with the
// library as the judge of call arguments and results after every edit.
func TestConformanceWithOracleBodies(t *testing.T) {
	f, err := dubbo.NewFactory(dubbo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := codectest.Suite{Factory: f, Body: body}
	for _, c := range libraryFrames(t) {
		if c.frame[2]&0x1f != 2 {
			continue // other serializations: the oracle cannot read their bodies
		}
		if c.frame[2]&0x80 != 0 {
			s.Requests = append(s.Requests, c.frame)
		} else {
			s.Responses = append(s.Responses, c.frame)
		}
	}
	codectest.Run(t, s)
}

// noAttachments names the library frames that cannot carry attachments:
// responses of a body type without them, heartbeats, other serializations.
var noAttachments = map[string]bool{
	"lib_rsp_value": true, "lib_rsp_null": true, "lib_rsp_exception": true, "lib_rsp_service_not_found": true,
	"lib_req_heartbeat": true, "lib_rsp_heartbeat": true, "lib_req_serial6": true,
}

// TestEditsSeenByOracle checks that the library sees merged attachments,
// the new id and unchanged arguments or results after an edit.
func TestEditsSeenByOracle(t *testing.T) {
	f, _ := dubbo.NewFactory(dubbo.Options{})
	for _, c := range libraryFrames(t) {
		before, err := oracle(c.frame)
		if err != nil {
			t.Fatal(err)
		}
		hs := []codec.KV{{Key: "x-metaproxy", Value: "grüße 🤣 " + strings.Repeat("ü", 5000)}, {Key: "k", Value: "replaced"}}
		cd := f.NewCodec()
		m := &codec.Message{Frame: c.frame}
		if err := cd.Decode(c.frame, m); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		out, err := cd.Encode(nil, m, &codec.Edit{SetID: true, ID: 4242, Headers: hs})
		if refused := errors.Is(err, codec.ErrUnsupported); refused != noAttachments[c.name] {
			t.Errorf("%s: edit refused: %v, want refused: %v", c.name, err, noAttachments[c.name])
			continue
		} else if refused {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		after, err := oracle(out)
		if err != nil {
			t.Fatalf("%s: the library cannot read the edited frame: %v", c.name, err)
		}
		if after.want.ID != 4242 {
			t.Errorf("%s: id %d after the edit", c.name, after.want.ID)
		}
		wantMeta := maps.Clone(before.want.Meta)
		for _, kv := range hs {
			wantMeta[kv.Key] = kv.Value
		}
		if d := diffWant(want{Meta: after.want.Meta}, want{Meta: wantMeta}); d != "" {
			t.Errorf("%s: attachments after the edit: %s", c.name, d)
		}
		b1 := canon(reflect.ValueOf(before.args), 0) + canon(reflect.ValueOf(before.result), 0) + before.errMsg
		b2 := canon(reflect.ValueOf(after.args), 0) + canon(reflect.ValueOf(after.result), 0) + after.errMsg
		if testing.Verbose() {
			t.Logf("%s body: %.200s", c.name, b1)
		}
		if b1 != b2 {
			t.Errorf("%s: the edit changed the body:\n%.300s\n%.300s", c.name, b1, b2)
		}
	}
}

// TestRepliesSeenByOracle reads error and heartbeat replies with the library.
func TestRepliesSeenByOracle(t *testing.T) {
	f, _ := dubbo.NewFactory(dubbo.Options{})
	cd := f.NewCodec()
	req := &codec.Message{Kind: codec.KindRequest, ID: 77}
	for et := codec.ErrorType(0); et < codec.NumErrorTypes; et++ {
		e := codec.Errorf(et, "no route for %s ü🤣", iface)
		out := cd.ErrorReply(nil, req, e)
		hc := hessian.NewHessianCodec(bufio.NewReaderSize(bytes.NewReader(out), len(out)+16))
		var h hessian.DubboHeader
		if err := hc.ReadHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.ID != 77 || h.ResponseStatus != dubbo.StatusFor(et) || h.ResponseStatus == hessian.Response_OK {
			t.Errorf("%v: header %+v", et, h)
		}
		rsp := &hessian.Response{}
		if err := hc.ReadBody(rsp); err != nil {
			t.Fatalf("%v: %v", et, err)
		}
		if rsp.Exception == nil || !strings.Contains(rsp.Exception.Error(), e.Error()) {
			t.Errorf("%v: the library reads the error as %v, want %q", et, rsp.Exception, e.Error())
		}
	}
	hb := cd.HeartbeatReply(nil, &codec.Message{Kind: codec.KindHeartbeat, HeartbeatRequest: true, ID: 78})
	hc := hessian.NewHessianCodec(bufio.NewReaderSize(bytes.NewReader(hb), len(hb)+16))
	var h hessian.DubboHeader
	if err := hc.ReadHeader(&h); err != nil || h.ID != 78 || h.Type&hessian.PackageHeartbeat == 0 || h.Type&hessian.PackageResponse == 0 {
		t.Errorf("heartbeat reply read as %+v, %v", h, err)
	}
}
