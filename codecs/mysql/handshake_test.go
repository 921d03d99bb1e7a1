package mysql

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/metaproxy/metaproxy/codecs/mysql/internal/golden"
)

// packets returns the packets of a golden stream.
func packets(b []byte) [][]byte { return golden.Packets(b) }

// TestHandshakeResponseGolden: every recorded handshake response (from
// go-sql-driver, the mariadb client and the proxy's own re-encoding)
// parses to the login its client was given, re-encodes to the same bytes,
// and carries mysql_native_password's answer to the greeting's scramble.
func TestHandshakeResponseGolden(t *testing.T) {
	seen := 0
	for _, gc := range goldenConns(t) {
		if gc.TLS {
			continue
		}
		first := packets(gc.ClientBytes)[0]
		g, err := ParseGreeting(packets(gc.ServerBytes)[0])
		if err != nil {
			t.Fatal(err)
		}
		hr, err := ParseHandshakeResponse(first)
		if err != nil {
			t.Fatalf("%s: %v", gc.Name, err)
		}
		if hr.User != gc.User || hr.Database != gc.Database || hr.Caps&CapProtocol41 == 0 {
			t.Errorf("%s: %+v", gc.Name, hr)
		}
		if (gc.Database != "") != (hr.Caps&CapConnectWithDB != 0) {
			t.Errorf("%s: CLIENT_CONNECT_WITH_DB %v with database %q", gc.Name, hr.Caps&CapConnectWithDB != 0, gc.Database)
		}
		if out := AppendHandshakeResponse(nil, PacketSeq(first), hr); !bytes.Equal(out, first) {
			t.Errorf("%s: re-encoded\n% x\nwant\n% x", gc.Name, out, first)
		}
		if hr.Plugin == NativePasswordPlugin && gc.User != "edu" {
			if want := NativePassword(g.Scramble, []byte(gc.Password)); !bytes.Equal(hr.Auth, want) {
				t.Errorf("%s: auth % x, NativePassword gives % x", gc.Name, hr.Auth, want)
			}
		}
		seen++
	}
	if seen < 15 {
		t.Fatalf("%d handshake responses", seen)
	}
}

// TestErrGolden: every ERR the server sent is what AppendErr writes for
// its fields.
func TestErrGolden(t *testing.T) {
	n := 0
	for _, gc := range goldenConns(t) {
		if gc.TLS || gc.Compressed {
			continue
		}
		for _, p := range packets(gc.ServerBytes) {
			code, state, msg, ok := ParseErr(p)
			if !ok {
				continue
			}
			n++
			if out := AppendErr(nil, PacketSeq(p), code, state, msg); !bytes.Equal(out, p) {
				t.Errorf("%s: AppendErr(%d, %q, %q)\n% x\nserver\n% x", gc.Name, code, state, msg, out, p)
			}
		}
	}
	if n < 8 {
		t.Fatalf("%d ERR packets", n)
	}
}

// TestAuthSwitchGolden: MariaDB's AuthSwitchRequest to client_ed25519 is
// what AppendAuthSwitchRequest writes; the client's answer follows it.
func TestAuthSwitchGolden(t *testing.T) {
	gc := goldenConn(t, "ed25519_auth_switch")
	sw := packets(gc.ServerBytes)[1]
	if !IsAuthSwitch(sw) || IsOK(sw) || IsErr(sw) {
		t.Fatalf("% x is not an AuthSwitchRequest", sw)
	}
	p := payload(sw)
	plugin, next, _ := cstring(p, 1)
	if string(plugin) != "client_ed25519" {
		t.Fatalf("plugin %q", plugin)
	}
	if out := AppendAuthSwitchRequest(nil, PacketSeq(sw), string(plugin), p[next:]); !bytes.Equal(out, sw) {
		t.Errorf("AppendAuthSwitchRequest\n% x\nserver\n% x", out, sw)
	}
	answer := packets(gc.ClientBytes)[1]
	if PacketSeq(answer) != PacketSeq(sw)+1 || len(payload(answer)) != 64 {
		t.Errorf("answer % x", answer)
	}
	if ok := packets(gc.ServerBytes)[2]; !IsOK(ok) || IsAuthSwitch(ok) || PacketSeq(ok) != PacketSeq(answer)+1 {
		t.Errorf("after the switch: % x", ok)
	}
}

// TestProxiedGolden checks the recorded connection phase of the proxy
// gengolden built on the helpers: its greeting is AppendGreeting's, the
// client answered AppendAuthSwitchRequest's server scramble as
// mysql_native_password does, the server got that answer in
// AppendHandshakeResponse, and its reply reached the client renumbered.
func TestProxiedGolden(t *testing.T) {
	for _, name := range []string{"proxied_app", "proxied_reader_no_db", "proxied_wrong_password"} {
		down, up := goldenConn(t, name+"/client"), goldenConn(t, name+"/server")
		toClient, fromClient := packets(down.ServerBytes), packets(down.ClientBytes)
		toServer, fromServer := packets(up.ClientBytes), packets(up.ServerBytes)
		mine, err := ParseGreeting(toClient[0])
		if err != nil {
			t.Fatal(err)
		}
		var scramble [20]byte
		copy(scramble[:], mine.Scramble)
		if want := AppendGreeting(nil, mine.ConnID, scramble, mine.Version); !bytes.Equal(toClient[0], want) {
			t.Errorf("%s: greeting is not AppendGreeting's", name)
		}
		if mine.Caps != GreetingCaps || mine.Caps&CapSSL != 0 || mine.Plugin != NativePasswordPlugin {
			t.Errorf("%s: greeting %+v", name, mine)
		}
		srv, err := ParseGreeting(fromServer[0])
		if err != nil {
			t.Fatal(err)
		}
		if want := AppendAuthSwitchRequest(nil, 2, NativePasswordPlugin, srv.Scramble); !bytes.Equal(toClient[1], want) {
			t.Errorf("%s: switch % x, want % x", name, toClient[1], want)
		}
		answer := payload(fromClient[1])
		if want := NativePassword(srv.Scramble, []byte(down.Password)); !bytes.Equal(answer, want) {
			t.Errorf("%s: the client's answer % x, want % x", name, answer, want)
		}
		hr, err := ParseHandshakeResponse(toServer[0])
		if err != nil || !bytes.Equal(hr.Auth, answer) || hr.User != down.User || hr.Database != down.Database || PacketSeq(toServer[0]) != 1 {
			t.Errorf("%s: to the server %+v (%v)", name, hr, err)
		}
		reply, relayed := fromServer[1], toClient[2]
		if PacketSeq(reply) != 2 || PacketSeq(relayed) != 4 || !bytes.Equal(reply[4:], relayed[4:]) {
			t.Errorf("%s: reply % x relayed as % x", name, reply, relayed)
		}
		if IsOK(reply) == (len(down.Errors) > 0) || IsErr(reply) != (len(down.Errors) > 0) {
			t.Errorf("%s: reply % x with errors %v", name, reply, down.Errors)
		}
	}
}

func TestGreetingRoundTrip(t *testing.T) {
	var s [20]byte
	for i := range s {
		s[i] = byte('A' + i)
	}
	pkt := AppendGreeting([]byte("x"), 7, s, "8.0.36-proxy")[1:]
	g, err := ParseGreeting(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if g.ConnID != 7 || g.Version != "8.0.36-proxy" || !bytes.Equal(g.Scramble, s[:]) || g.Caps != GreetingCaps ||
		g.Plugin != NativePasswordPlugin || g.Charset != 45 || g.Status != 2 || g.ExtCaps != 0 || PacketSeq(pkt) != 0 {
		t.Errorf("%+v", g)
	}
	short := 4 + 1 + len(g.Version) + 1 + 4 + 8 + 1 + 2 // a pre-4.1 greeting ends after the lower capabilities
	for cut := 0; cut < len(pkt); cut++ {
		if _, err := ParseGreeting(pkt[:cut]); err == nil && cut != short && cut < len(pkt)-len(NativePasswordPlugin)-1 {
			t.Errorf("greeting cut at %d parsed", cut)
		}
	}
}

func TestHandshakeResponseRoundTrip(t *testing.T) {
	for _, hr := range []HandshakeResponse{
		{Caps: CapProtocol41 | CapSecureConnection, Charset: 33, User: "u", Auth: make([]byte, 20)},
		{Caps: CapProtocol41, User: "old", Auth: []byte("clear")},
		{Caps: GreetingCaps | CapZstdCompression, MaxPacket: 1 << 24, User: "app", Auth: bytes.Repeat([]byte{7}, 300),
			Database: "shop", Plugin: "caching_sha2_password", Attrs: []byte("\x03key\x05value"), ZstdLevel: 3, ExtCaps: 4},
	} {
		pkt := AppendHandshakeResponse(nil, 1, hr)
		got, err := ParseHandshakeResponse(pkt)
		if err != nil {
			t.Fatal(err)
		}
		if got.User != hr.User || !bytes.Equal(got.Auth, hr.Auth) || got.Database != hr.Database || got.Plugin != hr.Plugin ||
			!bytes.Equal(got.Attrs, hr.Attrs) || got.ZstdLevel != hr.ZstdLevel || got.ExtCaps != hr.ExtCaps || got.Caps != hr.Caps {
			t.Errorf("%+v\nbecame %+v", hr, got)
		}
		if out := AppendHandshakeResponse(nil, 1, got); !bytes.Equal(out, pkt) {
			t.Errorf("second round trip differs")
		}
	}
	ssl := AppendHandshakeResponse(nil, 1, HandshakeResponse{Caps: CapProtocol41 | CapSSL})[:4+32]
	ssl[0] = 32
	if !IsSSLRequest(ssl) {
		t.Error("SSLRequest not recognised")
	}
	if _, err := ParseHandshakeResponse(ssl); err == nil {
		t.Error("an SSLRequest parsed as a handshake response")
	}
}

func TestNativePassword(t *testing.T) {
	// mysql_native_password of "secret" for a scramble of 20 'a' bytes,
	// computed with Python's hashlib: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
	got := NativePassword(bytes.Repeat([]byte("a"), 21), []byte("secret"))
	if want, _ := hex.DecodeString("512ae2a4d1572c011140a7362190e07e79eb03d2"); !bytes.Equal(got, want) {
		t.Errorf("% x, want % x", got, want)
	}
	if NativePassword(make([]byte, 20), nil) != nil {
		t.Error("empty password gave data")
	}
}

func TestPacketSeq(t *testing.T) {
	big := make([]byte, 0, 2*(maxPayload+4)+8)
	big = append(big, 0xFF, 0xFF, 0xFF, 5)
	big = append(big, make([]byte, maxPayload)...)
	big = append(big, 0xFF, 0xFF, 0xFF, 6)
	big = append(big, make([]byte, maxPayload)...)
	big = append(big, 1, 0, 0, 7, 0x0e)
	SetPacketSeq(big, 250)
	if PacketSeq(big) != 250 || big[4+maxPayload+3] != 251 || big[2*(4+maxPayload)+3] != 252 || lastSeq(big) != 252 {
		t.Errorf("renumbered: %d %d %d", big[3], big[4+maxPayload+3], big[2*(4+maxPayload)+3])
	}
	if PacketSeq([]byte{1}) != 0 {
		t.Error("short packet")
	}
	SetPacketSeq([]byte{1, 2}, 3) // must not panic
}
