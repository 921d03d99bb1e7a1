package redis

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

func cmdMsg(tb testing.TB, args ...string) *codec.Message {
	tb.Helper()
	return decode(tb, newTestFactory(tb).NewCodecFor(codec.SideDownstream), AppendCommand(nil, bytesOf(args)...))
}

func TestErrorReply(t *testing.T) {
	c := newTestFactory(t).NewCodec()
	req := cmdMsg(t, "GET", "k")
	for _, tc := range []struct {
		t    codec.ErrorType
		msg  string
		want string
	}{
		{codec.ErrRouteNotFound, "", "-ERR no route for command GET\r\n"},
		{codec.ErrRouteNotFound, "x", "-ERR no route for command GET: x\r\n"},
		{codec.ErrClusterNotFound, "c1", "-ERR no cluster for command GET: c1\r\n"},
		{codec.ErrNoHealthyUpstream, "cl", "-ERR no healthy upstream: cl\r\n"},
		{codec.ErrUnavailable, "reset", "-ERR upstream unavailable: reset\r\n"},
		{codec.ErrOverloaded, "max_requests", "-ERR overloaded: max_requests\r\n"},
		{codec.ErrTimeout, "15s", "-ERR timeout: 15s\r\n"},
		{codec.ErrBadResponse, "junk", "-ERR bad response from upstream: junk\r\n"},
		{codec.ErrInternal, "panic", "-ERR internal error: panic\r\n"},
		{codec.ErrUnauthorized, "rbac: denied", "-NOPERM rbac: denied\r\n"},
		{codec.ErrUnknownMethod, "", "-ERR unknown command 'GET'\r\n"},
		{codec.ErrBadRequest, Name + ": malformed frame: invalid bulk length", "-ERR Protocol error: invalid bulk length\r\n"},
		{codec.ErrTimeout, "two\r\nlines\nhere", "-ERR timeout: two  lines here\r\n"},
	} {
		got := c.ErrorReply(nil, req, &codec.Error{Type: tc.t, Message: tc.msg})
		if string(got) != tc.want {
			t.Errorf("%v %q: %q, want %q", tc.t, tc.msg, got, tc.want)
		}
	}
	bad := decode(t, newTestFactory(t).NewCodec().(*Codec), []byte("*2\r\n$5\r\nG\r\nET\r\n$1\r\nk\r\n"))
	got := c.ErrorReply([]byte("+x\r\n"), bad, &codec.Error{Type: codec.ErrRouteNotFound})
	if string(got) != "+x\r\n-ERR no route for command G  ET\r\n" {
		t.Errorf("a method with CR LF: %q", got)
	}
	oneway := decode(t, newTestFactory(t).NewCodec().(*Codec), []byte("*0\r\n"))
	if got := c.ErrorReply([]byte("x"), oneway, &codec.Error{Type: codec.ErrTimeout}); string(got) != "x" {
		t.Errorf("a request Redis does not answer got %q", got)
	}
}

func TestRejectReply(t *testing.T) {
	c := newTestFactory(t).NewCodec().(*Codec)
	_, err := c.Split([]byte("*1\r\n$x\r\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	got := c.RejectReply(nil, []byte("*1\r\n$x\r\n"), &codec.Error{Type: codec.ErrBadRequest, Message: err.Error()})
	if string(got) != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Errorf("%q", got)
	}
	got = c.RejectReply(nil, nil, &codec.Error{Type: codec.ErrOverloaded, Message: "metaproxy: proxy buffers full"})
	if string(got) != "-ERR overloaded: metaproxy: proxy buffers full\r\n" {
		t.Errorf("%q", got)
	}
}

func TestEncode(t *testing.T) {
	c := newTestFactory(t).NewCodec()
	m := cmdMsg(t, "SET", "k", "v")
	out, err := c.Encode([]byte("x"), m, &codec.Edit{SetID: true, ID: 99})
	if err != nil || !bytes.Equal(out, append([]byte("x"), m.Frame...)) {
		t.Errorf("SetID must be ignored: %q %v", out, err)
	}
	_, err = c.Encode(nil, m, &codec.Edit{Headers: []codec.KV{{Key: "k", Value: "v"}}})
	if !errors.Is(err, codec.ErrUnsupported) {
		t.Errorf("headers: %v", err)
	}
	if c.(codec.HeaderCarrier).CarriesHeaders(m) {
		t.Errorf("CarriesHeaders")
	}
}

func TestPingReply(t *testing.T) {
	for _, tc := range []struct {
		req  *codec.Message
		want string
	}{
		{cmdMsg(t, "PING"), "+PONG\r\n"},
		{cmdMsg(t, "ping", "hi\r\nthere"), "$9\r\nhi\r\nthere\r\n"},
		{cmdMsg(t, "PING", "a", "b"), "-ERR wrong number of arguments for 'ping' command\r\n"},
		{decode(t, newTestFactory(t).NewCodec().(*Codec), []byte("PING\r\n")), "+PONG\r\n"},
		{cmdMsg(t, "ECHO", "x"), ""},
		{&codec.Message{Kind: codec.KindResponse, Frame: []byte("+PONG\r\n")}, ""},
	} {
		if got := PingReply(nil, tc.req); string(got) != tc.want {
			t.Errorf("%q: %q, want %q", tc.req.Frame, got, tc.want)
		}
	}
}

func TestSelectDB(t *testing.T) {
	for _, tc := range []struct {
		args []string
		db   int
		ok   bool
	}{
		{[]string{"SELECT", "0"}, 0, true},
		{[]string{"select", "15"}, 15, true},
		{[]string{"SELECT", "-1"}, 0, false},
		{[]string{"SELECT", "x"}, 0, false},
		{[]string{"SELECT", "99999999999"}, 0, false},
		{[]string{"SELECT"}, 0, false},
		{[]string{"GET", "1"}, 0, false},
	} {
		if db, ok := SelectDB(cmdMsg(t, tc.args...)); db != tc.db || ok != tc.ok {
			t.Errorf("%q: %d %v", tc.args, db, ok)
		}
	}
}

func TestAppendError(t *testing.T) {
	if got := AppendError([]byte("+OK\r\n"), "CROSSSLOT Keys in request\ndon't hash"); string(got) != "+OK\r\n-CROSSSLOT Keys in request don't hash\r\n" {
		t.Errorf("%q", got)
	}
}

// TestHashTag follows the Redis Cluster specification's examples.
func TestHashTag(t *testing.T) {
	for in, want := range map[string]string{
		"{user1000}.following": "user1000",
		"foo{}{bar}":           "foo{}{bar}",
		"foo{{bar}}zap":        "{bar",
		"foo{bar}{zap}":        "bar",
		"{}":                   "{}",
		"no tag":               "no tag",
		"{a":                   "{a",
		"":                     "",
	} {
		if got := HashTag([]byte(in)); string(got) != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	// CRC-16/XMODEM's check value, and the slots CLUSTER KEYSLOT of
	// redis-server 7.0.15 gives.
	if got := crc16([]byte("123456789")); got != 0x31c3 {
		t.Errorf("crc16 check value %#x", got)
	}
	for key, slot := range map[string]uint16{"foo": 12182, "bar": 5061, "hello": 866, "{foo}.x": 12182, "": 0} {
		if got := Slot([]byte(key)); got != slot {
			t.Errorf("slot of %q: %d, want %d", key, got, slot)
		}
	}
	if s := Slot([]byte(strings.Repeat("z", 1000))); s >= Slots {
		t.Errorf("slot %d", s)
	}
}
