package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net"

	"github.com/metaproxy/metaproxy/codecs/mysql"
	"github.com/metaproxy/metaproxy/codecs/mysql/internal/golden"
)

// The proxy's greeting.
const (
	proxyConnID  = 4242
	proxyVersion = "5.5.5-10.11.0-metaproxy"
)

// switchAuth is the connection phase of a proxy that greets the client
// itself and authenticates it against the server with the server's
// scramble, as the engine's connection-bound mode does, built on the
// codec's helpers only.
// password is the one the client was given, to check its answers with.
func switchAuth(password string) func(c, s net.Conn, rec *recording) error {
	return func(c, s net.Conn, rec *recording) error { return switchConn(c, s, rec, password) }
}

func switchConn(c, s net.Conn, rec *recording, password string) error {
	var scramble [20]byte
	_, _ = rand.Read(scramble[:])
	for i := range scramble {
		scramble[i] = 1 + scramble[i]%126 // no NUL, as servers do
	}
	send(c, mysql.AppendGreeting(nil, proxyConnID, scramble, proxyVersion), &rec.toClient)
	first, err := readPacket(c, &rec.fromClient)
	if err != nil {
		return err
	}
	resp, err := mysql.ParseHandshakeResponse(first)
	if err != nil {
		return err
	}
	if !bytes.Equal(resp.Auth, mysql.NativePassword(scramble[:], []byte(password))) {
		return fmt.Errorf("the client's answer to the proxy's scramble is not mysql_native_password's")
	}
	// Route on resp.User and resp.Database here; then meet the server.
	gp, err := readPacket(s, &rec.fromServer)
	if err != nil {
		return err
	}
	g, err := mysql.ParseGreeting(gp)
	if err != nil {
		return err
	}
	seq := mysql.PacketSeq(first) + 1
	send(c, mysql.AppendAuthSwitchRequest(nil, seq, mysql.NativePasswordPlugin, g.Scramble), &rec.toClient)
	answer, err := readPacket(c, &rec.fromClient)
	if err != nil {
		return err
	}
	resp.Auth = answer[4:]
	resp.Plugin = mysql.NativePasswordPlugin
	resp.Caps &= g.Caps | mysql.CapLongPassword
	send(s, mysql.AppendHandshakeResponse(nil, 1, resp), &rec.toServer)
	reply, err := readPacket(s, &rec.fromServer)
	if err != nil {
		return err
	}
	if !mysql.IsOK(reply) && !mysql.IsErr(reply) {
		return fmt.Errorf("server answered the handshake with % x", reply)
	}
	mysql.SetPacketSeq(reply, mysql.PacketSeq(answer)+1)
	send(c, reply, &rec.toClient)
	return nil
}

func send(w net.Conn, pkt []byte, rec *bytes.Buffer) {
	rec.Write(pkt)
	if _, err := w.Write(pkt); err != nil {
		log.Printf("proxy write: %v", err)
	}
}

func readPacket(r net.Conn, rec *bytes.Buffer) ([]byte, error) {
	h := make([]byte, 4)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	p := make([]byte, 4+n)
	copy(p, h)
	if _, err := io.ReadFull(r, p[4:]); err != nil {
		return nil, err
	}
	rec.Write(p)
	return p, nil
}

// proxiedScenarios run go-sql-driver through the switching proxy; each
// connection gives two golden conns, the client's half and the server's.
func proxiedScenarios(srv *server) []golden.Conn {
	var out []golden.Conn
	for _, sc := range []struct {
		name string
		l    login
		ok   bool
	}{
		{"proxied_app", app, true},
		{"proxied_reader_no_db", login{user: "reader", password: "secret2"}, true},
		{"proxied_wrong_password", login{user: "app", password: "wrong", db: "shop"}, false},
	} {
		rl := newRelay(srv.addr)
		rl.handshake = switchAuth(sc.l.password)
		s := open(sc.name, rl.addr(), sc.l)
		s.expect(golden.Request{Command: hr})
		s.expect(golden.Request{Command: authResp})
		if s.connect() != sc.ok {
			fatalf("%s: login ok=%v", sc.name, !sc.ok)
		}
		if sc.ok {
			s.ident()
		}
		s.close()
		rec := rl.one(sc.name)
		if rec.err != nil {
			fatalf("%s: proxy: %v", sc.name, rec.err)
		}
		up := s.c
		up.Name, up.Upstream = sc.name+"/server", true
		up.ClientBytes, up.ServerBytes = rec.toServer.Bytes(), rec.fromServer.Bytes()
		up.Requests = append([]golden.Request{up.Requests[0]}, up.Requests[2:]...) // no AuthSwitchResponse
		if up.Version == "" {
			up.Version = serverVersion
		}
		down := s.c
		down.Name, down.ConnID, down.Version = sc.name+"/client", proxyConnID, proxyVersion
		down.ClientBytes, down.ServerBytes = rec.fromClient.Bytes(), rec.toClient.Bytes()
		out = append(out, down, up)
	}
	return out
}
