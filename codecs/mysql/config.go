package mysql

import (
	"encoding/json"
	"fmt"

	"github.com/metaproxy/metaproxy/codec"
)

// Name is the codec's name in a MetaProtocolProxy codec config; Alias is its
// short name.
const (
	Name  = "metaproxy.codec.mysql"
	Alias = "mysql"
)

// DefaultMaxFrame is the default largest message: 16 MiB of payload (the
// default max_allowed_packet of MariaDB, and of MySQL before 8.0) and the
// two packet headers such a message needs (0xFFFFFF bytes in the first
// packet, the last byte in a second one).
const DefaultMaxFrame = 16<<20 + 2*headerLen

const minFrame = 256

// Options configure the codec; the zero value gives the defaults.
type Options struct {
	// MaxFrame is the largest message accepted, in bytes, all its packets
	// and their headers included. Split rejects a longer one with a
	// *codec.ProtocolError (the connection is closed; a client first gets
	// ER_NET_PACKET_TOO_LARGE, see RejectReply). Zero means
	// DefaultMaxFrame; at least 256.
	MaxFrame int `json:"max_frame_bytes,omitempty"`
}

// Factory makes MySQL codecs. It is safe for concurrent use.
type Factory struct{ o Options }

var (
	_ codec.Factory = (*Factory)(nil)
	_ codec.Capable = (*Factory)(nil)
	_ codec.Sided   = (*Factory)(nil)
)

// NewFactory validates o and returns a factory of MySQL codecs.
func NewFactory(o Options) (*Factory, error) {
	switch {
	case o.MaxFrame == 0:
		o.MaxFrame = DefaultMaxFrame
	case o.MaxFrame < minFrame:
		return nil, fmt.Errorf("%s: max_frame_bytes %d is below %d", Name, o.MaxFrame, minFrame)
	}
	return &Factory{o: o}, nil
}

// Options returns the factory's options, defaults filled in.
func (f *Factory) Options() Options { return f.o }

// Capabilities declares that the server speaks first (its greeting) and
// that a client connection is bound to one server connection.
func (f *Factory) Capabilities() codec.Capabilities {
	return codec.Capabilities{ServerFirst: true}
}

// NewCodec returns a downstream codec: MySQL's client and server packets
// cannot be told apart without the side, and hosts that do not say which
// side they parse are parsing clients.
func (f *Factory) NewCodec() codec.Codec { return f.NewCodecFor(codec.SideDownstream) }

// NewSidedCodec implements codec.Sided.
func (f *Factory) NewSidedCodec(side codec.Side) codec.Codec { return f.NewCodecFor(side) }

// NewCodecFor returns a codec for a new connection of side:
// codec.SideUpstream reads a server (from its greeting on),
// codec.SideDownstream and codec.SideBoth a client (from its handshake
// response on, the greeting having been sent by the server or the proxy).
func (f *Factory) NewCodecFor(side codec.Side) *Codec {
	if side != codec.SideUpstream {
		side = codec.SideDownstream
	}
	return &Codec{o: f.o, side: side}
}

// newFromJSON is the registry's constructor: config is null, {} or an
// object of Options' fields; unknown fields are an error.
func newFromJSON(config json.RawMessage) (codec.Factory, error) {
	var o Options
	if err := codec.DecodeConfig(config, &o); err != nil {
		return nil, fmt.Errorf("%s: config: %w", Name, err)
	}
	return NewFactory(o)
}

func init() {
	codec.MustRegister(codec.Protocol{Name: Name, Aliases: []string{Alias}, New: newFromJSON})
}
