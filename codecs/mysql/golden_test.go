package mysql

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codecs/mysql/internal/golden"
)

// The golden files in testdata were recorded from MariaDB 10.11 (Debian's
// mariadb-server), go-sql-driver/mysql v1.10.1 and the mariadb client by
// internal/gengolden (cd internal/gengolden && go run . -out
// ../../testdata). What each client message must decode to was written in
// the scenario beside the SQL it ran; error codes are what the client
// library reported; connection ids and versions come from the server.

var goldenFiles = []string{"driver.json", "cli.json", "proxied.json"}

func goldenConns(tb testing.TB) []golden.Conn {
	tb.Helper()
	var all []golden.Conn
	for _, name := range goldenFiles {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			tb.Fatal(err)
		}
		var f golden.File
		if err := json.Unmarshal(b, &f); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		all = append(all, f.Conns...)
	}
	if len(all) < 15 {
		tb.Fatalf("%d golden conns", len(all))
	}
	return all
}

func goldenConn(tb testing.TB, name string) golden.Conn {
	for _, c := range goldenConns(tb) {
		if c.Name == name {
			return c
		}
	}
	tb.Fatalf("no golden conn %q", name)
	return golden.Conn{}
}

func newTestFactory(tb testing.TB) *Factory {
	tb.Helper()
	f, err := NewFactory(Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// messages splits stream into messages with c, decoding each before the
// next split as the engine does; fn sees each.
func messages(tb testing.TB, c *Codec, stream []byte, fn func(i int, frame []byte, m *codec.Message)) int {
	tb.Helper()
	i := 0
	for len(stream) > 0 {
		n, err := c.Split(stream)
		if err != nil || n == 0 {
			tb.Fatalf("message %d: split n=%d err=%v of % x", i, n, err, stream[:min(len(stream), 32)])
		}
		frame := stream[:n]
		m := &codec.Message{Frame: frame}
		if err := c.Decode(frame, m); err != nil {
			tb.Fatalf("message %d: decode % x: %v", i, frame[:min(len(frame), 32)], err)
		}
		fn(i, frame, m)
		stream = stream[n:]
		i++
	}
	return i
}

// TestGoldenClients decodes every client stream with a downstream codec:
// each message gives the command, statement kind, user and database its
// scenario says, and TLS and compression turn the codec opaque.
func TestGoldenClients(t *testing.T) {
	f := newTestFactory(t)
	for _, gc := range goldenConns(t) {
		t.Run(gc.Name, func(t *testing.T) {
			c := f.NewCodecFor(codec.SideDownstream)
			opaqueAt := -1
			n := messages(t, c, gc.ClientBytes, func(i int, frame []byte, m *codec.Message) {
				if opaqueAt >= 0 {
					if m.Kind != codec.KindOneway || m.Meta.Len() != 0 {
						t.Errorf("opaque bytes decoded as %v %v", m.Kind, m.Meta.All())
					}
					return
				}
				if c.Opaque() {
					opaqueAt = i
				}
				if i >= len(gc.Requests) {
					if !c.Opaque() {
						t.Fatalf("message %d: beyond the %d expected (%v)", i, len(gc.Requests), m.Meta.All())
					}
					return
				}
				checkRequest(t, i, gc, gc.Requests[i], m)
				if out, err := c.Encode(nil, m, nil); err != nil || !bytes.Equal(out, frame) {
					t.Errorf("message %d: encode changed it (%v)", i, err)
				}
			})
			switch {
			case gc.TLS && opaqueAt != 0:
				t.Errorf("TLS connection: opaque from message %d, want 0 (the SSLRequest)", opaqueAt)
			case gc.Compressed && opaqueAt != 1:
				t.Errorf("compressed connection: opaque from message %d, want 1 (the first command)", opaqueAt)
			case !gc.TLS && !gc.Compressed && (opaqueAt >= 0 || n != len(gc.Requests)):
				t.Errorf("%d messages (opaque at %d), want %d", n, opaqueAt, len(gc.Requests))
			}
		})
	}
}

func checkRequest(t *testing.T, i int, gc golden.Conn, want golden.Request, m *codec.Message) {
	t.Helper()
	wantKind := codec.KindRequest
	switch want.Command {
	case "COM_QUIT", "COM_STMT_CLOSE", CmdLocalInfileData:
		wantKind = codec.KindOneway
	}
	method := want.Command
	if want.Statement != "" {
		method = want.Statement
	}
	got := func(k string) string { return m.Meta.Value(k) }
	if m.Kind != wantKind || got(KeyCommand) != want.Command || got(KeyStatement) != want.Statement ||
		got(codec.KeyMethod) != method || got(KeyDatabase) != want.Database {
		t.Errorf("message %d (%q): %v %v, want %v command %s statement %q database %q",
			i, want.SQL, m.Kind, m.Meta.All(), wantKind, want.Command, want.Statement, want.Database)
	}
	if want.Command != CmdSSLRequest && got(KeyUser) != gc.User {
		t.Errorf("message %d: user %q, want %q", i, got(KeyUser), gc.User)
	}
	if m.ID != 0 || m.Status != codec.StatusOK {
		t.Errorf("message %d: id %d status %v", i, m.ID, m.Status)
	}
}

// TestGoldenServers decodes every server stream with an upstream codec
// (made opaque where the engine would): the first message is the greeting
// with the connection id and version the server reported, and the ERR
// packets carry, in order, the codes the client library reported.
func TestGoldenServers(t *testing.T) {
	f := newTestFactory(t)
	for _, gc := range goldenConns(t) {
		t.Run(gc.Name, func(t *testing.T) {
			c := f.NewCodecFor(codec.SideUpstream)
			var codes []uint16
			messages(t, c, gc.ServerBytes, func(i int, frame []byte, m *codec.Message) {
				if m.Kind != codec.KindResponse || m.ID != 0 || m.Meta.Len() != 0 {
					t.Errorf("message %d: %v id %d meta %v", i, m.Kind, m.ID, m.Meta.All())
				}
				if c.Opaque() {
					return
				}
				if i == 0 {
					checkGreeting(t, gc, frame)
				}
				if code, _, _, isErr := ParseErr(frame); isErr {
					codes = append(codes, code)
					if m.Status == codec.StatusOK || !IsErr(frame) {
						t.Errorf("ERR %d decoded with status %v", code, m.Status)
					}
				} else if m.Status != codec.StatusOK {
					t.Errorf("message %d (% x): status %v", i, frame[:min(len(frame), 16)], m.Status)
				}
				if (gc.TLS && i == 0) || (gc.Compressed && IsOK(frame)) {
					c.SetOpaque()
				}
			})
			if !equalCodes(codes, gc.Errors) {
				t.Errorf("ERR codes %v, the client reported %v", codes, gc.Errors)
			}
		})
	}
}

func checkGreeting(t *testing.T, gc golden.Conn, frame []byte) {
	t.Helper()
	g, err := ParseGreeting(frame)
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if !bytes.HasSuffix([]byte(g.Version), []byte(gc.Version)) || (gc.ConnID != 0 && g.ConnID != gc.ConnID) {
		t.Errorf("greeting: version %q conn id %d, the server says %q %d", g.Version, g.ConnID, gc.Version, gc.ConnID)
	}
	if len(g.Scramble) != 20 || g.Plugin != NativePasswordPlugin || g.Caps&CapProtocol41 == 0 || PacketSeq(frame) != 0 {
		t.Errorf("greeting: %+v", g)
	}
}

func equalCodes(a, b []uint16) bool {
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
