package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/emptypb"

	// Types a cluster's Any fields name, registered for protojson.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/tcp/v3"
)

const clusterTypeURL = "type.googleapis.com/envoy.config.cluster.v3.Cluster"

// decodeCluster reads a cluster's JSON into go-control-plane's type. A
// first pass, led by the descriptors, checks every field with metaproxy's
// messages (the path of the field, unknown fields, "a and b are one of x")
// and rewrites the lenient forms metaproxy accepts into protojson's; then
// protojson (unknown fields refused) decodes it. name is the cluster's name
// when the JSON has one, for errors. Fields go by their proto names, as in
// Envoy's YAML (not protojson's camelCase JSON names).
func decodeCluster(raw json.RawMessage) (pb *clusterv3.Cluster, name string, err error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "", fmt.Errorf("data after the cluster's object")
	}
	obj, ok := v.(map[string]any)
	if v == nil {
		obj = map[string]any{}
	} else if !ok {
		return nil, "", fmt.Errorf("not an object: %s", raw)
	}
	name, _ = obj["name"].(string)
	if t, ok := obj["@type"]; ok {
		if t != clusterTypeURL {
			return nil, name, fmt.Errorf(`"@type" %v is not %s`, t, clusterTypeURL)
		}
		delete(obj, "@type")
	}
	pb = &clusterv3.Cluster{}
	if err := normMessage(obj, pb.ProtoReflect().Descriptor(), ""); err != nil {
		return nil, name, err
	}
	canon, err := json.Marshal(obj)
	if err != nil {
		return nil, name, err
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(canon, pb); err != nil {
		return nil, name, err
	}
	return pb, name, nil
}

// hooks check a message before the generic pass.
var hooks = map[protoreflect.FullName]func(obj map[string]any, path string) error{
	"envoy.config.core.v3.HealthCheck.CustomHealthCheck": codecCheckConfig,
}

// lenientAny are map<string, Any> fields metaproxy does not read: an entry
// whose type is not linked in is kept as an empty Any (still warned about
// through its key), not refused.
var lenientAny = map[protoreflect.FullName]bool{
	"envoy.config.cluster.v3.Cluster.typed_extension_protocol_options": true,
	"envoy.config.core.v3.Metadata.typed_filter_metadata":              true,
}

func emptyAny() map[string]any {
	return map[string]any{"@type": "type.googleapis.com/" + string((&emptypb.Empty{}).ProtoReflect().Descriptor().FullName())}
}

// normMessage checks and rewrites obj, a message md at path, in place:
// nulls (unset, for protojson) are dropped.
func normMessage(obj map[string]any, md protoreflect.MessageDescriptor, path string) error {
	oneofs := map[int][]protoreflect.FieldDescriptor{}
	for _, k := range sortedKeys(obj) {
		fd := md.Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			return fmt.Errorf("%sunknown field %q", prefix(path), k)
		}
		if obj[k] == nil && !isValueField(fd) {
			delete(obj, k) // unset
			continue
		}
		v, err := normField(obj[k], fd, join(path, k))
		if err != nil {
			return err
		}
		obj[k] = v
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			oneofs[od.Index()] = append(oneofs[od.Index()], fd)
		}
	}
	for i := range md.Oneofs().Len() {
		if fds := oneofs[i]; len(fds) > 1 {
			sort.Slice(fds, func(a, b int) bool { return fds[a].Index() < fds[b].Index() })
			names := make([]string, len(fds))
			for j, fd := range fds {
				names[j] = string(fd.Name())
			}
			return fmt.Errorf("%s%s are one of %s: set only one", prefix(path), strings.Join(names, " and "), md.Oneofs().Get(i).Name())
		}
	}
	return nil
}

// isValueField reports whether fd is a singular google.protobuf.Value, for
// which null is a value.
func isValueField(fd protoreflect.FieldDescriptor) bool {
	return !fd.IsList() && !fd.IsMap() && fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Value"
}

func normField(v any, fd protoreflect.FieldDescriptor, path string) (any, error) {
	switch {
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s: not a list: %s", path, rawJSON(v))
		}
		for i, e := range list {
			var err error
			if list[i], err = normSingular(e, fd, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
		return list, nil
	case fd.IsMap():
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: not an object: %s", path, rawJSON(v))
		}
		for _, k := range sortedKeys(m) {
			if lenientAny[fd.FullName()] && !resolvable(m[k]) {
				m[k] = emptyAny()
				continue
			}
			var err error
			if m[k], err = normSingular(m[k], fd.MapValue(), fmt.Sprintf("%s[%q]", path, k)); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	return normSingular(v, fd, path)
}

func resolvable(v any) bool {
	m, _ := v.(map[string]any)
	t, _ := m["@type"].(string)
	_, err := protoregistry.GlobalTypes.FindMessageByURL(t)
	return err == nil
}

func normSingular(v any, fd protoreflect.FieldDescriptor, path string) (any, error) {
	if v == nil {
		if fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Value" {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: null is not a value here", path)
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return normMessageValue(v, fd.Message(), path)
	case protoreflect.EnumKind:
		return normEnum(v, fd.Enum(), path)
	}
	return normScalar(v, fd.Kind(), path)
}

// wrappers are the wrapper types: in JSON, the wrapped value.
var wrappers = map[protoreflect.FullName]bool{
	"google.protobuf.DoubleValue": true, "google.protobuf.FloatValue": true, "google.protobuf.Int64Value": true,
	"google.protobuf.UInt64Value": true, "google.protobuf.Int32Value": true, "google.protobuf.UInt32Value": true,
	"google.protobuf.BoolValue": true, "google.protobuf.StringValue": true, "google.protobuf.BytesValue": true,
}

// ownJSON reports whether md is a well-known type with its own JSON form
// (in an Any: {"@type", "value"}).
func ownJSON(md protoreflect.MessageDescriptor) bool {
	switch md.FullName() {
	case "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask", "google.protobuf.Struct",
		"google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Any":
		return true
	}
	return wrappers[md.FullName()]
}

func normMessageValue(v any, md protoreflect.MessageDescriptor, path string) (any, error) {
	switch name := md.FullName(); {
	case name == "google.protobuf.Duration":
		d, err := ParseDuration(json.RawMessage(rawJSON(v)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return formatDuration(d), nil
	case name == "google.protobuf.Value", name == "google.protobuf.Timestamp", name == "google.protobuf.FieldMask":
		return v, nil // protojson checks them
	case name == "google.protobuf.ListValue":
		if _, ok := v.([]any); !ok {
			return nil, fmt.Errorf("%s: not a list: %s", path, rawJSON(v))
		}
		return v, nil
	case wrappers[name]:
		return normWrapper(v, md.Fields().ByName("value").Kind(), path)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an object: %s", path, rawJSON(v))
	}
	switch md.FullName() {
	case "google.protobuf.Any":
		return normAny(obj, path)
	case "google.protobuf.Struct":
		return obj, nil
	}
	if hook := hooks[md.FullName()]; hook != nil {
		if err := hook(obj, path); err != nil {
			return nil, err
		}
	}
	return obj, normMessage(obj, md, path)
}

// normWrapper reads a wrapper: the value, or {"value": x} ({} is zero).
func normWrapper(v any, kind protoreflect.Kind, path string) (any, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return normScalar(v, kind, path)
	}
	for _, k := range sortedKeys(obj) {
		if k != "value" {
			return nil, fmt.Errorf("%s: unknown field %q", path, k)
		}
	}
	if v = obj["value"]; v == nil {
		switch kind {
		case protoreflect.BoolKind:
			v = false
		case protoreflect.StringKind, protoreflect.BytesKind:
			v = ""
		default:
			v = json.Number("0")
		}
	}
	return normScalar(v, kind, path)
}

func normAny(obj map[string]any, path string) (any, error) {
	if len(obj) == 0 {
		return obj, nil
	}
	t, _ := obj["@type"].(string)
	if t == "" {
		return nil, fmt.Errorf(`%s: "@type" is needed`, path)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(t)
	if err != nil {
		return nil, fmt.Errorf("%s: unknown type %q", path, t)
	}
	md := mt.Descriptor()
	if ownJSON(md) {
		for _, k := range sortedKeys(obj) {
			if k != "@type" && k != "value" {
				return nil, fmt.Errorf("%s: unknown field %q", path, k)
			}
		}
		if obj["value"] != nil {
			if obj["value"], err = normMessageValue(obj["value"], md, path+".value"); err != nil {
				return nil, err
			}
		}
		return obj, nil
	}
	delete(obj, "@type")
	if _, err := normMessageValue(obj, md, path); err != nil {
		return nil, err
	}
	obj["@type"] = t
	return obj, nil
}
