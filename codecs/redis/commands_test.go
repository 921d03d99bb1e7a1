package redis

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codecs/redis/internal/golden"
)

// later are the table's commands that Redis 7.0 does not have.
var later = map[string]bool{"WAITAOF": true, "HEXPIRE": true, "HPEXPIRE": true, "HEXPIREAT": true,
	"HPEXPIREAT": true, "HTTL": true, "HPTTL": true, "HEXPIRETIME": true, "HPEXPIRETIME": true,
	"HPERSIST": true, "HGETDEL": true, "HGETEX": true, "HSETEX": true}

// TestCommandTable compares the table with COMMAND as redis-server 7.0.15
// gave it: every command is there with its first key, last key and step
// (MIGRATE's key moves: its procedure finds it), and the subcommands
// that take keys are the ones keyedSubs lists.
func TestCommandTable(t *testing.T) {
	var cs golden.Commands
	readJSON(t, "commands.json", &cs)
	seen := map[string]bool{}
	subs := map[string]bool{}
	for _, want := range cs.Commands {
		if parent, sub, ok := strings.Cut(want.Name, "|"); ok {
			if want.First > 0 {
				subs[strings.ToUpper(parent+" "+sub)] = true
			}
			continue
		}
		name := strings.ToUpper(want.Name)
		c := lookup([]byte(want.Name))
		if c == nil {
			t.Errorf("%s is missing from the table", name)
			continue
		}
		seen[name] = true
		got := [3]int{int(c.first), int(c.last), int(c.step)}
		if name == "MIGRATE" {
			got = [3]int{3, 3, 1}
		}
		if got != [3]int{want.First, want.Last, want.Step} {
			t.Errorf("%s: keys %v, COMMAND says %d %d %d", name, got, want.First, want.Last, want.Step)
		}
		if want.Movable != (c.proc != procNone && c.proc != procSub) && name != "SORT_RO" {
			t.Errorf("%s: movablekeys %v but procedure %d", name, want.Movable, c.proc)
		}
	}
	for i := range commands {
		if n := commands[i].name; !seen[n] && !later[n] {
			t.Errorf("%s is in the table but not in Redis 7.0", n)
		}
	}
	for parent, list := range keyedSubs {
		for _, s := range list {
			if !subs[parent+" "+s] {
				t.Errorf("%s %s takes no key in Redis 7.0", parent, s)
			}
			delete(subs, parent+" "+s)
		}
	}
	for s := range subs {
		t.Errorf("subcommand %s takes a key but keyedSubs does not list it", s)
	}
}

// TestMethodAliasesTable: a known command's method is the table's own
// string whatever the case on the wire; an unknown one aliases the frame.
func TestMethodAliasesTable(t *testing.T) {
	c := newTestFactory(t).NewCodec()
	for _, f := range []string{"*2\r\n$3\r\nget\r\n$1\r\nk\r\n", "*2\r\n$3\r\nGeT\r\n$1\r\nk\r\n", "get k\r\n"} {
		m := decode(t, c.(*Codec), []byte(f))
		got := m.Meta.Value(codec.KeyMethod)
		if got != "GET" || unsafe.StringData(got) != unsafe.StringData(index["GET"].name) {
			t.Errorf("%q: method %q does not alias the table", f, got)
		}
	}
	frame := []byte("*2\r\n$6\r\nfooBAR\r\n$1\r\nk\r\n")
	m := decode(t, c.(*Codec), frame)
	got := m.Meta.Value(codec.KeyMethod)
	if got != "fooBAR" || unsafe.StringData(got) != &frame[8] {
		t.Errorf("unknown command: method %q does not alias the frame", got)
	}
	if _, ok := m.Meta.Get(KeyKey); ok {
		t.Errorf("unknown command has a key")
	}
}

// TestKeyPositions covers the procedures with forms the goldens do not
// have; COMMAND GETKEYS of redis-server 7.0.15 gives the same keys (HGETDEL
// is newer).
func TestKeyPositions(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		keys  []int
		first [3]int
	}{
		{[]string{"GET", "k"}, []int{1}, [3]int{1, 1, 1}},
		{[]string{"GET"}, nil, [3]int{}},
		{[]string{"PING"}, nil, [3]int{}},
		{[]string{"AUTH", "user", "pass"}, nil, [3]int{}},
		{[]string{"MSET", "a", "1", "b", "2"}, []int{1, 3}, [3]int{1, 4, 2}},
		{[]string{"MGET", "a", "b", "c"}, []int{1, 2, 3}, [3]int{1, 3, 1}},
		{[]string{"BLPOP", "a", "b", "0"}, []int{1, 2}, [3]int{1, 2, 1}},
		{[]string{"BITOP", "OR", "dest", "a", "b"}, []int{2, 3, 4}, [3]int{2, 4, 1}},
		{[]string{"EVAL", "s", "2", "a", "b", "x"}, []int{3, 4}, [3]int{3, 4, 1}},
		{[]string{"EVAL", "s", "3", "a", "b"}, nil, [3]int{}},
		{[]string{"EVAL", "s", "-1", "a"}, nil, [3]int{}},
		{[]string{"FCALL", "f", "1", "a"}, []int{3}, [3]int{3, 3, 1}},
		{[]string{"BLMPOP", "0", "2", "a", "b", "LEFT"}, []int{3, 4}, [3]int{3, 4, 1}},
		{[]string{"ZINTERSTORE", "d", "2", "a", "b"}, []int{1, 3, 4}, [3]int{1, 1, 1}},
		{[]string{"XREAD", "BLOCK", "0", "STREAMS", "a", "b", "0", "0"}, []int{4, 5}, [3]int{4, 5, 1}},
		{[]string{"XREAD", "STREAMS", "a", "b", "0"}, []int{2}, [3]int{2, 2, 1}},
		{[]string{"XREAD", "STREAMS", "a"}, nil, [3]int{}},
		{[]string{"GEORADIUS", "g", "1", "2", "3", "m", "store", "a", "STOREDIST", "b"}, []int{1, 7, 9}, [3]int{1, 1, 1}},
		{[]string{"GEORADIUS", "g", "1", "2", "3", "m", "STOREDIST", "b", "STORE", "a"}, []int{1, 9, 7}, [3]int{1, 1, 1}},
		{[]string{"XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "s", ">"}, []int{6}, [3]int{6, 6, 1}},
		{[]string{"MIGRATE", "h", "1", "k", "0", "10"}, []int{3}, [3]int{3, 3, 1}},
		{[]string{"MIGRATE", "h", "1", "", "0", "10", "AUTH", "keys", "KEYS", "a", "b"}, []int{9, 10}, [3]int{9, 10, 1}},
		{[]string{"SORT", "l", "BY", "store", "STORE", "d", "GET", "x"}, []int{1, 5}, [3]int{1, 1, 1}},
		{[]string{"SORT_RO", "l", "STORE", "d"}, []int{1}, [3]int{1, 1, 1}},
		{[]string{"GEORADIUSBYMEMBER", "g", "m", "1", "km", "STOREDIST", "d"}, []int{1, 6}, [3]int{1, 1, 1}},
		{[]string{"OBJECT", "freq", "k"}, []int{2}, [3]int{2, 2, 1}},
		{[]string{"OBJECT", "HELP"}, nil, [3]int{}},
		{[]string{"MEMORY", "STATS"}, nil, [3]int{}},
		{[]string{"XGROUP", "DESTROY", "s", "g"}, []int{2}, [3]int{2, 2, 1}},
		{[]string{"CONFIG", "GET", "x"}, nil, [3]int{}},
		{[]string{"HGETDEL", "h", "FIELDS", "1", "f"}, []int{1}, [3]int{1, 1, 1}},
	} {
		m := &codec.Message{Kind: codec.KindRequest, Frame: AppendCommand(nil, bytesOf(tc.args)...)}
		if got := KeyPositions(nil, m); !equalInts(got, tc.keys) {
			t.Errorf("%q: keys at %v, want %v", tc.args, got, tc.keys)
		}
		if f, l, s := Keys(m); [3]int{f, l, s} != tc.first {
			t.Errorf("%q: Keys %d %d %d, want %v", tc.args, f, l, s, tc.first)
		}
	}
}

func bytesOf(args []string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
