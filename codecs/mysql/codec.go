// Package mysql is the metaproxy codec for the MySQL client/server protocol
// (MySQL, MariaDB; codec name metaproxy.codec.mysql, alias mysql).
//
// A frame is one logical message: a packet (3-byte little-endian payload
// length, 1-byte sequence id, payload) and, when its payload is 0xFFFFFF
// bytes long, the packets continuing it, up to the first shorter one.
//
// The server speaks first (codec.Capabilities.ServerFirst) and the codecs
// are stateful and sided (codec.Sided): a downstream codec follows a
// client from its handshake response through authentication to commands
// and gives routing metadata (user, database, command, statement kind); an
// upstream codec follows a server from its greeting on and classifies its
// packets. After an SSLRequest (or once compression starts) the bytes are
// no longer MySQL packets: the codec turns opaque (Codec.Opaque) and the
// engine relays the connection as it is.
//
// Local errors are ERR packets (ErrorReply, RefuseConnection in place of
// a greeting, RejectReply). The helpers a connection-bound engine needs to
// greet clients itself and switch their authentication to the chosen
// server's scramble are AppendGreeting, ParseGreeting,
// ParseHandshakeResponse, AppendHandshakeResponse, AppendAuthSwitchRequest,
// AppendErr and the packet predicates (handshake.go, response.go,
// errors.go, packet.go); the README describes the flow.
//
// Decoding a command does not allocate: metadata values are constants or
// the codec's own copies of the user and database.
package mysql

import (
	"fmt"

	"github.com/metaproxy/metaproxy/codec"
)

// Metadata keys set on client packets (besides codec.KeyMethod).
const (
	KeyUser      = "user"      // the user of the handshake response or COM_CHANGE_USER
	KeyDatabase  = "database"  // the current default database, absent when none
	KeyCommand   = "command"   // COM_QUERY, COM_PING, ..., or a handshake packet's name
	KeyStatement = "statement" // the statement kind of COM_QUERY and COM_STMT_PREPARE
)

// Names of the client packets that are not commands (MySQL's packet
// names), given as command and method.
const (
	CmdHandshakeResponse  = "HandshakeResponse"
	CmdSSLRequest         = "SSLRequest"
	CmdAuthSwitchResponse = "AuthSwitchResponse" // any later authentication packet of the client
	CmdLocalInfileData    = "LocalInfileData"    // a file sent for LOAD DATA LOCAL INFILE
)

type phase uint8

const (
	phaseHandshake phase = iota // downstream: awaiting the handshake response; upstream: the greeting
	phaseAuth                   // downstream: after the handshake response, before the first command
	phaseCommand                // downstream: commands
)

// Codec implements codec.Codec for one side of one MySQL connection. Make
// one per connection with a Factory; it is used by one goroutine at a time.
type Codec struct {
	o      Options
	side   codec.Side
	phase  phase
	opaque bool

	// Downstream state: the client's capabilities, its user and current
	// database (copies: frames do not outlive their messages), and the
	// last command, to tell what packets continuing it are.
	caps    uint32
	user    string
	db      string
	lastCmd byte
	greet   *greeting // the proxy's authentication of the client (greet.go)
}

var (
	_ codec.Codec         = (*Codec)(nil)
	_ codec.Rejecter      = (*Codec)(nil)
	_ codec.HeaderCarrier = (*Codec)(nil)

	_ codec.ConnectionRefuser = (*Codec)(nil)
)

// Side returns the side the codec reads: codec.SideDownstream (a client)
// or codec.SideUpstream (a server).
func (c *Codec) Side() codec.Side { return c.side }

// Opaque reports whether the connection no longer carries MySQL packets
// the codec can read: a downstream codec turns opaque when it decodes an
// SSLRequest (TLS follows) or the first command of a client that
// negotiated CLIENT_COMPRESS. From then on Split takes whatever bytes
// there are and Decode classifies nothing; the engine should relay both
// directions as they are, and call SetOpaque on the upstream codec.
func (c *Codec) Opaque() bool { return c.opaque }

// SetOpaque makes the codec opaque (see Opaque). The engine calls it on
// the upstream codec when the downstream one turned opaque: an upstream
// codec cannot see the client's SSLRequest.
func (c *Codec) SetOpaque() { c.opaque = true }

// Split returns the length of the first complete message in buf (all its
// continuation packets), 0 while it is incomplete. A message longer than
// max_frame_bytes is refused as soon as a header announces it. An opaque
// codec takes all of buf.
func (c *Codec) Split(buf []byte) (int, error) {
	if c.opaque {
		return len(buf), nil
	}
	return splitPackets(buf, c.o.MaxFrame)
}

// Decode fills msg from one message. Client packets are KindRequest
// (COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA and LOCAL INFILE data,
// which get no answer, are KindOneway) with the metadata described in the
// package README; server packets are KindResponse, an ERR packet with a
// Status other than StatusOK. ID is always 0: MySQL has no request ids.
// Decode of an opaque codec's bytes gives KindOneway (client) or
// KindResponse (server) and no metadata.
func (c *Codec) Decode(frame []byte, msg *codec.Message) error {
	if len(frame) < headerLen {
		return malformed("short packet")
	}
	if c.side == codec.SideUpstream {
		return c.decodeServer(frame, msg)
	}
	return c.decodeClient(frame, msg)
}

// decodeServer classifies a server packet. The first must be a greeting
// (HandshakeV10) or an ERR (a server refusing the connection); after that
// any packet is accepted: the bound engine relays them, and an ERR is the
// only packet whose meaning does not depend on the command it answers.
func (c *Codec) decodeServer(frame []byte, msg *codec.Message) error {
	msg.Kind = codec.KindResponse
	if c.opaque {
		return nil
	}
	p := payload(frame)
	if len(p) > 0 && p[0] == 0xFF {
		msg.Status = errStatus(p)
		return nil
	}
	if c.phase == phaseHandshake {
		if _, err := parseGreeting(p); err != nil {
			return err
		}
		c.phase = phaseCommand
	}
	return nil
}

// Encode appends msg.Frame. MySQL packets carry no ids and no headers:
// any edit is an error wrapping codec.ErrUnsupported, and the codec never
// rewrites a packet.
func (c *Codec) Encode(dst []byte, msg *codec.Message, e *codec.Edit) ([]byte, error) {
	if !e.Empty() {
		return dst, fmt.Errorf("%s: a packet cannot carry an id or headers: %w", Name, codec.ErrUnsupported)
	}
	return append(dst, msg.Frame...), nil
}

// CarriesHeaders reports false: no MySQL packet carries header edits.
func (c *Codec) CarriesHeaders(*codec.Message) bool { return false }

// HeartbeatReply returns dst unchanged: COM_PING is a command the server
// answers, not a heartbeat the proxy answers.
func (c *Codec) HeartbeatReply(dst []byte, _ *codec.Message) []byte { return dst }

// ErrorReply appends an ERR packet answering req (see errorCode for the
// codes), with the sequence id following req's last packet. It returns
// dst unchanged for requests that get no answer (KindOneway) and on an
// opaque connection.
func (c *Codec) ErrorReply(dst []byte, req *codec.Message, err *codec.Error) []byte {
	if c.opaque || req.Kind != codec.KindRequest || len(req.Frame) < headerLen {
		return dst
	}
	code, state := errorCode(err.Type, req.Meta.Value(KeyCommand))
	return AppendErr(dst, lastSeq(req.Frame)+1, code, state, errMessage(err))
}

// RejectReply answers a client message Split refused (too long) as a
// server does: ER_NET_PACKET_TOO_LARGE with the next sequence id. Upstream
// and opaque codecs return dst unchanged.
func (c *Codec) RejectReply(dst, buf []byte, _ *codec.Error) []byte {
	if c.side == codec.SideUpstream || c.opaque || len(buf) < headerLen {
		return dst
	}
	return AppendErr(dst, buf[3]+1, erNetPacketTooLarge, "08S01", "Got a packet bigger than 'max_allowed_packet' bytes")
}
