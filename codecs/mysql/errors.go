package mysql

import (
	"encoding/binary"
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

// Server error codes the codec writes (MariaDB's and MySQL's ER_* numbers).
const (
	erConCount          = 1040 // ER_CON_COUNT_ERROR, 08004: Too many connections
	erDBAccessDenied    = 1044 // ER_DBACCESS_DENIED_ERROR, 42000
	erAccessDenied      = 1045 // ER_ACCESS_DENIED_ERROR, 28000
	erUnknownCom        = 1047 // ER_UNKNOWN_COM_ERROR, 08S01: Unknown command
	erServerShutdown    = 1053 // ER_SERVER_SHUTDOWN, 08S01
	erUnknown           = 1105 // ER_UNKNOWN_ERROR, HY000
	erTableAccessDenied = 1142 // ER_TABLEACCESS_DENIED_ERROR, 42000
	erNetPacketTooLarge = 1153 // ER_NET_PACKET_TOO_LARGE, 08S01
	erHostNotPrivileged = 1130 // ER_HOST_NOT_PRIVILEGED, HY000: Host is not allowed to connect
	erMalformedPacket   = 1835 // ER_MALFORMED_PACKET, HY000
	erStatementTimeout  = 1969 // ER_STATEMENT_TIMEOUT (MariaDB), 70100
)

// errorCode maps a local error to an error code and SQLSTATE; command is
// the request's command metadata (the handshake response and COM_INIT_DB
// get the codes a server gives there). The table is in the README.
func errorCode(t codec.ErrorType, command string) (uint16, string) {
	handshake := command == CmdHandshakeResponse || command == CmdAuthSwitchResponse
	switch t {
	case codec.ErrUnauthorized:
		switch {
		case handshake:
			return erAccessDenied, "28000"
		case command == "COM_INIT_DB":
			return erDBAccessDenied, "42000"
		}
		return erTableAccessDenied, "42000"
	case codec.ErrRouteNotFound:
		if handshake {
			// No server serves this user or database: what a client
			// sees from a server that does not know the user.
			return erAccessDenied, "28000"
		}
		return erUnknown, "HY000"
	case codec.ErrOverloaded:
		return erConCount, "08004"
	case codec.ErrNoHealthyUpstream, codec.ErrUnavailable:
		return erServerShutdown, "08S01"
	case codec.ErrTimeout:
		return erStatementTimeout, "70100"
	case codec.ErrUnknownMethod:
		return erUnknownCom, "08S01"
	case codec.ErrBadRequest:
		return erMalformedPacket, "HY000"
	}
	// ErrClusterNotFound, ErrBadResponse, ErrInternal and anything new.
	return erUnknown, "HY000"
}

// RefuseConnection implements codec.ConnectionRefuser: the ERR packet
// (sequence id 0, no SQLSTATE) a server sends in place of its greeting,
// for a client connection the engine cannot bind to a server. A
// connection no route accepts (or policy refuses) gets
// ER_HOST_NOT_PRIVILEGED, as from a server that does not accept the
// client's host; other errors the codes of ErrorReply.
func (c *Codec) RefuseConnection(dst []byte, err *codec.Error) []byte {
	code := uint16(erHostNotPrivileged)
	switch err.Type {
	case codec.ErrRouteNotFound, codec.ErrUnauthorized:
	default:
		code, _ = errorCode(err.Type, "")
	}
	return AppendErr(dst, 0, code, "", errMessage(err))
}

// errMessage is the text of a local error: "metaproxy: <type>: <message>".
func errMessage(err *codec.Error) string {
	return "metaproxy: " + err.Type.String() + ": " + strings.TrimPrefix(err.Message, "metaproxy: ")
}

// AppendErr appends an ERR_Packet with sequence id seq: 0xFF, code,
// '#' and the five-character sqlState (padded with '0' or cut), and msg
// (cut to fit one packet). An empty sqlState writes the form without
// SQLSTATE, which servers send before the handshake (the client's
// capabilities are not known yet).
func AppendErr(dst []byte, seq byte, code uint16, sqlState, msg string) []byte {
	dst, off := beginPacket(dst, seq)
	dst = binary.LittleEndian.AppendUint16(append(dst, 0xFF), code)
	if sqlState != "" {
		dst = append(dst, '#')
		for i := 0; i < 5; i++ {
			if i < len(sqlState) {
				dst = append(dst, sqlState[i])
			} else {
				dst = append(dst, '0')
			}
		}
	}
	if max := maxPayload - 1 - 9; len(msg) > max {
		msg = msg[:max]
	}
	return endPacket(append(dst, msg...), off)
}

// errStatus is the Status of the ERR payload p: StatusServerFailure for
// the codes saying the server could not serve at all (out of resources,
// shutting down, connection limits, network errors, a killed
// connection), which another server might serve; StatusError for the
// rest — the server's own answer to the statement (a syntax error, an
// unknown table, access denied, a deadlock), which no other server would
// answer differently.
func errStatus(p []byte) codec.Status {
	if len(p) < 3 {
		return codec.StatusServerFailure
	}
	switch binary.LittleEndian.Uint16(p[1:]) {
	case 1021, // ER_DISK_FULL
		1030,             // ER_GET_ERRNO: storage engine error
		1037, 1038, 1041, // ER_OUTOFMEMORY, ER_OUT_OF_SORTMEMORY, ER_OUT_OF_RESOURCES
		erConCount, erServerShutdown, // 1040, 1053
		1135,                                     // ER_CANT_CREATE_THREAD
		1152, 1154, 1155, 1158, 1159, 1160, 1161, // ER_ABORTING_CONNECTION, ER_NET_*
		1927: // ER_CONNECTION_KILLED
		return codec.StatusServerFailure
	}
	return codec.StatusError
}
