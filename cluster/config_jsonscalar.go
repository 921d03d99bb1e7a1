package cluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The scalar half of decodeCluster's first pass (enums, numbers, bools,
// strings and bytes, checked and written as protojson reads them), and the
// helpers of both halves.

// prefix is path as the start of an error ("" at the top).
func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

// join is the path of field name within path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func rawJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func normEnum(v any, ed protoreflect.EnumDescriptor, path string) (any, error) {
	if ed.FullName() == "google.protobuf.NullValue" {
		return v, nil
	}
	switch x := v.(type) {
	case string:
		if ed.Values().ByName(protoreflect.Name(x)) != nil {
			return x, nil
		}
	case json.Number:
		if n, err := strconv.ParseInt(x.String(), 10, 32); err == nil {
			if ev := ed.Values().ByNumber(protoreflect.EnumNumber(n)); ev != nil {
				return string(ev.Name()), nil
			}
		}
	}
	names := make([]string, ed.Values().Len())
	for i := range names {
		names[i] = string(ed.Values().Get(i).Name())
	}
	return nil, fmt.Errorf("%s: %s is not one of %s", path, rawJSON(v), strings.Join(names, ", "))
}

func normScalar(v any, kind protoreflect.Kind, path string) (any, error) {
	switch kind {
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			return nil, fmt.Errorf("%s: not a bool: %s", path, rawJSON(v))
		}
	case protoreflect.StringKind:
		if _, ok := v.(string); !ok {
			return nil, fmt.Errorf("%s: not a string: %s", path, rawJSON(v))
		}
	case protoreflect.BytesKind:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s: not a string: %s", path, rawJSON(v))
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil {
				return base64.StdEncoding.EncodeToString(b), nil
			}
		}
		return nil, fmt.Errorf("%s: invalid base64 %q", path, s)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		s := numberText(v)
		if _, err := strconv.ParseFloat(s, 64); err != nil && s != "NaN" && s != "Infinity" && s != "-Infinity" {
			return nil, fmt.Errorf("%s: not a number: %s", path, rawJSON(v))
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		limit := uint64(math.MaxUint64)
		if kind == protoreflect.Uint32Kind || kind == protoreflect.Fixed32Kind {
			limit = math.MaxUint32
		}
		n, err := parseUint(numberText(v), limit)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return json.Number(strconv.FormatUint(n, 10)), nil
	default: // signed integers
		bits := 64
		if kind == protoreflect.Int32Kind || kind == protoreflect.Sint32Kind || kind == protoreflect.Sfixed32Kind {
			bits = 32
		}
		n, err := strconv.ParseInt(numberText(v), 10, bits)
		if err != nil {
			f, ferr := strconv.ParseFloat(numberText(v), 64)
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) >= math.Ldexp(1, bits-1) {
				return nil, fmt.Errorf("%s: not an integer of %d bits: %s", path, bits, rawJSON(v))
			}
			n = int64(f)
		}
		return json.Number(strconv.FormatInt(n, 10)), nil
	}
	return v, nil
}

// numberText is a JSON number's text, or a string's (protojson's quoted
// numbers); "" for other values.
func numberText(v any) string {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case string:
		return strings.TrimSpace(x)
	}
	return ""
}

// parseUint reads an unsigned integer of at most limit (an integral float
// too: 1e3).
func parseUint(s string, limit uint64) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f < 0 || f != math.Trunc(f) || f >= 1<<64 {
			if s == "" {
				s = "not a number"
			}
			return 0, fmt.Errorf("not an unsigned integer: %s", s)
		}
		v = uint64(f)
	}
	if v > limit {
		return 0, fmt.Errorf("%d exceeds %d", v, limit)
	}
	return v, nil
}

// formatDuration writes d as protojson reads it: "-1.500000000s".
func formatDuration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%d.%09ds", sign, d/time.Second, d%time.Second)
}
