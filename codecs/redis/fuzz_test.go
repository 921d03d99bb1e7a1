package redis

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
)

// FuzzDecode feeds arbitrary bytes to codecs of every side
// (codectest.FuzzDecode: no panic, no overlong split, accepted frames
// re-encode to themselves, edits, error and reject replies do not panic),
// and every accepted request to the engine helpers, seeded with the golden
// frames.
func FuzzDecode(f *testing.F) {
	factory, err := NewFactory(Options{MaxFrame: 1 << 16, MaxDepth: 8})
	if err != nil {
		f.Fatal(err)
	}
	for _, g := range goldenExchanges(f) {
		if len(g.Request) <= 4096 {
			f.Add([]byte(g.Request))
		}
		if len(g.Response) <= 4096 {
			f.Add([]byte(g.Response))
		}
	}
	for _, g := range append(garbage, clientGarbage...) {
		f.Add(g)
	}
	f.Add([]byte("SET \"a\\x41\" 'b\\'c' d\"e f\"\r\nGET x\n"))
	f.Add([]byte("|1\r\n+a\r\n%1\r\n+b\r\n~1\r\n=5\r\ntxt:x\r\n"))
	sides := []codec.Side{codec.SideBoth, codec.SideDownstream, codec.SideUpstream}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, side := range sides {
			codectest.FuzzDecode(t, sideFactory(factory, side), data)
		}
		c := factory.NewCodecFor(codec.SideBoth)
		for len(data) > 0 {
			n, err := c.Split(data)
			if err != nil || n == 0 {
				return
			}
			m := &codec.Message{Frame: data[:n]}
			if c.Decode(m.Frame, m) == nil {
				engineHelpers(t, m)
			}
			data = data[n:]
		}
	})
}

// engineHelpers runs every exported helper on m; none may panic, and key
// positions must be arguments.
func engineHelpers(t *testing.T, m *codec.Message) {
	args, err := Args(nil, m)
	for _, p := range KeyPositions(nil, m) {
		if err != nil || p <= 0 || p >= len(args) {
			t.Fatalf("key at %d of %d arguments (%v)", p, len(args), err)
		}
	}
	Keys(m)
	PingReply(nil, m)
	SelectDB(m)
	IsPush(m)
	if mk, ok := Splittable(m); ok {
		groups := make([]int, mk.Groups)
		for i := range groups {
			groups[i] = i
		}
		if _, err := AppendPart(nil, args, mk, groups); err != nil {
			t.Fatalf("AppendPart of every group: %v", err)
		}
		_, _ = MergeReplies(nil, mk, [][]int{groups}, [][]byte{m.Frame})
	}
}
