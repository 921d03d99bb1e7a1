package api

import (
	"sort"

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
	for _, k := range sortedKeys(obj) {
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(k))
		}
		if fd == nil {
			return errorf(path, "unknown field %q", k)
		}
		if err := checkField(obj[k], fd, field(path, fd.Name())); err != nil {
			return err
		}
	}
	return nil
}

// checkField checks the value of one field.
func checkField(v any, fd protoreflect.FieldDescriptor, path string) error {
	switch {
	case fd.IsMap():
		vd := fd.MapValue()
		obj, ok := v.(map[string]any)
		if vd.Message() == nil || !ok {
			return nil
		}
		for _, k := range sortedKeys(obj) {
			if err := checkMessage(obj[k], vd.Message(), key(path, k)); err != nil {
				return err
			}
		}
	case fd.Message() == nil:
	case fd.IsList():
		list, _ := v.([]any)
		for i, e := range list {
			if err := checkMessage(e, fd.Message(), index(path, i)); err != nil {
				return err
			}
		}
	default:
		return checkMessage(v, fd.Message(), path)
	}
	return nil
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
	rest := make(map[string]any, len(obj)-1)
	for k, e := range obj {
		if k != "@type" {
			rest[k] = e
		}
	}
	md := mt.Descriptor()
	switch {
	case specialJSON[md.FullName()] || md.FullName() == anyName:
		for _, k := range sortedKeys(rest) {
			if k != "value" {
				return errorf(path, "unknown field %q", k)
			}
		}
		return checkMessage(rest["value"], md, field(path, "value"))
	case typedStructs[md.FullName()]:
		return checkTypedStruct(rest, md, path)
	}
	return checkMessage(rest, md, path)
}

// checkTypedStruct checks the fields of a TypedStruct, then its value
// against the message its type_url names, if that message is known.
func checkTypedStruct(obj map[string]any, md protoreflect.MessageDescriptor, path string) error {
	if err := checkMessage(obj, md, path); err != nil {
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
