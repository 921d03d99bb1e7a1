// Package golden holds the shape of the golden files in
// codecs/mysql/testdata, shared by their generator (internal/gengolden, a
// module of its own) and the codec's tests.
package golden

import (
	"encoding/hex"
	"encoding/json"
)

// File is the recordings of one run of the generator.
type File struct {
	Origin string `json:"origin"`
	Conns  []Conn `json:"conns"`
}

// Conn is one connection recorded by a relay: the two byte streams, what
// the client was told to do, and what the server and the client library
// said about it — never what the codec says.
type Conn struct {
	Name   string `json:"name"`
	Client string `json:"client"` // the tool that spoke: go-sql-driver/mysql, mariadb, ...
	// Upstream is set for the server half of a proxied connection (the
	// proxy's packets to the server in ClientBytes).
	Upstream bool `json:"upstream,omitempty"`
	// User, Password and Database are what the client logged in with.
	User     string `json:"user"`
	Password string `json:"password"`
	Database string `json:"database,omitempty"`
	// ConnID and Version are what the greeting must say: the server's
	// CONNECTION_ID() (0: not known, the login failed) and VERSION(), or
	// the proxy's own for the client half of a proxied connection.
	ConnID  uint32 `json:"conn_id,omitempty"`
	Version string `json:"version"`
	// Requests are the client's messages in order and what each must
	// decode to.
	Requests []Request `json:"requests"`
	// Errors are the error codes the client library reported, in order.
	Errors []uint16 `json:"errors,omitempty"`
	// TLS: the client sent an SSLRequest; the rest of both streams is TLS.
	TLS bool `json:"tls,omitempty"`
	// Compressed: the client asked for CLIENT_COMPRESS; from the first
	// command on, both streams are compressed packets.
	Compressed  bool `json:"compressed,omitempty"`
	ClientBytes Wire `json:"client_bytes"`
	ServerBytes Wire `json:"server_bytes"`
}

// Request is one client message.
type Request struct {
	Command   string `json:"command"`             // COM_QUERY, ..., HandshakeResponse
	Statement string `json:"statement,omitempty"` // for COM_QUERY and COM_STMT_PREPARE
	Database  string `json:"database,omitempty"`  // the current database once it is sent
	SQL       string `json:"sql,omitempty"`       // the statement, for readers
}

// Wire is bytes on the wire, as a hex string.
type Wire []byte

// MarshalJSON implements json.Marshaler.
func (w Wire) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(w)) }

// UnmarshalJSON implements json.Unmarshaler.
func (w *Wire) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	*w = d
	return err
}

// Packets splits b into packets (header included), without joining
// continuations; what does not fill a packet is returned last.
func Packets(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 4 {
		n := 4 + (int(b[0]) | int(b[1])<<8 | int(b[2])<<16)
		if n > len(b) {
			break
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}
