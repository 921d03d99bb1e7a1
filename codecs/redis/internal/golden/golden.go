// Package golden holds the shapes of the golden files in
// codecs/redis/testdata, shared by their generator (internal/gengolden)
// and the codec's tests.
package golden

import (
	"encoding/hex"
	"encoding/json"
	"unicode/utf8"
)

// File is a session of exchanges on one connection.
type File struct {
	Origin    string     `json:"origin"`
	Exchanges []Exchange `json:"exchanges"`
}

// Exchange is one request and the server's reply to it.
type Exchange struct {
	Name    string `json:"name"`
	Request Wire   `json:"request"`
	// RequestFrames is the number of request frames when not 1 (a whole
	// MULTI ... EXEC transaction).
	RequestFrames int  `json:"request_frames,omitempty"`
	Response      Wire `json:"response"`
	// Frames is the number of reply frames (0: Redis answered nothing,
	// more than 1: pushes, or one reply per channel of SUBSCRIBE).
	Frames int `json:"response_frames"`
	// Method is the command as the server knows it (upper case when
	// COMMAND INFO lists it); empty for raw requests.
	Method string `json:"method,omitempty"`
	// Keys are the command's keys as COMMAND GETKEYS lists them.
	Keys []string `json:"keys,omitempty"`
}

// Commands is COMMAND's key specs.
type Commands struct {
	Origin   string    `json:"origin"`
	Commands []Command `json:"commands"`
}

// Command is one command (or "container|subcommand") of COMMAND.
type Command struct {
	Name    string `json:"name"`
	Arity   int    `json:"arity"`
	First   int    `json:"first_key"`
	Last    int    `json:"last_key"`
	Step    int    `json:"step"`
	Movable bool   `json:"movablekeys,omitempty"`
}

// Clients are recordings of client tools through a relay.
type Clients struct {
	Origin string   `json:"origin"`
	Runs   []Client `json:"runs"`
}

// Client is one run of a tool: what each of its connections sent and
// received.
type Client struct {
	Name     string   `json:"name"`
	Command  []string `json:"command"`
	Requests int      `json:"requests,omitempty"` // the requests the tool sent in all, when known
	Conns    []Conn   `json:"conns"`
}

// Conn is the two byte streams of one connection.
type Conn struct {
	Client Wire `json:"client"`
	Server Wire `json:"server"`
}

// Wire is bytes on the wire: a JSON string when they are UTF-8 (most Redis
// traffic, readable in the file), {"hex": "..."} otherwise.
type Wire []byte

// MarshalJSON implements json.Marshaler.
func (w Wire) MarshalJSON() ([]byte, error) {
	if utf8.Valid(w) {
		return json.Marshal(string(w))
	}
	return json.Marshal(struct {
		Hex string `json:"hex"`
	}{hex.EncodeToString(w)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (w *Wire) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		var h struct {
			Hex string `json:"hex"`
		}
		if err := json.Unmarshal(b, &h); err != nil {
			return err
		}
		d, err := hex.DecodeString(h.Hex)
		*w = d
		return err
	}
	var s string
	err := json.Unmarshal(b, &s)
	*w = Wire(s)
	return err
}
