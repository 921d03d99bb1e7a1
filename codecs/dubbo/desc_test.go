package dubbo

import (
	"regexp"
	"testing"
)

// descPattern is Java Dubbo's ReflectUtils.DESC_PATTERN (also dubbo-go's
// DESC_REGEX), the reference countArgs must agree with.
var descPattern = regexp.MustCompile(`(?:(?:[VZBCDFIJS])|(?:L(?:[_$a-zA-Z][_$a-zA-Z0-9]*)(?:\/(?:[_$a-zA-Z][_$a-zA-Z0-9]*))*;)|(?:\[+(?:(?:[VZBCDFIJS])|(?:L(?:[_$a-zA-Z][_$a-zA-Z0-9]*)(?:\/(?:[_$a-zA-Z][_$a-zA-Z0-9]*))*;))))`)

var descCases = []struct {
	desc string
	n    int
}{
	{"", 0},
	{"I", 1},
	{"Ljava/lang/String;", 1},
	{"Ljava/lang/String;I[J", 3},
	{"[Ljava/lang/String;[[I", 2},
	{"Lorg/example/User$Inner;Ljava/util/Map;ZBCDFJSV", 10},
	{"Ljava/lang/String;[Ljava/lang/String;[Ljava/lang/Object;", 3}, // $invoke
	{"Ljava.lang.String;", 1},                                       // dots: only the S of String matches
	{"[Ljava/util/Date", 1},                                         // dubbo-go's unterminated date array: only D matches
	{"[[[", 0},
	{"L;", 0},
	{"L1a;", 0},
	{"xyz", 0},
}

func TestCountArgs(t *testing.T) {
	for _, tc := range descCases {
		if got := countArgs(tc.desc); got != tc.n {
			t.Errorf("countArgs(%q) = %d, want %d", tc.desc, got, tc.n)
		}
		if ref := len(descPattern.FindAllString(tc.desc, -1)); ref != tc.n {
			t.Errorf("the reference pattern counts %d in %q, the table says %d", ref, tc.desc, tc.n)
		}
	}
}

// FuzzCountArgs checks countArgs against the reference pattern on any input.
func FuzzCountArgs(f *testing.F) {
	for _, tc := range descCases {
		f.Add(tc.desc)
	}
	f.Fuzz(func(t *testing.T, desc string) {
		if got, want := countArgs(desc), len(descPattern.FindAllString(desc, -1)); got != want {
			t.Fatalf("countArgs(%q) = %d, the pattern finds %d", desc, got, want)
		}
	})
}
