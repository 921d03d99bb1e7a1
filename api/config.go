package api

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// ConfigJSON returns the JSON form of a filter or codec config, the input
// of codec and filter factories:
//   - nil: nil;
//   - a TypedStruct whose type_url names a known message: the value,
//     checked strictly against that message and re-encoded canonically
//     (proto field names, unset fields omitted);
//   - a TypedStruct of an unknown type: its value as written ({} when it
//     has none);
//   - any other known message: its protojson form with proto field names
//     and without "@type".
//
// An unknown @type, or a value that does not decode, is an *Error.
func ConfigJSON(a *anypb.Any) (json.RawMessage, error) {
	if a == nil {
		return nil, nil
	}
	m, err := unpack(a)
	if err != nil {
		return nil, err
	}
	if !typedStructs[m.ProtoReflect().Descriptor().FullName()] {
		return marshalCanonical(m)
	}
	url, value, err := typedStruct(m)
	if err != nil {
		return nil, err
	}
	js := []byte("{}")
	if value != nil {
		if js, err = protojson.Marshal(value); err != nil {
			return nil, &Error{Msg: err.Error()}
		}
	}
	mt, err := types.FindMessageByURL(url)
	if url == "" || err != nil {
		return compact(js)
	}
	inner := mt.New().Interface()
	if err := Unmarshal(js, inner); err != nil {
		return nil, under("value", err)
	}
	return marshalCanonical(inner)
}

// UnpackConfig decodes a filter or codec config into m, which must be the
// config's message type: a typed Any of that type, or a TypedStruct whose
// type_url names it. A nil Any leaves m reset. Mismatched types are an
// *Error.
func UnpackConfig(a *anypb.Any, m proto.Message) error {
	proto.Reset(m)
	if a == nil {
		return nil
	}
	got, err := unpack(a)
	if err != nil {
		return err
	}
	md := m.ProtoReflect().Descriptor()
	if got.ProtoReflect().Descriptor().FullName() == md.FullName() {
		proto.Merge(m, got)
		return nil
	}
	if !typedStructs[got.ProtoReflect().Descriptor().FullName()] {
		return errorf("", "config has type %q, want %q", a.GetTypeUrl(), md.FullName())
	}
	url, _, err := typedStruct(got)
	if err != nil {
		return err
	}
	if !sameType(url, md) {
		return errorf("type_url", "TypedStruct holds %q, want %q", url, md.FullName())
	}
	js, err := ConfigJSON(a)
	if err != nil {
		return err
	}
	return unmarshalJSON(js, m)
}

// unpack decodes the message in a with the schema's type resolver.
func unpack(a *anypb.Any) (proto.Message, error) {
	mt, err := resolve(a.GetTypeUrl(), "")
	if err != nil {
		return nil, err
	}
	m := mt.New().Interface()
	opts := proto.UnmarshalOptions{Resolver: types}
	if err := opts.Unmarshal(a.GetValue(), m); err != nil {
		return nil, errorf("", "decoding %s: %v", a.GetTypeUrl(), err)
	}
	return m, nil
}

// marshalCanonical is protojson with proto field names, compacted so that
// the output is stable.
func marshalCanonical(m proto.Message) (json.RawMessage, error) {
	js, err := protojson.MarshalOptions{UseProtoNames: true, Resolver: types}.Marshal(m)
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	return compact(js)
}

// compact removes insignificant space from js.
func compact(js []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, js); err != nil {
		return nil, fmt.Errorf("api: compacting JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// MarshalJSON returns the canonical JSON form of m: proto field names,
// unset fields omitted, Any values with their @type. Unmarshal reads it
// back.
func MarshalJSON(m proto.Message) ([]byte, error) {
	return marshalCanonical(m)
}
