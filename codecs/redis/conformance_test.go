package redis

import (
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
)

// garbage must be refused by a fresh codec of any side.
var garbage = [][]byte{
	[]byte("$x\r\n"),
	[]byte("$-2\r\n"),
	[]byte("$3\r\nfoo\n\n"),
	[]byte("$3\r\nfoobar\r\n"),
	[]byte("*-2\r\n"),
	[]byte("*01\r\n$1\r\na\r\n"),
	[]byte("*1\r\n$1\r\nab\n"),
	[]byte("+OK\n"),
	[]byte("+O\rK\r\n"),
	[]byte(":12a\r\n"),
	[]byte("#x\r\n"),
	[]byte("_x\r\n"),
	[]byte(",1.2.x\r\n"),
	[]byte("(12x\r\n"),
	[]byte("=3\r\ntxt\r\n"),
	[]byte("%1\r\n+a\r\n?\r\n"),
	[]byte("*1\r\n$99999999999999999999\r\n"),
	[]byte("$1\r\nab\r\n"),
	[]byte("*2\r\n$3\r\nGET\r\n$?\r\n"),
	[]byte(strings.Repeat("*1\r\n", DefaultMaxDepth+1) + ":1\r\n"),
}

// clientGarbage is refused from clients (downstream and NewCodec codecs).
var clientGarbage = [][]byte{
	[]byte("SET \"a b\r\n"),
	[]byte("SET 'a\r\n"),
	[]byte("SET \"a\"b\r\n"),
	[]byte("POST / HTTP/1.1\r\nHost: x\r\n\r\n"),
	[]byte("host: example.com\r\n"),
	{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, '\n'}, // a TLS ClientHello
	{0xda, 0xbb, 0xc2, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x10},          // a Dubbo header
	[]byte("GET a\x00b\r\n"),
}

func sideFactory(f *Factory, side codec.Side) codec.Factory {
	return codec.FactoryFunc(func() codec.Codec { return f.NewCodecFor(side) })
}

// TestConformance runs the conformance kit two ways. No ids (Redis
// answers in order) and no headers (commands carry none): the kit's id
// rewrite is skipped and header edits must fail with ErrUnsupported;
// HeartbeatReply never applies (no frame decodes as a heartbeat).
//
//   - NewCodec codecs, on requests and on the replies a fresh codec cannot
//     mistake for commands (all but arrays of bulk strings);
//   - upstream codecs on every reply. Their Requests are read as replies
//     too: the kit wants one, and round trips and splits still apply.
//
// Downstream codecs cannot run the kit: it decodes the error replies with
// the suite's own codecs, and a downstream codec reads "-ERR ..." as an
// inline command, as redis-server would. TestGoldens, TestGoldenRefused
// and TestDownstream cover them.
func TestConformance(t *testing.T) {
	f := newTestFactory(t)
	reqs, rsps := goldenRequests(t), goldenResponses(t)
	var plain [][]byte
	for _, r := range rsps {
		if !looksLikeCommand(r) {
			plain = append(plain, r)
		}
	}
	if len(plain) < 20 || len(plain) == len(rsps) {
		t.Fatalf("%d of %d replies are not shaped like commands", len(plain), len(rsps))
	}
	t.Run("NewCodec", func(t *testing.T) {
		codectest.Run(t, codectest.Suite{Factory: f, Requests: reqs, Responses: plain,
			Garbage: append(append([][]byte(nil), garbage...), clientGarbage...), NoIDs: true, NoHeaders: true})
	})
	t.Run("Upstream", func(t *testing.T) {
		g := append(append([][]byte(nil), garbage...), []byte("PING\r\n"), []byte("hello\r\n"))
		codectest.Run(t, codectest.Suite{Factory: sideFactory(f, codec.SideUpstream), Requests: reqs[:3], Responses: rsps,
			Garbage: g, NoIDs: true, NoHeaders: true})
	})
}

// looksLikeCommand reports whether a reply is an array of bulk strings,
// which a codec that does not know its side reads as a command.
func looksLikeCommand(r []byte) bool {
	var a argIter
	req, err := a.init(r, false)
	return err == nil && req
}
