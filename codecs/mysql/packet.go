package mysql

import (
	"encoding/binary"

	"github.com/metaproxy/metaproxy/codec"
)

// Capability flags (MySQL's CLIENT_* constants, shared by MariaDB).
const (
	CapLongPassword     uint32 = 1 << 0 // CLIENT_LONG_PASSWORD; MariaDB reads it as CLIENT_MYSQL
	CapFoundRows        uint32 = 1 << 1
	CapLongFlag         uint32 = 1 << 2
	CapConnectWithDB    uint32 = 1 << 3
	CapNoSchema         uint32 = 1 << 4
	CapCompress         uint32 = 1 << 5
	CapODBC             uint32 = 1 << 6
	CapLocalFiles       uint32 = 1 << 7
	CapIgnoreSpace      uint32 = 1 << 8
	CapProtocol41       uint32 = 1 << 9
	CapInteractive      uint32 = 1 << 10
	CapSSL              uint32 = 1 << 11
	CapIgnoreSigpipe    uint32 = 1 << 12
	CapTransactions     uint32 = 1 << 13
	CapSecureConnection uint32 = 1 << 15
	CapMultiStatements  uint32 = 1 << 16
	CapMultiResults     uint32 = 1 << 17
	CapPSMultiResults   uint32 = 1 << 18
	CapPluginAuth       uint32 = 1 << 19
	CapConnectAttrs     uint32 = 1 << 20
	CapPluginAuthLenenc uint32 = 1 << 21
	CapHandleExpired    uint32 = 1 << 22
	CapSessionTrack     uint32 = 1 << 23
	CapDeprecateEOF     uint32 = 1 << 24
	CapZstdCompression  uint32 = 1 << 26
	CapQueryAttributes  uint32 = 1 << 27
)

// GreetingCaps are the capabilities AppendGreeting advertises: what every
// MySQL ≥ 5.6 and MariaDB ≥ 10.0 server supports, without CLIENT_SSL and
// CLIENT_COMPRESS (the proxy reads the packets), CLIENT_DEPRECATE_EOF,
// CLIENT_SESSION_TRACK and CLIENT_QUERY_ATTRIBUTES (a client that chose
// them would break on a server that lacks them). Setting
// CLIENT_LONG_PASSWORD (CLIENT_MYSQL) tells MariaDB clients not to expect
// MariaDB's extended capabilities.
const GreetingCaps = CapLongPassword | CapFoundRows | CapLongFlag | CapConnectWithDB |
	CapLocalFiles | CapIgnoreSpace | CapProtocol41 | CapInteractive | CapIgnoreSigpipe |
	CapTransactions | CapSecureConnection | CapMultiStatements | CapMultiResults |
	CapPSMultiResults | CapPluginAuth | CapConnectAttrs | CapPluginAuthLenenc | CapHandleExpired

const (
	headerLen  = 4
	maxPayload = 0xFFFFFF // a payload of this length continues in the next packet
)

// splitPackets returns the length of the first logical message in buf:
// its packets up to and including the first one shorter than 0xFFFFFF.
func splitPackets(buf []byte, max int) (int, error) {
	p := 0
	for {
		if len(buf)-p < headerLen {
			return 0, nil
		}
		l := int(buf[p]) | int(buf[p+1])<<8 | int(buf[p+2])<<16
		end := p + headerLen + l
		if end > max {
			return 0, malformed("message of more than %d bytes (max_frame_bytes)", max)
		}
		if len(buf) < end {
			return 0, nil
		}
		if l < maxPayload {
			return end, nil
		}
		p = end
	}
}

// payload returns the payload of the first packet of pkt (all of it
// while pkt is shorter than the header says).
func payload(pkt []byte) []byte {
	if len(pkt) < headerLen {
		return nil
	}
	l := int(pkt[0]) | int(pkt[1])<<8 | int(pkt[2])<<16
	return pkt[headerLen:min(len(pkt), headerLen+l)]
}

// lastSeq returns the sequence id of the last packet of the message pkt.
func lastSeq(pkt []byte) byte {
	var seq byte
	for p := 0; len(pkt)-p >= headerLen; {
		seq = pkt[p+3]
		l := int(pkt[p]) | int(pkt[p+1])<<8 | int(pkt[p+2])<<16
		if l < maxPayload {
			break
		}
		p += headerLen + l
	}
	return seq
}

// PacketSeq returns the sequence id of pkt's (first) packet, 0 when pkt
// is shorter than a header.
func PacketSeq(pkt []byte) byte {
	if len(pkt) < headerLen {
		return 0
	}
	return pkt[3]
}

// SetPacketSeq writes seq as the sequence id of pkt's first packet, and
// seq+1, seq+2, ... into its continuation packets (pkt as Split returns
// it: one logical message). The engine renumbers a relayed packet when
// the two connections' handshakes took a different number of packets.
func SetPacketSeq(pkt []byte, seq byte) {
	for p := 0; len(pkt)-p >= headerLen; seq++ {
		pkt[p+3] = seq
		l := int(pkt[p]) | int(pkt[p+1])<<8 | int(pkt[p+2])<<16
		if l < maxPayload {
			return
		}
		p += headerLen + l
	}
}

// IsOK reports whether pkt is an OK_Packet (header 0x00, at least 7 bytes
// of payload), as a server ends the connection phase and answers most
// commands. The 0xFE form that ends a result set under
// CLIENT_DEPRECATE_EOF is not reported.
func IsOK(pkt []byte) bool {
	p := payload(pkt)
	return len(p) >= 7 && p[0] == 0x00
}

// IsErr reports whether pkt is an ERR_Packet (header 0xFF, an error code).
// No other server packet starts with 0xFF.
func IsErr(pkt []byte) bool {
	p := payload(pkt)
	return len(p) >= 3 && p[0] == 0xFF
}

// IsAuthSwitch reports whether pkt, a server packet of the connection
// phase, is an AuthSwitchRequest (header 0xFE: a plugin name and its
// data, or the bare 0xFE of the old mysql_old_password switch). After the
// connection phase 0xFE is an EOF packet; ask only about the handshake.
func IsAuthSwitch(pkt []byte) bool {
	p := payload(pkt)
	return len(p) >= 1 && p[0] == 0xFE && len(p) < maxPayload
}

// IsSSLRequest reports whether pkt, a client's first packet, is an
// SSLRequest: the 32 bytes of a HandshakeResponse41 up to the filler,
// with CLIENT_SSL set. TLS starts right after it.
func IsSSLRequest(pkt []byte) bool {
	p := payload(pkt)
	return len(p) == 32 && binary.LittleEndian.Uint32(p)&CapSSL != 0
}

// ParseErr returns the fields of the ERR_Packet pkt: the error code, the
// SQLSTATE ("" when the packet has none, as before the handshake) and the
// message.
func ParseErr(pkt []byte) (code uint16, sqlState, msg string, ok bool) {
	p := payload(pkt)
	if len(p) < 3 || p[0] != 0xFF {
		return 0, "", "", false
	}
	code = binary.LittleEndian.Uint16(p[1:])
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		sqlState, rest = string(rest[1:6]), rest[6:]
	}
	return code, sqlState, string(rest), true
}

// beginPacket appends a packet header with seq and a length to be filled
// in by endPacket; it returns the header's offset.
func beginPacket(dst []byte, seq byte) ([]byte, int) {
	return append(dst, 0, 0, 0, seq), len(dst)
}

// endPacket writes the length of the packet begun at off.
func endPacket(dst []byte, off int) []byte {
	n := len(dst) - off - headerLen
	dst[off], dst[off+1], dst[off+2] = byte(n), byte(n>>8), byte(n>>16)
	return dst
}

// readLenenc reads a length-encoded integer at b[p:]. NULL (0xFB) and the
// undefined 0xFF are refused.
func readLenenc(b []byte, p int) (v uint64, next int, ok bool) {
	if p >= len(b) {
		return 0, p, false
	}
	switch c := b[p]; {
	case c < 0xFB:
		return uint64(c), p + 1, true
	case c == 0xFC && p+3 <= len(b):
		return uint64(binary.LittleEndian.Uint16(b[p+1:])), p + 3, true
	case c == 0xFD && p+4 <= len(b):
		return uint64(b[p+1]) | uint64(b[p+2])<<8 | uint64(b[p+3])<<16, p + 4, true
	case c == 0xFE && p+9 <= len(b):
		return binary.LittleEndian.Uint64(b[p+1:]), p + 9, true
	}
	return 0, p, false
}

// readLenencBytes reads a length-encoded string at b[p:].
func readLenencBytes(b []byte, p int) ([]byte, int, bool) {
	n, q, ok := readLenenc(b, p)
	if !ok || n > uint64(len(b)-q) {
		return nil, p, false
	}
	return b[q : q+int(n)], q + int(n), true
}

// appendLenenc appends v as a length-encoded integer.
func appendLenenc(b []byte, v uint64) []byte {
	switch {
	case v < 0xFB:
		return append(b, byte(v))
	case v <= 0xFFFF:
		return append(b, 0xFC, byte(v), byte(v>>8))
	case v <= 0xFFFFFF:
		return append(b, 0xFD, byte(v), byte(v>>8), byte(v>>16))
	}
	return binary.LittleEndian.AppendUint64(append(b, 0xFE), v)
}

// cstring reads a NUL-terminated string at b[p:].
func cstring(b []byte, p int) ([]byte, int, bool) {
	for i := p; i < len(b); i++ {
		if b[i] == 0 {
			return b[p:i], i + 1, true
		}
	}
	return nil, p, false
}

func malformed(format string, args ...any) error { return codec.Malformed(Name, format, args...) }
