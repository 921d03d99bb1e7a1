package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"
)

// Unmarshal decodes a YAML or JSON document into m, strictly: a field that
// m's schema lacks, or an Any whose @type is not known, is an *Error naming
// the field (or type) and its path. Field names may be written in proto
// form (stat_prefix) or JSON form (statPrefix); durations as "5s".
//
// The document may be m's fields themselves, the same with an "@type" that
// names m's type (Envoy's typed_config form), or a
// udpa.type.v1.TypedStruct / xds.type.v3.TypedStruct (with "@type") whose
// type_url names m's type and whose value holds m's fields.
//
// Unmarshal does not validate values beyond their JSON types; see Validate.
func Unmarshal(data []byte, m proto.Message) error {
	doc, err := parseDocument(data)
	if err != nil {
		return err
	}
	md := m.ProtoReflect().Descriptor()
	doc, err = unwrap(doc, md)
	if err != nil {
		return err
	}
	if err := checkMessage(doc, md, ""); err != nil {
		return err
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("re-encoding document: %w", err)
	}
	if err := unmarshalJSON(js, m); err != nil {
		if located := locate(doc, md, ""); located != nil {
			return located
		}
		return err
	}
	return nil
}

// unmarshalJSON decodes checked JSON into m with the schema's type resolver.
func unmarshalJSON(js []byte, m proto.Message) error {
	proto.Reset(m)
	if err := (protojson.UnmarshalOptions{Resolver: types}).Unmarshal(js, m); err != nil {
		return &Error{Msg: cleanError(err)}
	}
	return nil
}

// parseDocument converts YAML (or JSON, which is YAML) to a JSON value
// decoded with json.Number for numbers, so that no precision is lost.
func parseDocument(data []byte) (any, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, &Error{Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	if doc == nil {
		return nil, &Error{Msg: "empty document"}
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, &Error{Msg: "document is not an object"}
	}
	return doc, nil
}

// unwrap strips the "@type" of a document written as an Any of md's type,
// and opens a TypedStruct whose type_url names md's type. Any other @type
// is an error.
func unwrap(doc any, md protoreflect.MessageDescriptor) (any, error) {
	obj := doc.(map[string]any)
	raw, ok := obj["@type"]
	if !ok {
		return doc, nil
	}
	url, _ := raw.(string)
	mt, err := resolve(url, "")
	if err != nil {
		return nil, err
	}
	rest := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "@type" {
			rest[k] = v
		}
	}
	got := mt.Descriptor()
	switch {
	case got.FullName() == md.FullName():
		return rest, nil
	case typedStructs[got.FullName()]:
		if err := checkMessage(rest, got, ""); err != nil {
			return nil, err
		}
		inner, _ := rest["type_url"].(string)
		if inner == "" {
			inner, _ = rest["typeUrl"].(string)
		}
		if !sameType(inner, md) {
			return nil, errorf("type_url", "TypedStruct holds %q, want %q", inner, md.FullName())
		}
		value, ok := rest["value"].(map[string]any)
		if !ok {
			value = map[string]any{}
		}
		return value, nil
	}
	return nil, errorf("", "document has @type %q, want %q", url, md.FullName())
}
