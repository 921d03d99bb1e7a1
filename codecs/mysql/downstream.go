package mysql

import (
	"github.com/metaproxy/metaproxy/codec"
)

// Commands whose packets the codec reads beyond their first byte.
const (
	comQuit             = 0x01
	comInitDB           = 0x02
	comQuery            = 0x03
	comChangeUser       = 0x11
	comStmtPrepare      = 0x16
	comStmtSendLongData = 0x18
	comStmtClose        = 0x19
)

// commands are the names of the command bytes, as in MySQL's and
// MariaDB's documentation; "" is not a command.
var commands = [256]string{
	0x00: "COM_SLEEP", 0x01: "COM_QUIT", 0x02: "COM_INIT_DB", 0x03: "COM_QUERY",
	0x04: "COM_FIELD_LIST", 0x05: "COM_CREATE_DB", 0x06: "COM_DROP_DB", 0x07: "COM_REFRESH",
	0x08: "COM_SHUTDOWN", 0x09: "COM_STATISTICS", 0x0a: "COM_PROCESS_INFO", 0x0b: "COM_CONNECT",
	0x0c: "COM_PROCESS_KILL", 0x0d: "COM_DEBUG", 0x0e: "COM_PING", 0x0f: "COM_TIME",
	0x10: "COM_DELAYED_INSERT", 0x11: "COM_CHANGE_USER", 0x12: "COM_BINLOG_DUMP",
	0x13: "COM_TABLE_DUMP", 0x14: "COM_CONNECT_OUT", 0x15: "COM_REGISTER_SLAVE",
	0x16: "COM_STMT_PREPARE", 0x17: "COM_STMT_EXECUTE", 0x18: "COM_STMT_SEND_LONG_DATA",
	0x19: "COM_STMT_CLOSE", 0x1a: "COM_STMT_RESET", 0x1b: "COM_SET_OPTION",
	0x1c: "COM_STMT_FETCH", 0x1d: "COM_DAEMON", 0x1e: "COM_BINLOG_DUMP_GTID",
	0x1f: "COM_RESET_CONNECTION", 0x20: "COM_CLONE", 0x21: "COM_SUBSCRIBE_GROUP_REPLICATION_STREAM",
	0xfa: "COM_STMT_BULK_EXECUTE", 0xfe: "COM_MULTI", // MariaDB
}

// decodeClient decodes a client packet, following the connection phase:
// the handshake response (or SSLRequest), then authentication packets
// (sequence id ≠ 0) until the first command (sequence id 0: every command
// starts a new sequence).
func (c *Codec) decodeClient(frame []byte, msg *codec.Message) error {
	if c.opaque {
		msg.Kind = codec.KindOneway
		return nil
	}
	p := payload(frame)
	seq := frame[3]
	switch c.phase {
	case phaseHandshake:
		return c.decodeHandshake(p, msg)
	case phaseAuth:
		if seq != 0 {
			c.setMeta(msg, codec.KindRequest, CmdAuthSwitchResponse, "")
			return nil
		}
		c.phase = phaseCommand
		if c.caps&(CapCompress|CapZstdCompression) != 0 {
			// Compressed packets from here on, in both directions.
			c.opaque = true
			msg.Kind = codec.KindOneway
			return nil
		}
	}
	if seq != 0 {
		// A packet continuing the current command's exchange.
		if c.lastCmd == comChangeUser {
			c.setMeta(msg, codec.KindRequest, CmdAuthSwitchResponse, "")
		} else {
			c.setMeta(msg, codec.KindOneway, CmdLocalInfileData, "")
		}
		return nil
	}
	if len(p) == 0 {
		return malformed("empty command packet")
	}
	name := commands[p[0]]
	if name == "" {
		return malformed("unknown command 0x%02x", p[0])
	}
	c.lastCmd = p[0]
	kind, stmt := codec.KindRequest, ""
	switch p[0] {
	case comQuit, comStmtClose, comStmtSendLongData:
		kind = codec.KindOneway // the server sends nothing back
	case comQuery:
		q := p[1:]
		if c.caps&CapQueryAttributes != 0 {
			q = skipQueryAttributes(q)
		}
		stmt = classify(q, c.caps&CapMultiStatements != 0)
		if stmt == StmtUse {
			if db, ok := useDatabase(q); ok {
				c.db = db
			}
		}
	case comStmtPrepare:
		stmt = classify(p[1:], false)
	case comInitDB:
		c.db = string(p[1:])
	case comChangeUser:
		if err := c.changeUser(p[1:]); err != nil {
			return err
		}
	}
	c.setMeta(msg, kind, name, stmt)
	return nil
}

// decodeHandshake decodes the client's first packet.
func (c *Codec) decodeHandshake(p []byte, msg *codec.Message) error {
	if len(p) == 32 {
		if v := uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24; v&CapSSL != 0 && v&CapProtocol41 != 0 {
			c.opaque = true
			msg.Kind = codec.KindRequest
			msg.Meta.Set(KeyCommand, CmdSSLRequest)
			msg.Meta.Set(codec.KeyMethod, CmdSSLRequest)
			return nil
		}
	}
	v, err := parseResponse(p)
	if err != nil {
		return err
	}
	c.caps, c.user, c.db = v.caps, string(v.user), string(v.db)
	c.phase = phaseAuth
	c.setMeta(msg, codec.KindRequest, CmdHandshakeResponse, "")
	return nil
}

// changeUser reads COM_CHANGE_USER's user and schema (after the command
// byte): user NUL, auth data (1-byte length with CLIENT_SECURE_CONNECTION,
// else NUL-terminated), schema NUL, then fields the codec does not need.
func (c *Codec) changeUser(p []byte) error {
	user, q, ok := cstring(p, 0)
	if ok && c.caps&CapSecureConnection != 0 {
		if ok = q < len(p) && int(p[q]) <= len(p)-q-1; ok {
			q += 1 + int(p[q])
		}
	} else if ok {
		_, q, ok = cstring(p, q)
	}
	var db []byte
	if ok {
		db, _, ok = cstring(p, q)
	}
	if !ok {
		return malformed("bad COM_CHANGE_USER")
	}
	c.user, c.db = string(user), string(db)
	return nil
}

// setMeta sets a client packet's kind and metadata: user, database,
// command, statement, and method (the statement kind, else the command).
func (c *Codec) setMeta(msg *codec.Message, kind codec.Kind, command, stmt string) {
	msg.Kind = kind
	msg.Meta.Set(KeyUser, c.user)
	if c.db != "" {
		msg.Meta.Set(KeyDatabase, c.db)
	}
	msg.Meta.Set(KeyCommand, command)
	method := command
	if stmt != "" {
		msg.Meta.Set(KeyStatement, stmt)
		method = stmt
	}
	msg.Meta.Set(codec.KeyMethod, method)
}

// skipQueryAttributes skips the query attributes that precede a COM_QUERY's
// text under CLIENT_QUERY_ATTRIBUTES (MySQL 8.0.23+): parameter count,
// parameter set count and, when there are parameters, their null bitmap,
// types, names and values. It returns nil when they cannot be walked.
func skipQueryAttributes(b []byte) []byte {
	n, p, ok := readLenenc(b, 0)
	if !ok {
		return nil
	}
	if _, p, ok = readLenenc(b, p); !ok {
		return nil
	}
	if n == 0 {
		return b[p:]
	}
	if n > uint64(len(b)) {
		return nil
	}
	bitmap := p
	p += int(n+7) / 8
	if p >= len(b) || b[p] != 1 { // new_params_bind_flag: without types the values cannot be walked
		return nil
	}
	p++
	types := make([]byte, 0, 16)
	for i := uint64(0); i < n; i++ {
		if p+2 > len(b) {
			return nil
		}
		types = append(types, b[p])
		p += 2
		if _, p, ok = readLenencBytes(b, p); !ok {
			return nil
		}
	}
	for i, t := range types {
		if b[bitmap+i/8]&(1<<(i%8)) != 0 {
			continue // NULL: no value
		}
		if p = skipBinaryValue(b, p, t); p < 0 {
			return nil
		}
	}
	return b[p:]
}

// skipBinaryValue skips one value of the binary protocol of type t at
// b[p:], returning -1 when it does not fit.
func skipBinaryValue(b []byte, p int, t byte) int {
	size := 0
	switch t {
	case 0x06: // NULL
	case 0x01: // TINY
		size = 1
	case 0x02, 0x0d: // SHORT, YEAR
		size = 2
	case 0x03, 0x09, 0x04: // LONG, INT24, FLOAT
		size = 4
	case 0x08, 0x05: // LONGLONG, DOUBLE
		size = 8
	case 0x07, 0x0a, 0x0b, 0x0c: // TIMESTAMP, DATE, TIME, DATETIME: a length byte
		if p >= len(b) {
			return -1
		}
		size = 1 + int(b[p])
	default: // strings, decimals, blobs, JSON...
		_, q, ok := readLenencBytes(b, p)
		if !ok {
			return -1
		}
		return q
	}
	if p+size > len(b) {
		return -1
	}
	return p + size
}
