package mysql

import "encoding/binary"

// HandshakeResponse is a client's HandshakeResponse41.
type HandshakeResponse struct {
	Caps      uint32 // the client's capability flags
	MaxPacket uint32 // max packet size the client accepts
	Charset   byte   // collation id
	// ExtCaps are MariaDB's extended capabilities, the last 4 bytes of the
	// filler (MariaDB clients set them when the server is MariaDB).
	ExtCaps  uint32
	User     string
	Auth     []byte // auth response (for mysql_native_password, NativePassword's 20 bytes)
	Database string // the initial schema, with CLIENT_CONNECT_WITH_DB
	Plugin   string // auth plugin the Auth is for, with CLIENT_PLUGIN_AUTH
	// Attrs are the connection attributes as sent, without their total
	// length: length-encoded key, value, key, value... (CLIENT_CONNECT_ATTRS).
	Attrs []byte
	// ZstdLevel is the zstd compression level (CLIENT_ZSTD_COMPRESSION_ALGORITHM).
	ZstdLevel byte
}

type responseView struct {
	caps, maxPacket, extCaps     uint32
	charset, zstd                byte
	user, auth, db, plugin, attr []byte
}

// parseResponse parses a HandshakeResponse41 payload without allocating.
// An SSLRequest (32 bytes) and a pre-4.1 response are refused.
func parseResponse(p []byte) (v responseView, err error) {
	if len(p) < 33 {
		return v, malformed("handshake response of %d bytes", len(p))
	}
	v.caps = binary.LittleEndian.Uint32(p)
	if v.caps&CapProtocol41 == 0 {
		return v, malformed("pre-4.1 handshake response (no CLIENT_PROTOCOL_41)")
	}
	v.maxPacket, v.charset = binary.LittleEndian.Uint32(p[4:]), p[8]
	v.extCaps = binary.LittleEndian.Uint32(p[28:])
	var q int
	var ok bool
	if v.user, q, ok = cstring(p, 32); !ok {
		return v, malformed("handshake response: user without NUL")
	}
	switch {
	case v.caps&CapPluginAuthLenenc != 0:
		v.auth, q, ok = readLenencBytes(p, q)
	case v.caps&CapSecureConnection != 0:
		if ok = q < len(p) && int(p[q]) <= len(p)-q-1; ok {
			v.auth, q = p[q+1:q+1+int(p[q])], q+1+int(p[q])
		}
	default:
		v.auth, q, ok = cstring(p, q)
	}
	if !ok {
		return v, malformed("handshake response: bad auth response")
	}
	if v.caps&CapConnectWithDB != 0 && q < len(p) {
		if v.db, q, ok = cstring(p, q); !ok {
			return v, malformed("handshake response: database without NUL")
		}
	}
	if v.caps&CapPluginAuth != 0 && q < len(p) {
		if v.plugin, q, ok = cstring(p, q); !ok {
			return v, malformed("handshake response: plugin without NUL")
		}
	}
	if v.caps&CapConnectAttrs != 0 && q < len(p) {
		if v.attr, q, ok = readLenencBytes(p, q); !ok {
			return v, malformed("handshake response: bad connection attributes")
		}
	}
	if v.caps&CapZstdCompression != 0 && q < len(p) {
		v.zstd = p[q]
	}
	return v, nil
}

// ParseHandshakeResponse parses a client's HandshakeResponse41 (not an
// SSLRequest: see IsSSLRequest). The result holds copies, not pkt's bytes.
func ParseHandshakeResponse(pkt []byte) (HandshakeResponse, error) {
	if len(pkt) >= headerLen && len(payload(pkt)) >= maxPayload {
		return HandshakeResponse{}, malformed("handshake response in continued packets")
	}
	v, err := parseResponse(payload(pkt))
	if err != nil {
		return HandshakeResponse{}, err
	}
	return HandshakeResponse{
		Caps: v.caps, MaxPacket: v.maxPacket, Charset: v.charset, ExtCaps: v.extCaps,
		User: string(v.user), Auth: clone(v.auth), Database: string(v.db), Plugin: string(v.plugin),
		Attrs: clone(v.attr), ZstdLevel: v.zstd,
	}, nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// AppendHandshakeResponse appends hr as a HandshakeResponse41 with
// sequence id seq, its fields written as hr.Caps says (the auth response
// length-encoded with CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA, else behind a
// 1-byte length with CLIENT_SECURE_CONNECTION, at most 255 bytes, else
// NUL-terminated; the database with CLIENT_CONNECT_WITH_DB; the plugin
// with CLIENT_PLUGIN_AUTH; the attributes with CLIENT_CONNECT_ATTRS). The
// engine re-encodes a client's response for the server it chose, with the
// auth data the client computed for that server's scramble.
// AppendHandshakeResponse(ParseHandshakeResponse(x)) is x for what clients
// send.
func AppendHandshakeResponse(dst []byte, seq byte, hr HandshakeResponse) []byte {
	dst, off := beginPacket(dst, seq)
	dst = binary.LittleEndian.AppendUint32(dst, hr.Caps)
	dst = binary.LittleEndian.AppendUint32(dst, hr.MaxPacket)
	dst = append(dst, hr.Charset)
	dst = append(dst, make([]byte, 19)...)
	dst = binary.LittleEndian.AppendUint32(dst, hr.ExtCaps)
	dst = append(append(dst, hr.User...), 0)
	switch {
	case hr.Caps&CapPluginAuthLenenc != 0:
		dst = append(appendLenenc(dst, uint64(len(hr.Auth))), hr.Auth...)
	case hr.Caps&CapSecureConnection != 0:
		a := hr.Auth[:min(len(hr.Auth), 255)]
		dst = append(append(dst, byte(len(a))), a...)
	default:
		dst = append(append(dst, hr.Auth...), 0)
	}
	if hr.Caps&CapConnectWithDB != 0 {
		dst = append(append(dst, hr.Database...), 0)
	}
	if hr.Caps&CapPluginAuth != 0 {
		dst = append(append(dst, hr.Plugin...), 0)
	}
	if hr.Caps&CapConnectAttrs != 0 {
		dst = append(appendLenenc(dst, uint64(len(hr.Attrs))), hr.Attrs...)
	}
	if hr.Caps&CapZstdCompression != 0 {
		dst = append(dst, hr.ZstdLevel)
	}
	return endPacket(dst, off)
}
