package declarative

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Description is a protocol's wire format, the codec's JSON (or YAML)
// config. README.md is the guide; each field's meaning is on its type.
type Description struct {
	// Name names the protocol in malformed-frame errors ("declarative"
	// when empty).
	Name string `json:"name,omitempty"`
	// MaxFrameBytes bounds a frame, header included (DefaultMaxFrame when 0).
	MaxFrameBytes int `json:"max_frame_bytes,omitempty"`
	// Endian is the default byte order of header fields: "big" (default)
	// or "little".
	Endian string `json:"endian,omitempty"`
	// Header is the fixed header every frame starts with.
	Header Header `json:"header"`
	// Length frames by a length field; Delimiter by a byte string that
	// ends every frame. Exactly one is set.
	Length    *Length `json:"length,omitempty"`
	Delimiter string  `json:"delimiter,omitempty"`
	// Regions follow the header in order.
	Regions []Region `json:"regions,omitempty"`
	// Kinds classify a frame: the first rule whose conditions all hold.
	Kinds []KindRule `json:"kinds"`
	// RequestID names the field holding the request id (none: no ids).
	RequestID *RequestID `json:"request_id,omitempty"`
	// Status checks a response's outcome, in order.
	Status []StatusCheck `json:"status,omitempty"`
	// Metadata lists what a frame exposes to routes, in order: a later
	// rule overwrites a key an earlier one set.
	Metadata []MetaRule `json:"metadata,omitempty"`
	// Edits says where Encode writes header edits.
	Edits Edits `json:"edits,omitempty"`
	// Replies are the local reply templates.
	Replies Replies `json:"replies,omitempty"`
}

// Header is the fixed-size start of every frame.
type Header struct {
	Size   int           `json:"size"`
	Fields []HeaderField `json:"fields,omitempty"`
}

// HeaderField is a named field of the fixed header.
type HeaderField struct {
	Name   string `json:"name"`
	Offset int    `json:"offset"`
	Size   int    `json:"size"`
	// Type is "uint" (default: an unsigned integer of 1 to 8 bytes) or
	// "bytes" (raw bytes of any size).
	Type string `json:"type,omitempty"`
	// Endian overrides the description's byte order.
	Endian string `json:"endian,omitempty"`
	// Mask makes a bit field: the value is (raw & mask) >> (mask's
	// trailing zero bits). Fields may share bytes with other masks.
	Mask *Num `json:"mask,omitempty"`
	// Magic is the value every frame must carry here: a number, a "0x..."
	// string, or a string of exactly Size literal bytes.
	Magic *Magic `json:"magic,omitempty"`
	// Allowed lists the only values a frame may carry here.
	Allowed []Num `json:"allowed,omitempty"`
}

// Length says how a length field gives the frame's size.
type Length struct {
	// Field is a uint header field.
	Field string `json:"field"`
	// Counts is what the field's value counts: "frame" (the whole frame,
	// header included), "after_header" (alias "rest": the bytes after the
	// fixed header) or "after_field" (the bytes after the length field).
	Counts string `json:"counts,omitempty"`
	// Adjust is added to the value.
	Adjust int `json:"adjust,omitempty"`
}

// Region is a part of the frame after the header.
type Region struct {
	Name string `json:"name"`
	// Length is a uint header field holding the region's size, or "rest"
	// (to the end of the frame, before a delimiter; the last region only).
	Length string `json:"length"`
	// Adjust is added to the length field's value.
	Adjust int `json:"adjust,omitempty"`
	// Format is "protobuf", "kv", "json" or "raw" (not parsed).
	Format string `json:"format"`
	// Fields are the named fields of a protobuf region.
	Fields []PBField `json:"fields,omitempty"`
	// KV is the layout of a kv region.
	KV *KVLayout `json:"kv,omitempty"`
}

// PBField names a field of a protobuf region.
type PBField struct {
	Name string `json:"name"`
	// Path is the field number, or numbers of nested messages and the
	// field: "3", "3.1".
	Path string `json:"path"`
	// Type is a protobuf scalar type (uint32, uint64, int32, int64,
	// sint32, sint64, bool, enum, fixed32, fixed64, sfixed32, sfixed64),
	// string, bytes, or "map<string,string>" / "map<string,bytes>".
	Type string `json:"type"`
}

// KVLayout is a kv region's layout: [count] then pairs of key length,
// key, value length, value. Widths are 1, 2 or 4 bytes.
type KVLayout struct {
	// CountBytes is the width of a pair count before the pairs; 0 (the
	// default): no count, pairs fill the region.
	CountBytes int `json:"count_bytes,omitempty"`
	KeyBytes   int `json:"key_bytes"`
	ValueBytes int `json:"value_bytes"`
	// Endian overrides the description's byte order.
	Endian string `json:"endian,omitempty"`
}

// KindRule gives the kind of frames matching all its conditions.
type KindRule struct {
	// Kind is request, response, oneway or heartbeat.
	Kind string `json:"kind"`
	// HeartbeatRequest marks heartbeats that expect an answer.
	HeartbeatRequest bool   `json:"heartbeat_request,omitempty"`
	When             []Cond `json:"when,omitempty"`
}

// Cond is one condition on a field: exactly one of Equals, In, NotIn and
// Present.
type Cond struct {
	Field  string `json:"field"`
	Equals *Num   `json:"equals,omitempty"`
	In     []Num  `json:"in,omitempty"`
	NotIn  []Num  `json:"not_in,omitempty"`
	// Present tests whether a protobuf field is in the frame.
	Present *bool `json:"present,omitempty"`
}

// RequestID names the request id field.
type RequestID struct {
	// Field is a uint header field or a top-level unsigned protobuf field.
	Field string `json:"field"`
	// Also are uint header fields that carry the id too when a frame has
	// them equal to it: an id rewrite rewrites them then.
	Also []string `json:"also,omitempty"`
}

// StatusCheck is one check of a response's outcome. Value in OK: the next
// check; in Error: StatusError; else Otherwise.
type StatusCheck struct {
	Field string `json:"field"`
	OK    []Num  `json:"ok,omitempty"` // [0] when empty
	Error []Num  `json:"error,omitempty"`
	// Otherwise is "server_failure" (default) or "error".
	Otherwise string `json:"otherwise,omitempty"`
}

// MetaRule exposes metadata: Key from a field (From), or from a JSON
// region (From) at Path, or every entry of a map field or kv region
// (Entries).
type MetaRule struct {
	Key     string `json:"key,omitempty"`
	From    string `json:"from,omitempty"`
	Path    string `json:"path,omitempty"`
	Entries string `json:"entries,omitempty"`
	// Kinds limits the rule to frames of these kinds.
	Kinds []string `json:"kinds,omitempty"`
	// Default is the value when the field is absent (none: no key).
	Default *string `json:"default,omitempty"`
	// AfterLast keeps what follows the last occurrence of this string.
	AfterLast string `json:"after_last,omitempty"`
}

// Edits says where header edits go.
type Edits struct {
	Headers []HeaderTarget `json:"headers,omitempty"`
}

// HeaderTarget is a map field or kv region taking header edits of
// frames of Kinds (all kinds when empty).
type HeaderTarget struct {
	Into  string   `json:"into"`
	Kinds []string `json:"kinds,omitempty"`
}

// Replies are the local reply templates.
type Replies struct {
	Error     *Reply `json:"error,omitempty"`
	Heartbeat *Reply `json:"heartbeat,omitempty"`
}

// Reply is a template: magic fields, Set constants, Copy from the
// request, the request id, Status and Message; every other field zero.
type Reply struct {
	Set     map[string]Num `json:"set,omitempty"`
	Copy    []Copy         `json:"copy,omitempty"`
	Status  *ReplyStatus   `json:"status,omitempty"`
	Message *ReplyMessage  `json:"message,omitempty"`
}

// Copy copies the integer field From of the request into To ("from" or
// {"from": a, "to": b}).
type Copy struct {
	From string `json:"from"`
	To   string `json:"to,omitempty"`
}

// UnmarshalJSON accepts a field name or an object.
func (c *Copy) UnmarshalJSON(b []byte) error {
	if s := bytes.TrimSpace(b); len(s) > 0 && s[0] == '"' {
		c.To = ""
		return json.Unmarshal(s, &c.From)
	}
	type plain Copy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(c))
}

// ReplyStatus writes Field: ByError[error type name], else Default.
type ReplyStatus struct {
	Field   string         `json:"field"`
	Default Num            `json:"default"`
	ByError map[string]Num `json:"by_error,omitempty"`
}

// ReplyMessage writes the error's text into a protobuf string or bytes
// Field, or as pair Key of a kv or json Region.
type ReplyMessage struct {
	Field  string `json:"field,omitempty"`
	Region string `json:"region,omitempty"`
	Key    string `json:"key,omitempty"`
}

// Num is an integer in a description: a JSON number, or a string holding
// a decimal, "0x" hex or "0b" binary number. Negative values are kept as
// their 64-bit two's complement.
type Num uint64

// UnmarshalJSON reads a number or a numeric string.
func (n *Num) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := parseNum(s)
	if err != nil {
		return err
	}
	*n = Num(v)
	return nil
}

func parseNum(s string) (uint64, error) {
	if v, err := strconv.ParseInt(s, 0, 64); err == nil {
		return uint64(v), nil
	}
	if v, err := strconv.ParseUint(s, 0, 64); err == nil {
		return v, nil
	}
	// Struct-encoded configs carry numbers as doubles: 1e+06.
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == float64(int64(f)) {
		return uint64(int64(f)), nil
	}
	return 0, fmt.Errorf("%q is not an integer", s)
}

// Magic is a header field's fixed value: a number or literal bytes.
type Magic struct {
	Num   uint64
	Bytes []byte // literal bytes when IsNum is false
	IsNum bool
}

// UnmarshalJSON reads a number, a "0x..." string or literal bytes.
func (m *Magic) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n Num
		if err := n.UnmarshalJSON(b); err != nil {
			return err
		}
		*m = Magic{Num: uint64(n), IsNum: true}
		return nil
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		v, err := strconv.ParseUint(s[2:], 16, 64)
		if err != nil {
			return fmt.Errorf("magic %q: %v", s, err)
		}
		*m = Magic{Num: v, IsNum: true}
		return nil
	}
	*m = Magic{Bytes: []byte(s)}
	return nil
}
