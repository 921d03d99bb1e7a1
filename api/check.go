package api

import (
	"fmt"
	"regexp"
	"sort"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// specialJSON are the well-known messages whose JSON form is not an object
// of their fields. protojson checks their contents itself.
var specialJSON = map[protoreflect.FullName]bool{
	"google.protobuf.Duration":    true,
	"google.protobuf.Timestamp":   true,
	"google.protobuf.FieldMask":   true,
	"google.protobuf.Struct":      true,
	"google.protobuf.Value":       true,
	"google.protobuf.ListValue":   true,
	"google.protobuf.BoolValue":   true,
	"google.protobuf.BytesValue":  true,
	"google.protobuf.DoubleValue": true,
	"google.protobuf.FloatValue":  true,
	"google.protobuf.Int32Value":  true,
	"google.protobuf.Int64Value":  true,
	"google.protobuf.StringValue": true,
	"google.protobuf.UInt32Value": true,
	"google.protobuf.UInt64Value": true,
}

const anyName = protoreflect.FullName("google.protobuf.Any")

// checkMessage walks v, a document decoded by encoding/json, against md and
// reports the first unknown field or unresolvable Any type, with its path.
// Values of the wrong JSON kind are left for protojson to report. Keys are
// visited in sorted order so the error is deterministic.
//
// Like Envoy's loader, it accepts a single value where a list is expected:
// such values are wrapped in a list in place, so Envoy-style YAML such as
// "grpc_services: {envoy_grpc: ...}" decodes.
func checkMessage(v any, md protoreflect.MessageDescriptor, path string) error {
	if v == nil {
		return nil
	}
	if md.FullName() == anyName {
		return checkAny(v, path)
	}
	if specialJSON[md.FullName()] {
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	return checkFields(obj, md, path)
}

// checkFields checks the entries of obj, except an "@type", as fields of
// md.
func checkFields(obj map[string]any, md protoreflect.MessageDescriptor, path string) error {
	for _, k := range sortedKeys(obj) {
		if k == "@type" {
			continue
		}
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(k))
		}
		if fd == nil {
			return errorf(path, "unknown field %q", k)
		}
		v, err := checkField(obj[k], fd, field(path, fd.Name()))
		if err != nil {
			return err
		}
		obj[k] = v
	}
	return nil
}

// checkField checks the value of one field and returns it, wrapped in a
// list if the field is repeated and v is a single value.
func checkField(v any, fd protoreflect.FieldDescriptor, path string) (any, error) {
	switch {
	case v == nil:
	case fd.IsMap():
		vd := fd.MapValue()
		obj, ok := v.(map[string]any)
		if vd.Message() == nil || !ok {
			return v, nil
		}
		for _, k := range sortedKeys(obj) {
			if err := checkMessage(obj[k], vd.Message(), key(path, k)); err != nil {
				return nil, err
			}
		}
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		if fd.Message() == nil {
			return list, nil
		}
		for i, e := range list {
			e, err := checkElem(e, fd.Message(), index(path, i))
			if err != nil {
				return nil, err
			}
			list[i] = e
		}
		return list, nil
	case fd.Message() != nil:
		return checkElem(v, fd.Message(), path)
	}
	return v, nil
}

// checkElem checks one message value and returns it, with a duration
// written in Go's notation ("100ms", "1m30s") rewritten to the protobuf
// JSON notation ("0.100s", "90s").
func checkElem(v any, md protoreflect.MessageDescriptor, path string) (any, error) {
	if md.FullName() == durationName {
		return normalizeDuration(v), nil
	}
	return v, checkMessage(v, md, path)
}

const durationName = protoreflect.FullName("google.protobuf.Duration")

var protoDuration = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?s$`)

// normalizeDuration rewrites a Go duration string to protobuf JSON
// notation. Anything else is returned as is, for protojson to judge.
func normalizeDuration(v any) any {
	s, ok := v.(string)
	if !ok || protoDuration.MatchString(s) {
		return v
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return v
	}
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%d.%09ds", sign, d/time.Second, d%time.Second)
}

// checkAny checks the JSON form of a google.protobuf.Any: its @type must
// resolve, and its other keys must be fields of that type. For a
// TypedStruct, the value is checked against the type it names when that
// type is known; an unknown type there is allowed, since carrying opaque
// configs is what TypedStruct is for.
func checkAny(v any, path string) error {
	obj, ok := v.(map[string]any)
	if !ok || len(obj) == 0 {
		return nil
	}
	url, _ := obj["@type"].(string)
	mt, err := resolve(url, path)
	if err != nil {
		return err
	}
	md := mt.Descriptor()
	switch {
	case specialJSON[md.FullName()] || md.FullName() == anyName:
		for _, k := range sortedKeys(obj) {
			if k != "value" && k != "@type" {
				return errorf(path, "unknown field %q", k)
			}
		}
		return checkMessage(obj["value"], md, field(path, "value"))
	case typedStructs[md.FullName()]:
		return checkTypedStruct(obj, md, path)
	}
	return checkFields(obj, md, path)
}

// checkTypedStruct checks the fields of a TypedStruct, then its value
// against the message its type_url names, if that message is known.
func checkTypedStruct(obj map[string]any, md protoreflect.MessageDescriptor, path string) error {
	if err := checkFields(obj, md, path); err != nil {
		return err
	}
	url, _ := obj["type_url"].(string)
	if url == "" {
		url, _ = obj["typeUrl"].(string)
	}
	mt, err := types.FindMessageByURL(url)
	if url == "" || err != nil {
		return nil
	}
	return checkMessage(obj["value"], mt.Descriptor(), field(path, "value"))
}

// sortedKeys returns the keys of obj in order.
func sortedKeys(obj map[string]any) []string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
