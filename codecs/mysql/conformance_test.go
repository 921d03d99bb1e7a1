package mysql

import (
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
)

// goldenFrames returns copies of the recorded client commands (sequence
// id 0, leaving out those that change the connection's state: COM_INIT_DB,
// COM_CHANGE_USER, USE), the server messages of the command phase and the
// greetings, as the codecs split them.
func goldenFrames(tb testing.TB) (commands, replies, greetings [][]byte) {
	f := newTestFactory(tb)
	for _, gc := range goldenConns(tb) {
		if gc.TLS || gc.Compressed {
			continue
		}
		down := f.NewCodecFor(codec.SideDownstream)
		messages(tb, down, gc.ClientBytes, func(_ int, frame []byte, m *codec.Message) {
			cmd := m.Meta.Value(KeyCommand)
			if frame[3] == 0 && strings.HasPrefix(cmd, "COM_") && cmd != "COM_INIT_DB" && cmd != "COM_CHANGE_USER" &&
				m.Meta.Value(KeyStatement) != StmtUse {
				commands = append(commands, append([]byte(nil), frame...))
			}
		})
		up := f.NewCodecFor(codec.SideUpstream)
		messages(tb, up, gc.ServerBytes, func(i int, frame []byte, _ *codec.Message) {
			if i == 0 {
				greetings = append(greetings, append([]byte(nil), frame...))
			} else {
				replies = append(replies, append([]byte(nil), frame...))
			}
		})
	}
	if len(commands) < 50 || len(replies) < 100 {
		tb.Fatalf("%d commands, %d replies", len(commands), len(replies))
	}
	return commands, replies, greetings
}

// afterHandshake makes codecs of side past the connection phase, as the
// kit needs: it decodes every frame with a fresh codec.
func afterHandshake(f *Factory, side codec.Side) codec.Factory {
	return codec.FactoryFunc(func() codec.Codec {
		if side == codec.SideUpstream {
			c := f.NewCodecFor(side)
			c.phase = phaseCommand
			return c
		}
		return &kitCodec{Codec: commandCodec(f, "app", "shop", GreetingCaps), up: afterHandshake(f, codec.SideUpstream).NewCodec()}
	})
}

// kitCodec is a downstream codec for the kit, which decodes the error
// replies of a suite with the suite's own factory: an ERR is a server
// packet, so it is handed to an upstream codec (no client command starts
// with 0xFF).
type kitCodec struct {
	*Codec
	up codec.Codec
}

func (k *kitCodec) Decode(frame []byte, msg *codec.Message) error {
	if IsErr(frame) {
		return k.up.Decode(frame, msg)
	}
	return k.Codec.Decode(frame, msg)
}

// TestConformance runs the conformance kit on codecs past the handshake,
// with MySQL's lack of ids and headers (NoIDs: the id rewrite is skipped;
// NoHeaders: header edits must fail with ErrUnsupported); HeartbeatReply
// never applies.
//
//   - Downstream, on the recorded commands. Commands that change the
//     connection's state (COM_INIT_DB, USE, COM_CHANGE_USER) and packets
//     continuing an exchange (sequence id ≠ 0) are left out: the kit
//     compares a frame decoded on a fresh codec with the same frame after
//     others. TestGoldenClients covers them in order.
//   - Upstream, on every recorded server message. The kit wants requests:
//     a few commands read as server packets stand in.
//   - Upstream from the greeting: fresh codecs accept only a greeting (or
//     an ERR) first.
//
// Handshake responses cannot run the kit: a second one on the same
// connection is authentication data. TestGoldenClients and
// TestHandshakeResponseGolden cover them.
func TestConformance(t *testing.T) {
	f, err := NewFactory(Options{MaxFrame: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	commands, replies, greetings := goldenFrames(t)
	oversize := []byte{0xFF, 0xFF, 0xFF, 0}
	t.Run("Downstream", func(t *testing.T) {
		codectest.Run(t, codectest.Suite{Factory: afterHandshake(f, codec.SideDownstream), Requests: commands,
			Garbage: [][]byte{pkt(0), cmd(0, 0x40, ""), cmd(0, 0xFF, "x"), oversize,
				[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}},
			NoIDs: true, NoHeaders: true})
	})
	t.Run("Upstream", func(t *testing.T) {
		codectest.Run(t, codectest.Suite{Factory: afterHandshake(f, codec.SideUpstream), Requests: commands[:3], Responses: replies,
			Garbage: [][]byte{oversize}, NoIDs: true, NoHeaders: true})
	})
	t.Run("Greeting", func(t *testing.T) {
		fresh := codec.FactoryFunc(func() codec.Codec { return f.NewCodecFor(codec.SideUpstream) })
		garbage := [][]byte{pkt(0, 0, 0, 0, 2, 0, 0, 0), commands[0], pkt(0, 9, 'x', 0), oversize}
		codectest.Run(t, codectest.Suite{Factory: fresh, Requests: greetings[:1], Responses: greetings,
			Garbage: garbage, NoIDs: true, NoHeaders: true})
	})
}
