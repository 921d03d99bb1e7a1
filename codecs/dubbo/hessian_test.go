package dubbo

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/metaproxy/metaproxy/codec"
)

// cat joins byte strings, for writing Hessian values by hand.
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			b = append(b, byte(v))
		case rune:
			b = append(b, byte(v))
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		}
	}
	return b
}

// point defines class 0 "Point" with fields x and y.
var point = cat('C', 0x05, "Point", 0x92, 0x01, "x", 0x01, "y")

// skipValues are single Hessian 2 values in every encoding, written from
// the Hessian 2.0 serialization spec.
var skipValues = []struct {
	name string
	b    []byte
}{
	{"null", cat('N')},
	{"true", cat('T')},
	{"false", cat('F')},
	{"int direct", cat(0x90)},
	{"int byte", cat(0xc8, 0x01)},
	{"int short", cat(0xd4, 0x01, 0x02)},
	{"int", cat('I', 0, 0, 1, 0)},
	{"long direct", cat(0xe0)},
	{"long byte", cat(0xf8, 0x01)},
	{"long short", cat(0x3c, 0x01, 0x02)},
	{"long as int", cat(0x59, 0, 0, 1, 0)},
	{"long", cat('L', 0, 0, 0, 0, 0, 0, 1, 0)},
	{"double zero", cat(0x5b)},
	{"double one", cat(0x5c)},
	{"double byte", cat(0x5d, 0x80)},
	{"double short", cat(0x5e, 0x80, 0x00)},
	{"double mill", cat(0x5f, 0, 0, 0x30, 0x39)},
	{"double", cat('D', 0x40, 0x28, 0x80, 0, 0, 0, 0, 0)},
	{"date ms", cat(0x4a, 0, 0, 0, 0xd0, 0x4b, 0x92, 0x84, 0xb8)},
	{"date minutes", cat(0x4b, 0x00, 0xe3, 0x83, 0x8f)},
	{"string empty", cat(0x00)},
	{"string direct", cat(0x03, "abc")},
	{"string short", cat(0x30, 0x20, strings.Repeat("s", 32))},
	{"string", cat('S', 0x00, 0x03, "abc")},
	{"string chunks", cat('R', 0x00, 0x01, "a", 'R', 0x00, 0x01, "b", 0x01, "c")},
	{"string two-byte chars", cat(0x02, "üü")},
	{"string three-byte chars", cat(0x02, "你好")},
	{"string surrogate pair", cat(0x02, 0xed, 0xa0, 0xbe, 0xed, 0xb4, 0xa3)},
	{"binary empty", cat(0x20)},
	{"binary direct", cat(0x23, 1, 2, 3)},
	{"binary short", cat(0x34, 0x10, strings.Repeat("b", 16))},
	{"binary", cat('B', 0x00, 0x02, 1, 2)},
	{"binary chunks", cat('A', 0x00, 0x01, 1, 'A', 0x00, 0x01, 2, 0x21, 3)},
	{"list variable typed", cat(0x55, 0x04, "[int", 0x91, 0x92, 'Z')},
	{"list fixed typed", cat('V', 0x04, "[int", 0x92, 0x91, 0x92)},
	{"list fixed typed by index", cat('V', 0x90, 0x91, 0x91)},
	{"list variable untyped", cat(0x57, 0x91, 0x03, "abc", 'Z')},
	{"list fixed untyped", cat(0x58, 0x92, 0x91, 'N')},
	{"list short typed", cat(0x72, 0x04, "[int", 0x91, 0x92)},
	{"list short untyped", cat(0x7a, 0x91, 0x92)},
	{"list empty", cat(0x78)},
	{"map untyped", cat('H', 0x91, 0x92, 0x01, "k", 'N', 'Z')},
	{"map typed", cat('M', 0x03, "Map", 0x01, "a", 0x78, 'Z')},
	{"map typed by index", cat('M', 0x90, 'Z')},
	{"object compact", cat(point, 0x60, 0x91, 0x92)},
	{"object", cat(point, 'O', 0x90, 0x91, 0x92)},
	{"objects sharing a class", cat(0x79, cat(point, 0x60, 0x91, 0x92))},
	{"object holding an object", cat(point, 0x60, cat(0x60, 0x91, 0x92), 'N')},
	{"refs to a list and a map", cat(0x58, 0x93, 'H', 'Z', 0x51, 0x90, 0x51, 0x91)},
	{"ref to itself", cat('H', 0x02, "me", 0x51, 0x90, 'Z')},
	{"deep nesting", cat(strings.Repeat("\x79", maxDepth-1), 'N')},
}

func TestSkipValues(t *testing.T) {
	var r reader
	for _, v := range skipValues {
		// A trailing value checks that skip stops exactly at the end.
		r.reset(cat(v.b, 'N'))
		n, err := r.skip(0)
		if err != nil || n != len(v.b) {
			t.Errorf("%s: skip = %d, %v; want %d", v.name, n, err, len(v.b))
		}
	}
}

// TestSkipTruncated cuts every value short: every cut is an error.
func TestSkipTruncated(t *testing.T) {
	var r reader
	for _, v := range skipValues {
		for cut := range len(v.b) {
			r.reset(v.b[:cut])
			if n, err := r.skip(0); err == nil {
				t.Errorf("%s cut to %d bytes: skip = %d, no error", v.name, cut, n)
			}
		}
	}
}

func TestSkipMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"end marker as value", cat('Z')},
		{"reserved tag @", cat(0x40)},
		{"reserved tag E", cat('E')},
		{"reserved tag G", cat('G')},
		{"reserved tag P", cat('P')},
		{"object of undefined class", cat('O', 0x90)},
		{"compact object of undefined class", cat(0x61)},
		{"object class beyond the definitions", cat(point, 0x61, 0x91, 0x92)},
		{"ref before any container", cat(0x51, 0x90)},
		{"ref beyond the containers", cat(0x58, 0x92, 'H', 'Z', 0x51, 0x92)},
		{"negative list length", cat(0x58, 0x8f)},
		{"negative class field count", cat('C', 0x01, "P", 0x8f, 0x60)},
		{"non-string field name", cat('C', 0x01, "P", 0x91, 0x91, 0x60, 'N')},
		{"bad utf-8 lead byte", cat(0x01, 0x80)},
		{"four-byte utf-8", cat(0x02, "🤣")},
		{"string chunk then int", cat('R', 0x00, 0x01, "a", 0x91)},
		{"binary chunk then string", cat('A', 0x00, 0x01, 1, 0x01, "a")},
		{"map without end", cat('H', 0x91, 0x92)},
		{"map with key and no value", cat('H', 0x91, 'Z')},
		{"too deep", cat(strings.Repeat("\x79", maxDepth), 'N')},
		{"type that is neither string nor int", cat('V', 'N', 0x90)},
	} {
		var r reader
		r.reset(tc.b)
		n, err := r.skip(0)
		var pe *codec.ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("%s: skip = %d, %v; want a *codec.ProtocolError", tc.name, n, err)
		}
	}
}

func TestStr(t *testing.T) {
	for _, tc := range []struct {
		name  string
		b     []byte
		want  string
		alias bool
	}{
		{"null", cat('N'), "", false},
		{"empty", cat(0x00), "", false},
		{"direct", cat(0x03, "abc"), "abc", true},
		{"short", cat(0x30, 0x20, strings.Repeat("s", 32)), strings.Repeat("s", 32), true},
		{"long", cat('S', 0x00, 0x03, "abc"), "abc", true},
		{"three-byte chars", cat(0x02, "你好"), "你好", true},
		{"chunks", cat('R', 0x00, 0x01, "a", 0x31, 0x00, strings.Repeat("b", 256)), "a" + strings.Repeat("b", 256), false},
		{"surrogate pair", cat(0x03, "x", 0xed, 0xa0, 0xbe, 0xed, 0xb4, 0xa3), "x🤣", false},
		{"pair split over chunks", cat('R', 0x00, 0x01, 0xed, 0xa0, 0xbe, 0x01, 0xed, 0xb4, 0xa3), "🤣", false},
		{"unpaired half", cat(0x01, 0xed, 0xa0, 0xbe), "\xed\xa0\xbe", false},
	} {
		var r reader
		r.reset(cat(tc.b, 'N'))
		s, n, _, err := r.str(0)
		if err != nil || s != tc.want || n != len(tc.b) {
			t.Errorf("%s: str = %q, %d, %v; want %q, %d", tc.name, s, n, err, tc.want, len(tc.b))
			continue
		}
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		base := uintptr(unsafe.Pointer(&r.b[0]))
		if aliased := s != "" && p >= base && p < base+uintptr(len(r.b)); aliased != tc.alias {
			t.Errorf("%s: aliases the body: %v, want %v", tc.name, aliased, tc.alias)
		}
	}
}

func TestInt32At(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want int32
	}{
		{cat(0x80), -16}, {cat(0xbf), 47}, {cat(0xc0, 0x00), -2048}, {cat(0xcf, 0xff), 2047},
		{cat(0xd0, 0, 0), -262144}, {cat(0xd7, 0xff, 0xff), 262143},
		{cat('I', 0x80, 0, 0, 0), -1 << 31}, {cat('I', 0x7f, 0xff, 0xff, 0xff), 1<<31 - 1},
	} {
		var r reader
		r.reset(tc.b)
		if v, n, err := r.int32At(0); v != tc.want || n != len(tc.b) || err != nil {
			t.Errorf("% x: %d, %d, %v; want %d", tc.b, v, n, err, tc.want)
		}
	}
	var r reader
	r.reset(cat(0x03, "abc"))
	if _, _, err := r.int32At(0); err == nil {
		t.Error("a string read as an int")
	}
}

func TestAppendString(t *testing.T) {
	for _, tc := range []struct {
		name, s string
		head    []byte // expected leading bytes
	}{
		{"empty", "", cat(0x00)},
		{"direct max", strings.Repeat("a", 31), cat(0x1f, 'a')},
		{"short min", strings.Repeat("a", 32), cat(0x30, 0x20, 'a')},
		{"short max", strings.Repeat("a", 1023), cat(0x33, 0xff, 'a')},
		{"long", strings.Repeat("a", 1024), cat('S', 0x04, 0x00, 'a')},
		{"one chunk", strings.Repeat("a", maxChunk), cat('S', 0x80, 0x00, 'a')},
		{"two chunks", strings.Repeat("a", maxChunk+1), cat('R', 0x80, 0x00, 'a')},
		{"astral", "🤣", cat(0x02, 0xed, 0xa0, 0xbe, 0xed, 0xb4, 0xa3)},
		{"astral at a chunk end", strings.Repeat("a", maxChunk-1) + "🤣", cat('R', 0x7f, 0xff, 'a')},
		{"two-byte chars", "grüße", cat(0x05, "gr")},
	} {
		b := appendString([]byte{0xee}, tc.s)
		if b[0] != 0xee || !bytes.HasPrefix(b[1:], tc.head) {
			t.Errorf("%s: encoded as % x..., want % x...", tc.name, b[:min(len(b), 8)], tc.head)
		}
		var r reader
		r.reset(b[1:])
		if got, n, _, err := r.str(0); err != nil || got != tc.s || n != len(b)-1 {
			t.Errorf("%s: reads back as %.20q (%d of %d bytes), %v", tc.name, got, n, len(b)-1, err)
		}
	}
	// Invalid UTF-8 is written as U+FFFD.
	b := appendString(nil, "a\xffb")
	if want := cat(0x03, "a\uFFFDb"); !bytes.Equal(b, want) {
		t.Errorf("invalid utf-8 encoded as % x, want % x", b, want)
	}
}

// TestASCIIAt: the word-wide check agrees with a byte loop for every
// start and length, with a high byte before, inside or after the range.
func TestASCIIAt(t *testing.T) {
	b := []byte("abcdefghijklmnopqrstuvwxyz0123456789")
	for hi := -1; hi < len(b); hi++ {
		buf := append([]byte(nil), b...)
		if hi >= 0 {
			buf[hi] = 0xc3
		}
		for start := 0; start <= len(buf); start++ {
			for n := 0; start+n <= len(buf); n++ {
				want := hi < start || hi >= start+n
				if got := asciiAt(buf, start, n); got != want {
					t.Fatalf("high byte at %d: asciiAt(start %d, n %d) = %v", hi, start, n, got)
				}
			}
		}
	}
}
