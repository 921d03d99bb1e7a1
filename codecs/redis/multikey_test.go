package redis

import (
	"strings"
	"testing"
)

func TestSplittable(t *testing.T) {
	for _, tc := range []struct {
		args []string
		mk   MultiKey
		ok   bool
	}{
		{[]string{"MGET", "a", "b", "c"}, MultiKey{1, 1, 3, MergeArray}, true},
		{[]string{"mset", "a", "1", "b", "2"}, MultiKey{1, 2, 2, MergeAllOK}, true},
		{[]string{"DEL", "a"}, MultiKey{1, 1, 1, MergeSum}, true},
		{[]string{"EXISTS", "a", "a"}, MultiKey{1, 1, 2, MergeSum}, true},
		{[]string{"UNLINK", "a", "b"}, MultiKey{1, 1, 2, MergeSum}, true},
		{[]string{"TOUCH", "a", "b"}, MultiKey{1, 1, 2, MergeSum}, true},
		{[]string{"MSET", "a", "1", "b"}, MultiKey{}, false},
		{[]string{"MGET"}, MultiKey{}, false},
		{[]string{"MSETNX", "a", "1"}, MultiKey{}, false},
		{[]string{"GET", "a"}, MultiKey{}, false},
		{[]string{"NOPE", "a"}, MultiKey{}, false},
	} {
		mk, ok := Splittable(cmdMsg(t, tc.args...))
		if mk != tc.mk || ok != tc.ok {
			t.Errorf("%q: %+v %v", tc.args, mk, ok)
		}
	}
}

// TestSplitAndMerge splits MGET, MSET and DEL by hash slot parity into two
// parts and merges answers shaped as Redis gives them.
func TestSplitAndMerge(t *testing.T) {
	m := cmdMsg(t, "MGET", "a", "{a}b", "c", "d")
	mk, _ := Splittable(m)
	args, err := Args(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]int{{0, 1, 3}, {2}}
	p0, err := AppendPart(nil, args, mk, parts[0])
	if err != nil || string(p0) != "*4\r\n$4\r\nMGET\r\n$1\r\na\r\n$4\r\n{a}b\r\n$1\r\nd\r\n" {
		t.Fatalf("part 0: %q %v", p0, err)
	}
	replies := [][]byte{[]byte("*3\r\n$2\r\nva\r\n_\r\n$-1\r\n"), []byte("*1\r\n$2\r\nvc\r\n")}
	got, err := MergeReplies(nil, mk, parts, replies)
	if err != nil || string(got) != "*4\r\n$2\r\nva\r\n_\r\n$2\r\nvc\r\n$-1\r\n" {
		t.Fatalf("MGET merged: %q %v", got, err)
	}
	// The first error of a part is the reply.
	errs := [][]byte{[]byte("*1\r\n$2\r\nvc\r\n"), []byte("-MOVED 1 h:1\r\n")}
	if got, err := MergeReplies(nil, mk, [][]int{{2}, {0, 1, 3}}, errs); err != nil || string(got) != "-MOVED 1 h:1\r\n" {
		t.Errorf("error part: %q %v", got, err)
	}
	// Wrong shapes are errors.
	for _, bad := range [][][]byte{
		{[]byte("*2\r\n$2\r\nva\r\n_\r\n"), []byte("*1\r\n$2\r\nvc\r\n")},
		{[]byte(":3\r\n"), []byte("*1\r\n$2\r\nvc\r\n")},
		{[]byte("*3\r\n$2\r\nva\r\n_\r\n_\r\n+x"), []byte("*1\r\n$2\r\nvc\r\n")},
		{[]byte("*3\r\n$2\r\nva\r\n_\r\n"), []byte("*1\r\n$2\r\nvc\r\n")},
	} {
		if got, err := MergeReplies(nil, mk, parts, bad); err == nil {
			t.Errorf("%q merged to %q", bad, got)
		}
	}
	for _, ps := range [][][]int{{{0, 1}, {2}}, {{0, 1, 3}, {2, 2}}, {{0, 1, 3}, {4}}, {{0, 1, 2, 3}}} {
		if _, err := MergeReplies(nil, mk, ps, replies); err == nil {
			t.Errorf("parts %v accepted", ps)
		}
	}
	if _, err := AppendPart(nil, args, mk, []int{4}); err == nil {
		t.Errorf("group 4 of 4 accepted")
	}
	if _, err := AppendPart(nil, args[:3], mk, []int{0}); err == nil {
		t.Errorf("short args accepted")
	}

	ms := cmdMsg(t, "MSET", "a", "1", "b", "2", "c", "3")
	mk, _ = Splittable(ms)
	args, _ = Args(nil, ms)
	p1, err := AppendPart(nil, args, mk, []int{2, 0})
	if err != nil || string(p1) != "*5\r\n$4\r\nMSET\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n1\r\n" {
		t.Fatalf("MSET part: %q %v", p1, err)
	}
	ok := [][]byte{[]byte("+OK\r\n"), []byte("+OK\r\n")}
	if got, err := MergeReplies(nil, mk, [][]int{{2, 0}, {1}}, ok); err != nil || string(got) != "+OK\r\n" {
		t.Errorf("MSET merged: %q %v", got, err)
	}
	if _, err := MergeReplies(nil, mk, [][]int{{2, 0}, {1}}, [][]byte{[]byte("+OK\r\n"), []byte("+QUEUED\r\n")}); err == nil {
		t.Errorf("+QUEUED merged")
	}

	del := cmdMsg(t, "DEL", "a", "b", "c")
	mk, _ = Splittable(del)
	sums := [][]byte{[]byte(":2\r\n"), []byte(":0\r\n")}
	if got, err := MergeReplies([]byte("x"), mk, [][]int{{0, 2}, {1}}, sums); err != nil || string(got) != "x:2\r\n" {
		t.Errorf("DEL merged: %q %v", got, err)
	}
	if _, err := MergeReplies(nil, mk, [][]int{{0, 2}, {1}}, [][]byte{[]byte(":2\r\n"), []byte("+OK\r\n")}); err == nil {
		t.Errorf("a non-integer summed")
	}
	if _, err := MergeReplies(nil, MultiKey{Groups: 1}, [][]int{{0}}, [][]byte{[]byte(":1\r\n")}); err == nil {
		t.Errorf("MergeNone merged")
	}
}

func TestAppendCommandDecodes(t *testing.T) {
	f := AppendCommand(nil, []byte("SET"), []byte("k\r\n"), []byte(strings.Repeat("v", 300)))
	m := decode(t, newTestFactory(t).NewCodec().(*Codec), f)
	if m.Meta.Value("method") != "SET" || m.Meta.Value(KeyKey) != "k\r\n" {
		t.Errorf("%v", m.Meta.All())
	}
}
