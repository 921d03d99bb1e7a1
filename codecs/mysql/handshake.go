package mysql

import (
	"crypto/sha1"
	"encoding/binary"
)

// Packets of the connection phase, for an engine that greets clients
// itself and authenticates them against the server it routes them to:
//
//	proxy → client   AppendGreeting (its own scramble)        seq 0
//	client → proxy   HandshakeResponse41 → ParseHandshakeResponse   seq 1
//	                 (route on user and database; dial the server)
//	server → proxy   HandshakeV10 → ParseGreeting (the server's scramble)
//	proxy → client   AppendAuthSwitchRequest(seq 2, plugin, server scramble)
//	client → proxy   AuthSwitchResponse: the auth data for that scramble (seq 3)
//	proxy → server   AppendHandshakeResponse(seq 1, response with that auth data)
//	server → proxy   OK or ERR (seq 2) → SetPacketSeq(4) → client
//
// Every pkt argument is one message as Split returns it, header included.

// NativePasswordPlugin is the authentication plugin AppendGreeting offers.
const NativePasswordPlugin = "mysql_native_password"

// Greeting is a server's HandshakeV10 packet.
type Greeting struct {
	Version string // server version ("5.5.5-10.11.6-MariaDB" for MariaDB)
	ConnID  uint32 // the server's connection (thread) id
	// Scramble is auth-plugin-data parts 1 and 2 without the terminating
	// NUL: the 20 bytes mysql_native_password hashes.
	Scramble []byte
	Caps     uint32 // capability flags
	Charset  byte   // the server's default collation id
	Status   uint16 // status flags
	// ExtCaps are MariaDB's extended capabilities (the last 4 reserved
	// bytes), set only by MariaDB servers, which clear CLIENT_MYSQL.
	ExtCaps uint32
	Plugin  string // auth plugin name
}

type greetingView struct {
	version, part1, part2, plugin []byte
	connID, caps, extCaps         uint32
	charset                       byte
	status                        uint16
}

// parseGreeting parses a HandshakeV10 payload without allocating.
func parseGreeting(p []byte) (g greetingView, err error) {
	if len(p) < 1 || p[0] != 10 {
		return g, malformed("not a HandshakeV10 greeting")
	}
	version, next, ok := cstring(p, 1)
	if !ok || len(p)-next < 4+8+1+2 {
		return g, malformed("short greeting")
	}
	g.version = version
	r := p[next:]
	g.connID = binary.LittleEndian.Uint32(r)
	g.part1, r = r[4:12], r[13:]
	g.caps = uint32(binary.LittleEndian.Uint16(r))
	r = r[2:]
	if len(r) == 0 {
		return g, nil
	}
	if len(r) < 1+2+2+1+10 {
		return g, malformed("short greeting")
	}
	g.charset, g.status = r[0], binary.LittleEndian.Uint16(r[1:])
	g.caps |= uint32(binary.LittleEndian.Uint16(r[3:])) << 16
	authLen := int(r[5])
	if g.caps&CapLongPassword == 0 {
		g.extCaps = binary.LittleEndian.Uint32(r[12:])
	}
	r = r[16:]
	if g.caps&CapSecureConnection != 0 {
		n := max(13, authLen-8)
		if len(r) < n {
			return g, malformed("greeting: short auth-plugin-data")
		}
		g.part2, r = r[:n], r[n:]
		if g.part2[n-1] == 0 {
			g.part2 = g.part2[:n-1]
		}
	}
	if g.caps&CapPluginAuth != 0 {
		if name, _, ok := cstring(r, 0); ok {
			g.plugin = name
		} else {
			g.plugin = r // servers of 5.5.7-5.5.9 send no NUL
		}
	}
	return g, nil
}

// ParseGreeting parses a server's HandshakeV10 packet (protocol 10).
func ParseGreeting(pkt []byte) (Greeting, error) {
	v, err := parseGreeting(payload(pkt))
	if err != nil {
		return Greeting{}, err
	}
	return Greeting{
		Version: string(v.version), ConnID: v.connID,
		Scramble: append(append([]byte(nil), v.part1...), v.part2...),
		Caps:     v.caps, Charset: v.charset, Status: v.status, ExtCaps: v.extCaps,
		Plugin: string(v.plugin),
	}, nil
}

// AppendGreeting appends a HandshakeV10 with sequence id 0 for a client the
// proxy greets itself: serverVersion, connID and scramble (20 bytes of
// random data, without NUL bytes), the capabilities GreetingCaps (no
// CLIENT_SSL), collation utf8mb4_general_ci (45), status
// SERVER_STATUS_AUTOCOMMIT and the plugin mysql_native_password.
func AppendGreeting(dst []byte, connID uint32, scramble [20]byte, serverVersion string) []byte {
	dst, off := beginPacket(dst, 0)
	dst = append(append(append(dst, 10), serverVersion...), 0)
	dst = binary.LittleEndian.AppendUint32(dst, connID)
	dst = append(append(dst, scramble[:8]...), 0)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(GreetingCaps&0xFFFF))
	dst = append(dst, 45)
	dst = binary.LittleEndian.AppendUint16(dst, 0x0002)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(GreetingCaps>>16))
	dst = append(dst, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = append(append(dst, scramble[8:]...), 0)
	dst = append(append(dst, NativePasswordPlugin...), 0)
	return endPacket(dst, off)
}

// AppendAuthSwitchRequest appends an AuthSwitchRequest with sequence id
// seq: 0xFE, plugin, NUL, then scramble and, for mysql_native_password, the
// NUL servers end its 20 bytes with. A client answers with an
// AuthSwitchResponse of seq+1.
func AppendAuthSwitchRequest(dst []byte, seq byte, plugin string, scramble []byte) []byte {
	dst, off := beginPacket(dst, seq)
	dst = append(append(append(dst, 0xFE), plugin...), 0)
	dst = append(dst, scramble...)
	if plugin == NativePasswordPlugin {
		dst = append(dst, 0)
	}
	return endPacket(dst, off)
}

// NativePassword returns mysql_native_password's answer to scramble (its
// first 20 bytes): SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
// An empty password answers with no data.
func NativePassword(scramble, password []byte) []byte {
	if len(password) == 0 {
		return nil
	}
	h1 := sha1.Sum(password)
	h2 := sha1.Sum(h1[:])
	h := sha1.New()
	h.Write(scramble[:min(20, len(scramble))])
	h.Write(h2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= h1[i]
	}
	return out
}
