package mysql

import (
	"bytes"
	"errors"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// commandCodec returns a downstream codec past the handshake of user (with
// db and caps), as after a login.
func commandCodec(f *Factory, user, db string, caps uint32) *Codec {
	c := f.NewCodecFor(codec.SideDownstream)
	c.phase, c.user, c.db, c.caps = phaseCommand, user, db, caps|CapProtocol41
	return c
}

// pkt builds one packet with seq and payload.
func pkt(seq byte, payload ...byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

func cmd(seq byte, command byte, arg string) []byte {
	return pkt(seq, append([]byte{command}, arg...)...)
}

func mustDecode(t *testing.T, c *Codec, frame []byte) *codec.Message {
	t.Helper()
	if n, err := c.Split(frame); n != len(frame) || err != nil {
		t.Fatalf("split: %d %v", n, err)
	}
	m := &codec.Message{Frame: frame}
	if err := c.Decode(frame, m); err != nil {
		t.Fatalf("decode % x: %v", frame[:min(len(frame), 32)], err)
	}
	return m
}

func TestSplitContinuation(t *testing.T) {
	f := newTestFactory(t)
	long := append([]byte{0xFF, 0xFF, 0xFF, 0, comQuery}, "SELECT "...)
	long = append(long, bytes.Repeat([]byte{'1'}, maxPayload-8)...)
	long = append(long, pkt(1, '1')...) // 16 MiB of payload: DefaultMaxFrame exactly
	c := commandCodec(f, "u", "", 0)
	for _, cut := range []int{0, 3, 4, 100, maxPayload + 4, maxPayload + 7, len(long) - 1} {
		if n, err := c.Split(long[:cut]); n != 0 || err != nil {
			t.Fatalf("cut %d: %d %v", cut, n, err)
		}
	}
	m := mustDecode(t, c, long)
	if m.Meta.Value(KeyStatement) != StmtSelect || lastSeq(long) != 1 {
		t.Errorf("%v, last seq %d", m.Meta.All(), lastSeq(long))
	}
	if r := c.ErrorReply(nil, m, codec.Errorf(codec.ErrInternal, "x")); PacketSeq(r) != 2 {
		t.Errorf("error reply seq %d, want 2 (after the last packet)", PacketSeq(r))
	}
	// Exactly 0xFFFFFF bytes: an empty packet ends the message.
	exact := append(long[:4+maxPayload:4+maxPayload], pkt(1)...)
	if n, err := c.Split(append(exact, cmd(0, 0x0e, "")...)); n != len(exact) || err != nil {
		t.Errorf("exact: %d %v", n, err)
	}
	small, _ := NewFactory(Options{MaxFrame: 1024})
	sc := small.NewCodecFor(codec.SideUpstream)
	if _, err := sc.Split([]byte{0xFD, 0x03, 0, 0}); err == nil {
		t.Error("a 1021-byte payload fits in 1024 bytes with its header?")
	}
	if n, err := sc.Split(pkt(0, make([]byte, 1020)...)); n != 1024 || err != nil {
		t.Errorf("1024-byte message: %d %v", n, err)
	}
}

func TestDownstreamPhases(t *testing.T) {
	f := newTestFactory(t)
	c := f.NewCodecFor(codec.SideDownstream)
	if _, err := c.Split(nil); err != nil {
		t.Fatal(err)
	}
	hr := AppendHandshakeResponse(nil, 1, HandshakeResponse{Caps: GreetingCaps, User: "bob", Auth: make([]byte, 20), Plugin: NativePasswordPlugin})
	m := mustDecode(t, c, hr)
	if m.Kind != codec.KindRequest || m.Meta.Value(KeyUser) != "bob" || m.Meta.Value(codec.KeyMethod) != CmdHandshakeResponse {
		t.Fatalf("%v %v", m.Kind, m.Meta.All())
	}
	if _, ok := m.Meta.Get(KeyDatabase); ok {
		t.Error("database without one")
	}
	if m := mustDecode(t, c, pkt(3, make([]byte, 20)...)); m.Meta.Value(KeyCommand) != CmdAuthSwitchResponse || m.Kind != codec.KindRequest {
		t.Errorf("auth data: %v", m.Meta.All())
	}
	for _, tc := range []struct {
		frame         []byte
		kind          codec.Kind
		command, db   string
		user, method  string
		wantStatement string
	}{
		{cmd(0, comInitDB, "shop"), codec.KindRequest, "COM_INIT_DB", "shop", "bob", "COM_INIT_DB", ""},
		{cmd(0, comQuery, "USE `other db`"), codec.KindRequest, "COM_QUERY", "other db", "bob", StmtUse, StmtUse},
		{cmd(0, comQuery, "USE broken db"), codec.KindRequest, "COM_QUERY", "other db", "bob", StmtUse, StmtUse},
		{cmd(0, comStmtPrepare, "DELETE FROM t WHERE a = ?"), codec.KindRequest, "COM_STMT_PREPARE", "other db", "bob", StmtDelete, StmtDelete},
		{cmd(0, 0x17, "\x01\x00\x00\x00\x00\x01\x00\x00\x00"), codec.KindRequest, "COM_STMT_EXECUTE", "other db", "bob", "COM_STMT_EXECUTE", ""},
		{cmd(0, comStmtSendLongData, "\x01\x00\x00\x00\x00\x00data"), codec.KindOneway, "COM_STMT_SEND_LONG_DATA", "other db", "bob", "COM_STMT_SEND_LONG_DATA", ""},
		{cmd(0, comStmtClose, "\x01\x00\x00\x00"), codec.KindOneway, "COM_STMT_CLOSE", "other db", "bob", "COM_STMT_CLOSE", ""},
		{cmd(0, comChangeUser, "amy\x00\x14"+string(make([]byte, 20))+"db2\x00\x21\x00mysql_native_password\x00"), codec.KindRequest, "COM_CHANGE_USER", "db2", "amy", "COM_CHANGE_USER", ""},
		{pkt(3, make([]byte, 20)...), codec.KindRequest, CmdAuthSwitchResponse, "db2", "amy", CmdAuthSwitchResponse, ""},
		{cmd(0, comQuery, "LOAD DATA LOCAL INFILE 'x' INTO TABLE t"), codec.KindRequest, "COM_QUERY", "db2", "amy", StmtOther, StmtOther},
		{pkt(2, []byte("1,2\n")...), codec.KindOneway, CmdLocalInfileData, "db2", "amy", CmdLocalInfileData, ""},
		{pkt(3), codec.KindOneway, CmdLocalInfileData, "db2", "amy", CmdLocalInfileData, ""},
		{cmd(0, 0x0e, ""), codec.KindRequest, "COM_PING", "db2", "amy", "COM_PING", ""},
		{cmd(0, 0x1f, ""), codec.KindRequest, "COM_RESET_CONNECTION", "db2", "amy", "COM_RESET_CONNECTION", ""},
		{cmd(0, comQuit, ""), codec.KindOneway, "COM_QUIT", "db2", "amy", "COM_QUIT", ""},
	} {
		m := mustDecode(t, c, tc.frame)
		v := m.Meta.Value
		if m.Kind != tc.kind || v(KeyCommand) != tc.command || v(KeyDatabase) != tc.db || v(KeyUser) != tc.user ||
			v(codec.KeyMethod) != tc.method || v(KeyStatement) != tc.wantStatement {
			t.Errorf("% x: %v %v", tc.frame[:min(len(tc.frame), 12)], m.Kind, m.Meta.All())
		}
	}
	for _, bad := range [][]byte{pkt(0), cmd(0, 0x40, ""), cmd(0, comChangeUser, "no-nul")} {
		if err := c.Decode(bad, &codec.Message{Frame: bad}); err == nil {
			t.Errorf("% x decoded", bad)
		}
	}
}

func TestHandshakeErrors(t *testing.T) {
	f := newTestFactory(t)
	old := AppendHandshakeResponse(nil, 1, HandshakeResponse{Caps: CapSecureConnection, User: "u"})
	for _, bad := range [][]byte{old, pkt(1, make([]byte, 32)...), pkt(1, make([]byte, 10)...)} {
		if err := f.NewCodecFor(codec.SideDownstream).Decode(bad, &codec.Message{Frame: bad}); err == nil {
			t.Errorf("% x accepted as a handshake response", bad)
		}
	}
	// Compression: opaque from the first command on.
	c := f.NewCodecFor(codec.SideDownstream)
	mustDecode(t, c, AppendHandshakeResponse(nil, 1, HandshakeResponse{Caps: GreetingCaps | CapCompress, User: "u"}))
	if mustDecode(t, c, pkt(3, 1, 2, 3)); c.Opaque() {
		t.Fatal("opaque during authentication")
	}
	if m := mustDecode(t, c, []byte{5, 0, 0, 0, 0, 0, 0, 1, 0}); !c.Opaque() || m.Kind != codec.KindOneway || m.Meta.Len() != 0 {
		t.Fatalf("compressed command: opaque %v %v", c.Opaque(), m.Meta.All())
	}
}

func TestOpaque(t *testing.T) {
	f := newTestFactory(t)
	c := f.NewCodecFor(codec.SideDownstream)
	ssl := pkt(1, AppendHandshakeResponse(nil, 1, HandshakeResponse{Caps: GreetingCaps | CapSSL})[4:36]...)
	m := mustDecode(t, c, ssl)
	if !c.Opaque() || m.Meta.Value(KeyCommand) != CmdSSLRequest || m.Kind != codec.KindRequest {
		t.Fatalf("SSLRequest: opaque %v %v", c.Opaque(), m.Meta.All())
	}
	hello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}
	if n, err := c.Split(hello); n != len(hello) || err != nil {
		t.Errorf("opaque split %d %v", n, err)
	}
	m = mustDecode(t, c, hello)
	if m.Kind != codec.KindOneway || len(c.ErrorReply(nil, m, codec.Errorf(codec.ErrInternal, "x"))) != 0 || len(c.RejectReply(nil, hello, nil)) != 0 {
		t.Error("opaque bytes answered")
	}
	up := f.NewCodecFor(codec.SideUpstream)
	up.SetOpaque()
	if n, err := up.Split(hello); n != len(hello) || err != nil || !up.Opaque() {
		t.Errorf("upstream opaque split %d %v", n, err)
	}
}

func TestUpstreamGreetingPhase(t *testing.T) {
	f := newTestFactory(t)
	for _, bad := range [][]byte{pkt(0, 0x00, 0, 0, 2, 0, 0, 0), pkt(0, 10, 'v'), pkt(0)} {
		if err := f.NewCodecFor(codec.SideUpstream).Decode(bad, &codec.Message{Frame: bad}); err == nil {
			t.Errorf("% x accepted as a greeting", bad)
		}
	}
	refused := AppendErr(nil, 0, erConCount, "08004", "Too many connections")
	c := f.NewCodecFor(codec.SideUpstream)
	if m := mustDecode(t, c, refused); m.Status != codec.StatusServerFailure || m.Kind != codec.KindResponse {
		t.Errorf("refusal: %v %v", m.Kind, m.Status)
	}
	mustDecode(t, c, AppendGreeting(nil, 1, [20]byte{}, "v"))
	if m := mustDecode(t, c, pkt(1, 0x00, 0, 0, 2, 0, 0, 0)); m.Status != codec.StatusOK {
		t.Error("OK not ok")
	}
	if m := mustDecode(t, c, AppendErr(nil, 1, 1146, "42S02", "no table")); m.Status != codec.StatusError {
		t.Errorf("ER_NO_SUCH_TABLE: %v", m.Status)
	}
}

func TestEncodeRefusesEdits(t *testing.T) {
	c := commandCodec(newTestFactory(t), "u", "", 0)
	m := mustDecode(t, c, cmd(0, comQuery, "SELECT 1"))
	for _, e := range []*codec.Edit{{SetID: true, ID: 1}, {Headers: []codec.KV{{Key: "k", Value: "v"}}}} {
		if _, err := c.Encode(nil, m, e); !errors.Is(err, codec.ErrUnsupported) {
			t.Errorf("%+v: %v", e, err)
		}
	}
	if out, err := c.Encode([]byte("x"), m, &codec.Edit{}); err != nil || !bytes.Equal(out[1:], m.Frame) {
		t.Errorf("empty edit: %v", err)
	}
	if c.CarriesHeaders(m) || len(c.HeartbeatReply(nil, m)) != 0 {
		t.Error("headers or heartbeats")
	}
}

func TestErrorReply(t *testing.T) {
	f := newTestFactory(t)
	hr := AppendHandshakeResponse(nil, 1, HandshakeResponse{Caps: GreetingCaps, User: "u"})
	for _, tc := range []struct {
		frame []byte
		et    codec.ErrorType
		code  uint16
		state string
	}{
		{hr, codec.ErrUnauthorized, 1045, "28000"},
		{hr, codec.ErrRouteNotFound, 1045, "28000"},
		{hr, codec.ErrNoHealthyUpstream, 1053, "08S01"},
		{cmd(0, comInitDB, "x"), codec.ErrUnauthorized, 1044, "42000"},
		{cmd(0, comQuery, "DELETE FROM t"), codec.ErrUnauthorized, 1142, "42000"},
		{cmd(0, comQuery, "SELECT 1"), codec.ErrRouteNotFound, 1105, "HY000"},
		{cmd(0, comQuery, "SELECT 1"), codec.ErrClusterNotFound, 1105, "HY000"},
		{cmd(0, comQuery, "SELECT 1"), codec.ErrOverloaded, 1040, "08004"},
		{cmd(0, comQuery, "SELECT 1"), codec.ErrUnavailable, 1053, "08S01"},
		{cmd(0, comQuery, "SELECT 1"), codec.ErrTimeout, 1969, "70100"},
		{cmd(0, comQuery, "SELECT 1"), codec.ErrUnknownMethod, 1047, "08S01"},
		{cmd(0, comQuery, "SELECT 1"), codec.ErrBadRequest, 1835, "HY000"},
		{cmd(0, comQuery, "SELECT 1"), codec.ErrInternal, 1105, "HY000"},
		{cmd(0, comQuery, "SELECT 1"), codec.ErrBadResponse, 1105, "HY000"},
	} {
		c := f.NewCodecFor(codec.SideDownstream)
		if tc.frame[3] == 0 {
			c = commandCodec(f, "u", "", 0)
		}
		m := mustDecode(t, c, tc.frame)
		out := c.ErrorReply([]byte("x"), m, codec.Errorf(tc.et, "why"))[1:]
		code, state, msg, ok := ParseErr(out)
		if !ok || code != tc.code || state != tc.state || msg != "metaproxy: "+tc.et.String()+": why" || PacketSeq(out) != tc.frame[3]+1 {
			t.Errorf("%v on %s: %d %q %q seq %d", tc.et, m.Meta.Value(KeyCommand), code, state, msg, PacketSeq(out))
		}
		if n, err := splitPackets(out, DefaultMaxFrame); n != len(out) || err != nil {
			t.Errorf("reply does not frame: %d %v", n, err)
		}
	}
	c := commandCodec(f, "u", "", 0)
	if out := c.ErrorReply(nil, mustDecode(t, c, cmd(0, comQuit, "")), codec.Errorf(codec.ErrInternal, "x")); len(out) != 0 {
		t.Error("answered COM_QUIT")
	}
	if out := c.RejectReply(nil, []byte{0xFF, 0xFF, 0xFF, 4}, nil); PacketSeq(out) != 5 || !IsErr(out) {
		t.Errorf("reject % x", out)
	} else if code, _, _, _ := ParseErr(out); code != erNetPacketTooLarge {
		t.Errorf("reject code %d", code)
	}
	if out := f.NewCodecFor(codec.SideUpstream).RejectReply(nil, []byte{0xFF, 0xFF, 0xFF, 4}, nil); len(out) != 0 {
		t.Error("upstream rejects")
	}
	long := AppendErr(nil, 1, 1, "HY", string(make([]byte, maxPayload)))
	if n, err := splitPackets(long, 2*DefaultMaxFrame); n != len(long) || len(long) != 4+maxPayload-1 || err != nil {
		t.Errorf("long message: %d of %d %v", n, len(long), err)
	}
	if _, state, _, _ := ParseErr(long); state != "HY000" {
		t.Errorf("state %q", state)
	}
}

func TestQueryAttributes(t *testing.T) {
	c := commandCodec(newTestFactory(t), "u", "", CapQueryAttributes)
	for _, tc := range []struct{ attrs, sql, kind string }{
		{"\x00\x01", "SELECT 1", StmtSelect},
		{"\x01\x01\x00\x01\xfe\x00\x01n\x05value", "DELETE FROM t", StmtDelete},
		{"\x02\x01\x02\x01\x03\x00\x01a\x08\x00\x01b\x07\x00\x00\x00", "UPDATE t SET a=1", StmtUpdate}, // a LONG, b NULL
		{"\x01\x01\x00\x01\x0c\x00\x01d\x04\x01\x02\x03\x04", "INSERT INTO t VALUES (1)", StmtInsert},
		{"\x01\x01\x00\x00", "DELETE FROM t", StmtOther},     // no types: cannot walk
		{"\x01\x01\x00\x01\x03\x00\x01n\x01", "", StmtOther}, // short value
		{"\xff", "", StmtOther},
	} {
		m := mustDecode(t, c, cmd(0, comQuery, tc.attrs+tc.sql))
		if got := m.Meta.Value(KeyStatement); got != tc.kind {
			t.Errorf("%q + %q: %s, want %s", tc.attrs, tc.sql, got, tc.kind)
		}
	}
}

func TestRefuseConnection(t *testing.T) {
	f := newTestFactory(t)
	c := f.NewCodecFor(codec.SideDownstream)
	for et, want := range map[codec.ErrorType]uint16{codec.ErrRouteNotFound: 1130, codec.ErrUnauthorized: 1130,
		codec.ErrNoHealthyUpstream: 1053, codec.ErrUnavailable: 1053, codec.ErrOverloaded: 1040, codec.ErrInternal: 1105} {
		out := c.RefuseConnection([]byte("x"), codec.Errorf(et, "metaproxy: no way"))[1:]
		code, state, msg, ok := ParseErr(out)
		if !ok || code != want || state != "" || msg != "metaproxy: "+et.String()+": no way" || PacketSeq(out) != 0 {
			t.Errorf("%v: %d %q %q seq %d", et, code, state, msg, PacketSeq(out))
		}
		// In place of the greeting: a fresh upstream codec reads it as the
		// server's refusal.
		if m := mustDecode(t, f.NewCodecFor(codec.SideUpstream), out); m.Kind != codec.KindResponse || m.Status == codec.StatusOK {
			t.Errorf("%v: refusal decoded as %v %v", et, m.Kind, m.Status)
		}
	}
	if out := AppendErr(nil, 0, 1040, "", "Too many connections"); !bytes.Equal(out, append([]byte{23, 0, 0, 0, 0xFF, 0x10, 0x04}, "Too many connections"...)) {
		t.Errorf("pre-handshake ERR % x", out)
	}
}
