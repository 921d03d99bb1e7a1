package dubbocodec

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
	"github.com/apache/dubbo-go-hessian2/java_exception"
)

const iface = "org.apache.dubbo.samples.basic.api.DemoService"

// Address and User are POJOs with nested objects, lists, maps, dates and
// binary fields: call arguments the codec must skip exactly.
type Address struct {
	Street string
	Zip    int32
	Tags   []string
}

func (Address) JavaClassName() string { return "org.example.Address" }

type User struct {
	Name    string
	Age     int32
	Home    *Address
	Work    *Address
	Friends []*User
	Props   map[string]string
	Born    time.Time
	Avatar  []byte
	Score   float64
	Big     int64
}

func (User) JavaClassName() string { return "org.example.User" }

func init() {
	hessian.RegisterPOJO(&Address{})
	hessian.RegisterPOJO(&User{})
}

// sampleUser returns a user whose home and work are the same object, so
// that the encoding holds a back reference.
func sampleUser(name string) *User {
	home := &Address{Street: "Hauptstraße 1", Zip: 10115, Tags: []string{"home", "büro"}}
	return &User{
		Name: name, Age: 42, Home: home, Work: home,
		Friends: []*User{{Name: "bob", Age: 7, Props: map[string]string{}}},
		Props:   map[string]string{"tier": "gold", "emoji": "🤣"},
		Born:    time.Date(1990, 5, 17, 8, 30, 0, 0, time.UTC),
		Avatar:  []byte(strings.Repeat("\x00\xff", 700)),
		Score:   98.25,
		Big:     1 << 40,
	}
}

type frameCase struct {
	name, origin string
	frame        []byte
}

func mustWrite(t *testing.T, svc hessian.Service, h hessian.DubboHeader, body any) []byte {
	t.Helper()
	b, err := hessian.NewHessianCodec(nil).Write(svc, h, body)
	if err != nil {
		t.Fatalf("hessian write: %v", err)
	}
	return b
}

// libraryFrames builds frames of every kind with dubbo-go-hessian2's
// NewHessianCodec(nil).Write, the encoder dubbo-go's raw clients use.
func libraryFrames(t *testing.T) []frameCase {
	const origin = "dubbo-go-hessian2 v1.12.5 NewHessianCodec(nil).Write"
	hello := hessian.Service{Path: iface, Interface: iface, Method: "sayHello"}
	req := func(id int64) hessian.DubboHeader {
		return hessian.DubboHeader{SerialID: 2, Type: hessian.PackageRequest_TwoWay, ID: id}
	}
	rsp := func(id int64) hessian.DubboHeader {
		return hessian.DubboHeader{SerialID: 2, Type: hessian.PackageResponse, ID: id, ResponseStatus: hessian.Response_OK}
	}
	tagged := hello
	tagged.Version, tagged.Group, tagged.Timeout = "1.0.0", "canary", 3*time.Second
	noArgs := hello
	noArgs.Method = "ping"
	atta := map[string]string{"dubbo": "2.0.2", "k": "v", "x-trace": "t-1"}

	var cs []frameCase
	add := func(name string, frame []byte) { cs = append(cs, frameCase{"lib_" + name, origin, frame}) }
	add("req_typical", mustWrite(t, tagged, req(10), hessian.NewRequest([]any{"world"}, map[string]string{
		"x-request-id": "2f1c7a9e-7b1d-4c35-9f0e-3a6c1d2b8e47", "tenant": "acme",
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	})))
	add("req_hello", mustWrite(t, hello, req(1), hessian.NewRequest([]any{"world"}, nil)))
	add("req_attachments", mustWrite(t, tagged, req(2), hessian.NewRequest([]any{"world"}, map[string]string{
		"x-request-id": "abc-123", "foo": "bar", "empty": "", "unicode": "grüße 你好 🤣",
		"long": strings.Repeat("x", 1500),
	})))
	add("req_objects", mustWrite(t, hello, req(3), hessian.NewRequest([]any{
		sampleUser("alice"), int32(7), int64(-1 << 40), 3.5, true, []byte("raw"),
		time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC), []string{"a", "b"},
		map[string]any{"k": int32(1), "n": nil, "l": []any{"x", int64(2)}}, nil,
	}, map[string]string{"foo": "bar"})))
	add("req_two_users", mustWrite(t, hello, req(4), hessian.NewRequest([]any{sampleUser("a"), sampleUser("b")}, nil)))
	add("req_chunked_strings", mustWrite(t, hello, req(5), hessian.NewRequest(
		[]any{strings.Repeat("é", 4500) + "🤣"},
		map[string]string{"big": strings.Repeat("ü", 4200) + "🤣", "astral": "🤣🤣"})))
	add("req_noargs", mustWrite(t, noArgs, req(6), hessian.NewRequest([]any{}, nil)))
	add("req_max_id", mustWrite(t, tagged, req(-1), hessian.NewRequest([]any{"world"}, nil)))
	add("req_oneway", mustWrite(t, hello, hessian.DubboHeader{SerialID: 2, Type: hessian.PackageRequest, ID: 7},
		hessian.NewRequest([]any{"note"}, map[string]string{"k": "v"})))
	add("req_heartbeat", mustWrite(t, hessian.Service{}, hessian.DubboHeader{SerialID: 2, Type: hessian.PackageHeartbeat, ID: 8}, hessian.NewRequest([]any{}, nil)))
	add("req_serial6", mustWrite(t, hello, hessian.DubboHeader{SerialID: 6, Type: hessian.PackageRequest_TwoWay, ID: 9},
		hessian.NewRequest([]any{"world"}, nil)))

	add("rsp_value", mustWrite(t, hessian.Service{}, rsp(1), hessian.NewResponse("hello", nil, nil)))
	add("rsp_value_attachments", mustWrite(t, hessian.Service{}, rsp(2), hessian.NewResponse("hello", nil, atta)))
	add("rsp_null", mustWrite(t, hessian.Service{}, rsp(3), hessian.NewResponse(nil, nil, nil)))
	add("rsp_null_attachments", mustWrite(t, hessian.Service{}, rsp(4), hessian.NewResponse(nil, nil, atta)))
	add("rsp_exception", mustWrite(t, hessian.Service{}, rsp(5),
		hessian.NewResponse(nil, java_exception.NewThrowable("boom"), nil)))
	add("rsp_exception_attachments", mustWrite(t, hessian.Service{}, rsp(6),
		hessian.NewResponse(nil, java_exception.NewThrowable("boom"), atta)))
	add("rsp_object_attachments", mustWrite(t, hessian.Service{}, rsp(7), hessian.NewResponse(sampleUser("carol"), nil, atta)))
	add("rsp_service_not_found", mustWrite(t, hessian.Service{},
		hessian.DubboHeader{SerialID: 2, Type: hessian.PackageResponse, ID: 8, ResponseStatus: hessian.Response_SERVICE_NOT_FOUND},
		hessian.NewResponse(nil, errors.New("no provider for "+iface), nil)))
	add("rsp_heartbeat", mustWrite(t, hessian.Service{},
		hessian.DubboHeader{SerialID: 2, Type: hessian.PackageHeartbeat, ID: 8, ResponseStatus: hessian.Response_OK}, nil))
	return cs
}

// TestLibraryFrames cross-checks freshly built frames (attachment order
// differs from run to run) and, with -update, stores them as goldens.
func TestLibraryFrames(t *testing.T) {
	var gs []golden
	for _, c := range libraryFrames(t) {
		w := crossCheck(t, c.name, c.frame)
		gs = append(gs, newGolden(c.name, c.origin, c.frame, w))
	}
	if *update {
		writeGoldens(t, "lib_", gs)
	}
}

// TestGoldens checks that every stored golden still means what it says
// for the oracle and for the codec.
func TestGoldens(t *testing.T) {
	for _, g := range readGoldens(t) {
		frame, err := hex.DecodeString(g.Frame)
		if err != nil {
			t.Fatalf("%s: %v", g.Name, err)
		}
		w := crossCheck(t, g.Name, frame)
		if d := diffWant(g.Want, w); d != "" {
			t.Errorf("%s: stored expectation differs from the oracle: %s", g.Name, d)
		}
	}
}
