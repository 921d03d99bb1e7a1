package mysql

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// benchDecode splits and decodes frames (one read holding them all) over
// and over with one codec and one message, as a proxy connection does.
func benchDecode(b *testing.B, c *Codec, frames ...[]byte) {
	var buf []byte
	for _, f := range frames {
		buf = append(buf, f...)
	}
	var m codec.Message
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		decodeAll(b, c, &m, buf)
	}
}

func decodeAll(tb testing.TB, c *Codec, m *codec.Message, buf []byte) {
	for rest := buf; len(rest) > 0; {
		n, err := c.Split(rest)
		if err != nil || n == 0 {
			tb.Fatal(n, err)
		}
		m.Reset()
		m.Frame = rest[:n]
		if err := c.Decode(m.Frame, m); err != nil {
			tb.Fatal(err)
		}
		rest = rest[n:]
	}
}

var (
	selectQuery  = cmd(0, comQuery, "SELECT id, name, price FROM items WHERE id = 42")
	commentQuery = cmd(0, comQuery, "/* app=shop,route=orders */ -- trace\n  UPDATE items SET price = price * 1.1 WHERE id IN (1, 2, 3)")
	multiQuery   = cmd(0, comQuery, "SELECT name FROM items WHERE note = 'a; b' AND id > 10 ORDER BY id LIMIT 20; ")
	execute      = cmd(0, 0x17, "\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x01\x03\x00\x2a\x00\x00\x00")
	textRow      = pkt(5, []byte("\x0242\x05apple\x041.50")...)
)

func command(b testing.TB, caps uint32) *Codec {
	return commandCodec(newTestFactory(b), "app", "shop", caps)
}

// BenchmarkDecodeQuery: COM_QUERY SELECT, split and decoded downstream.
func BenchmarkDecodeQuery(b *testing.B) { benchDecode(b, command(b, 0), selectQuery) }

// BenchmarkDecodeQueryComments: a COM_QUERY behind comments.
func BenchmarkDecodeQueryComments(b *testing.B) { benchDecode(b, command(b, 0), commentQuery) }

// BenchmarkDecodeQueryMulti: a COM_QUERY scanned to its end for a second
// statement (CLIENT_MULTI_STATEMENTS).
func BenchmarkDecodeQueryMulti(b *testing.B) {
	benchDecode(b, command(b, CapMultiStatements), multiQuery)
}

// BenchmarkDecodeStmtExecute: COM_STMT_EXECUTE with one parameter.
func BenchmarkDecodeStmtExecute(b *testing.B) { benchDecode(b, command(b, 0), execute) }

// BenchmarkDecodeGoldenSession: every client message of the recorded
// statement_kinds session after its handshake, downstream.
func BenchmarkDecodeGoldenSession(b *testing.B) {
	gc := goldenConn(b, "statement_kinds")
	pkts := packets(gc.ClientBytes)
	hr, err := ParseHandshakeResponse(pkts[0])
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, command(b, hr.Caps), pkts[1:]...)
}

// BenchmarkDecodeRow: a text result-set row, upstream.
func BenchmarkDecodeRow(b *testing.B) {
	c := newTestFactory(b).NewCodecFor(codec.SideUpstream)
	c.phase = phaseCommand
	benchDecode(b, c, textRow)
}

// TestDecodeAllocs: splitting and decoding commands and server packets
// allocates nothing once the message has its capacity (COM_INIT_DB, USE
// and COM_CHANGE_USER copy the new database or user; the handshake
// response copies the user and database once per connection).
func TestDecodeAllocs(t *testing.T) {
	up := newTestFactory(t).NewCodecFor(codec.SideUpstream)
	up.phase = phaseCommand
	for _, tc := range []struct {
		c      *Codec
		frames [][]byte
	}{
		{command(t, 0), [][]byte{selectQuery, commentQuery, execute, cmd(0, 0x0e, ""), cmd(0, comQuit, "")}},
		{command(t, CapMultiStatements), [][]byte{multiQuery, cmd(0, comStmtPrepare, "INSERT INTO t VALUES (?)")}},
		{command(t, CapQueryAttributes), [][]byte{cmd(0, comQuery, "\x00\x01SELECT 1")}},
		{up, [][]byte{textRow, AppendErr(nil, 1, 1146, "42S02", "no such table"), pkt(1, 0, 0, 0, 2, 0, 0, 0)}},
	} {
		var m codec.Message
		var buf []byte
		for _, f := range tc.frames {
			buf = append(buf, f...)
		}
		decodeAll(t, tc.c, &m, buf)
		if a := testing.AllocsPerRun(100, func() { decodeAll(t, tc.c, &m, buf) }); a != 0 {
			t.Errorf("% x...: %v allocations", tc.frames[0][:8], a)
		}
	}
}
