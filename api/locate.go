package api

import (
	"encoding/json"
	"regexp"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// locate finds the field where protojson fails to decode v, a JSON value of
// a message of type md, by decoding its fields one at a time and
// descending into the failing one. It returns an *Error at the deepest
// failing path, or nil when no single field fails. It runs only after a
// failed decode, to turn protojson's positions in the converted JSON, which
// mean nothing to a YAML author, into a field path.
func locate(v any, md protoreflect.MessageDescriptor, path string) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	if md.FullName() == anyName {
		return locateAny(obj, path)
	}
	if specialJSON[md.FullName()] {
		return nil
	}
	for _, k := range sortedKeys(obj) {
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(k))
		}
		if fd == nil || k == "@type" {
			continue
		}
		err := decodeInto(map[string]any{k: obj[k]}, md)
		if err == nil {
			continue
		}
		p := field(path, fd.Name())
		if fd.IsList() && fd.Message() != nil {
			list, _ := obj[k].([]any)
			for i, e := range list {
				if decodeInto(map[string]any{k: []any{e}}, md) == nil {
					continue
				}
				if deeper := locate(e, fd.Message(), index(p, i)); deeper != nil {
					return deeper
				}
				return errorf(index(p, i), "%s", cleanError(err))
			}
		}
		if !fd.IsList() && !fd.IsMap() && fd.Message() != nil {
			if deeper := locate(obj[k], fd.Message(), p); deeper != nil {
				return deeper
			}
		}
		return errorf(p, "%s", cleanError(err))
	}
	return nil
}

// locateAny descends into the message held by the JSON form of an Any.
func locateAny(obj map[string]any, path string) error {
	url, _ := obj["@type"].(string)
	mt, err := types.FindMessageByURL(url)
	if err != nil {
		return nil
	}
	inner := mt.Descriptor()
	if specialJSON[inner.FullName()] || inner.FullName() == anyName {
		return locate(obj["value"], inner, field(path, "value"))
	}
	return locate(obj, inner, path)
}

// decodeInto reports whether protojson decodes the JSON value v as a
// message of type md.
func decodeInto(v any, md protoreflect.MessageDescriptor) error {
	js, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return protojson.UnmarshalOptions{Resolver: types}.Unmarshal(js, dynamicpb.NewMessage(md))
}

var jsonPosition = regexp.MustCompile(`\s*\(line \d+:\d+\)`)

// cleanError drops protojson's "proto:" prefix and its positions in the
// converted JSON, and turns the no-break spaces protojson randomly emits
// into plain ones, so that messages are stable.
func cleanError(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\u00a0", " ")
	msg = jsonPosition.ReplaceAllString(msg, "")
	msg = strings.TrimPrefix(msg, "proto:")
	return strings.TrimLeft(msg, ": ")
}
