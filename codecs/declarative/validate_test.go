package declarative

import (
	"encoding/json"
	"strings"
	"testing"
)

// kvDesc returns a fresh copy of examples/kv.yaml's description.
func kvDesc(t *testing.T) *Description {
	t.Helper()
	d, err := Parse(exampleJSON(t, "kv.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func num(v uint64) *Num { n := Num(v); return &n }

// TestValidation: a broken description is refused at load time with an
// error naming the element.
func TestValidation(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		want string
		edit func(d *Description)
	}{
		{`declarative: header.fields[2] ("len"): offset 10 + size 4 exceeds header size 12`, func(d *Description) {
			d.Header.Size = 12
			d.Header.Fields[2] = HeaderField{Name: "len", Offset: 10, Size: 4}
		}},
		{`header.fields[3] ("flags"): name "flags" is already used`, func(d *Description) { d.Header.Fields[3].Name = "flags" }},
		{`header.fields[2] ("flags"): size 9: an integer field has 1 to 8 bytes`, func(d *Description) { d.Header.Fields[2].Size = 9 }},
		{`header.fields[3] ("is_request"): mask 0x100 does not fit 1 bytes`, func(d *Description) { d.Header.Fields[3].Mask = num(0x100) }},
		{`header.fields[0] ("magic"): magic "KV" has 2 bytes, the field 4`, func(d *Description) { d.Header.Fields[0].Magic.Bytes = []byte("KV") }},
		{`header.fields[1] ("version"): allowed value 256 does not fit`, func(d *Description) { d.Header.Fields[1].Allowed = []Num{256} }},
		{`length: set length or delimiter, not both`, func(d *Description) { d.Delimiter = "\n" }},
		{`length: frames need a length field or a delimiter`, func(d *Description) { d.Length = nil }},
		{`length.field: "nope" is not a header field`, func(d *Description) { d.Length.Field = "nope" }},
		{`length.field: header field "is_oneway" is not a whole integer`, func(d *Description) { d.Length.Field = "is_oneway" }},
		{`length.counts: "body" is none of frame`, func(d *Description) { d.Length.Counts = "body" }},
		{`max_frame_bytes: 8 is not between the header size 16`, func(d *Description) { d.MaxFrameBytes = 8 }},
		{`regions[0] ("body"): only the last region can have length rest`, func(d *Description) {
			d.Regions = append(d.Regions, Region{Name: "tail", Length: "rest", Format: "raw"})
		}},
		{`regions[0] ("body").length: "body_len" is the frame's length field`, func(d *Description) { d.Regions[0].Length = "body_len" }},
		{`regions[0] ("body"): format "xml" is none of`, func(d *Description) { d.Regions[0].Format = "xml" }},
		{`regions[0] ("body").fields[0] ("f"): type "float" is not`, func(d *Description) {
			d.Regions[0] = Region{Name: "body", Length: "rest", Format: "protobuf", Fields: []PBField{{Name: "f", Path: "1", Type: "float"}}}
		}},
		{`regions[0] ("body").fields[0] ("f"): path "3.x": "x" is not a field number`, func(d *Description) {
			d.Regions[0] = Region{Name: "body", Length: "rest", Format: "protobuf", Fields: []PBField{{Name: "f", Path: "3.x", Type: "uint32"}}}
		}},
		{`regions[0] ("body").kv: key_bytes 3 is not 1, 2 or 4`, func(d *Description) { d.Regions[0].KV.KeyBytes = 3 }},
		{`kinds: needs at least one rule`, func(d *Description) { d.Kinds = nil }},
		{`kinds[0]: kind "ping" is none of`, func(d *Description) { d.Kinds[0].Kind = "ping" }},
		{`kinds[1]: unreachable: kinds[0] matches every frame`, func(d *Description) { d.Kinds[0].When = nil }},
		{`kinds[0].when[0]: set exactly one of equals, in, not_in, present`, func(d *Description) { d.Kinds[0].When[0].In = []Num{1} }},
		{`kinds[0].when[0]: present tests a protobuf field; "is_heartbeat" is not one`, func(d *Description) {
			d.Kinds[0].When[0] = Cond{Field: "is_heartbeat", Present: &yes}
		}},
		{`kinds[0].when[0]: "body" is not an integer field`, func(d *Description) { d.Kinds[0].When[0].Field = "body" }},
		{`kinds[0]: heartbeat_request is for kind heartbeat`, func(d *Description) { d.Kinds[0].Kind, d.Kinds[0].HeartbeatRequest = "request", true }},
		{`request_id.field: header field "is_request" is not a whole integer`, func(d *Description) { d.RequestID.Field = "is_request" }},
		{`status[0]: otherwise "bad" is neither server_failure nor error`, func(d *Description) { d.Status[0].Otherwise = "bad" }},
		{`metadata[0]: entries "flags" is neither a protobuf map field nor a kv region`, func(d *Description) { d.Metadata[0].Entries = "flags" }},
		{`metadata[1]: after_last is for string and bytes fields`, func(d *Description) { d.Metadata[1].AfterLast = "/" }},
		{`metadata[1]: path is for JSON regions`, func(d *Description) { d.Metadata[1].Path = "a.b" }},
		{`metadata[1]: region "body" is not a JSON region`, func(d *Description) { d.Metadata[1].From = "body" }},
		{`edits.headers[0]: into "flags" is neither a top-level protobuf map field nor a kv region`, func(d *Description) { d.Edits.Headers[0].Into = "flags" }},
		{`edits.headers[1]: kind request already has a header target`, func(d *Description) {
			d.Edits.Headers = append(d.Edits.Headers, HeaderTarget{Into: "body", Kinds: []string{"request"}})
		}},
		{`replies.error: the kinds make requests: describe their error reply`, func(d *Description) { d.Replies.Error = nil }},
		{`replies.heartbeat: the kinds make heartbeat requests`, func(d *Description) { d.Replies.Heartbeat = nil }},
		{`replies.error.status.by_error: "no_route" is not an error type (route_not_found, `, func(d *Description) {
			d.Replies.Error.Status.ByError["no_route"] = 2
		}},
		{`replies.error: the reply to route_not_found decodes as a success`, func(d *Description) {
			d.Replies.Error.Status.ByError["route_not_found"] = 0
		}},
		{`replies.error: the reply to route_not_found decodes as a request, not a response`, func(d *Description) {
			d.Replies.Error.Set = map[string]Num{"is_request": 1}
		}},
		{`replies.error.set: "id" is the request id, which replies copy from the request`, func(d *Description) {
			d.Replies.Error.Set["id"] = 5
		}},
		{`replies.error.status: status 70000 does not fit "status"`, func(d *Description) { d.Replies.Error.Status.Default = 70000 }},
		{`replies.heartbeat: the reply decodes as a heartbeat (heartbeat_request true)`, func(d *Description) {
			d.Replies.Heartbeat.Set = map[string]Num{"is_heartbeat": 1}
		}},
		{`replies.heartbeat: a heartbeat reply takes no status or message`, func(d *Description) {
			d.Replies.Heartbeat.Message = &ReplyMessage{Region: "body", Key: "e"}
		}},
		{`replies.error.message: set field (a protobuf field), or region (a kv or json region) and key`, func(d *Description) {
			d.Replies.Error.Message.Region = "nope"
		}},
	} {
		d := kvDesc(t)
		tc.edit(d)
		_, err := NewFactory(d)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "declarative: ") {
			t.Errorf("want an error containing %q, got %v", tc.want, err)
		}
	}
}

func TestValidationPB(t *testing.T) {
	base := exampleJSON(t, "trpc.yaml")
	for _, tc := range []struct{ want, from, to string }{
		{`request_id.field: "request_id" is not a top-level protobuf unsigned integer field`, `"path":"3","type":"uint32"`, `"path":"1.3","type":"uint32"`},
		{`request_id.field: "request_id" is not a top-level protobuf unsigned integer field`, `"path":"3","type":"uint32"`, `"path":"3","type":"int32"`},
		{`metadata[0]: entries "trans_info" is neither`, `"name":"trans_info","path":"9","type":"map\u003cstring,bytes\u003e"`, `"name":"trans_info","path":"9","type":"bytes"`},
		{`replies.error.message: "error_msg" is not a top-level protobuf string or bytes field`, `"name":"error_msg","path":"6","type":"bytes"`, `"name":"error_msg","path":"6","type":"uint32"`},
		{`replies.error.copy[1]: unknown field "vers"`, `"copy":["stream_id","version"`, `"copy":["stream_id","vers"`},
		{`json: unknown field "lenght"`, `"length":{"counts"`, `"lenght":{"counts"`},
	} {
		js := strings.Replace(string(base), tc.from, tc.to, 1)
		if js == string(base) {
			t.Fatalf("%q not in the tRPC description", tc.from)
		}
		_, err := newFromJSON(json.RawMessage(js))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error containing %q, got %v", tc.want, err)
		}
	}
	if _, err := newFromJSON(nil); err == nil {
		t.Error("an empty config was accepted")
	}
}

func TestStrictNestedObjects(t *testing.T) {
	js := strings.Replace(string(exampleJSON(t, "trpc.yaml")), `{"from":"message_type","to":"rsp_message_type"}`,
		`{"from":"message_type","to":"rsp_message_type","too":"x"}`, 1)
	if _, err := newFromJSON(json.RawMessage(js)); err == nil || !strings.Contains(err.Error(), `unknown field "too"`) {
		t.Errorf("an unknown field in a copy rule: %v", err)
	}
}
