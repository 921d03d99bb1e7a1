package trpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/metaproxy/metaproxy/codec"
)

// DefaultMaxFrame is the default largest frame, head included: trpc-go's
// DefaultMaxFrameSize, 10 MiB.
const DefaultMaxFrame = 10 << 20

// Options configure the codec. Aeraki's TrpcCodec config is empty; these
// are metaproxy additions, and the zero value gives the defaults.
type Options struct {
	// MaxFrame is the largest frame accepted, head included, in bytes.
	// Split rejects a frame announcing more with a *codec.ProtocolError,
	// which closes the connection (after a native error reply, see
	// RejectReply). Zero means DefaultMaxFrame.
	MaxFrame int `json:"max_frame_bytes,omitempty"`
}

// NewFactory validates o and returns a factory of tRPC codecs.
func NewFactory(o Options) (codec.Factory, error) {
	switch {
	case o.MaxFrame == 0:
		o.MaxFrame = DefaultMaxFrame
	case o.MaxFrame < HeadLen:
		return nil, fmt.Errorf("%s: max_frame_bytes %d is below the %d-byte head", Name, o.MaxFrame, HeadLen)
	case uint64(o.MaxFrame) > math.MaxUint32:
		return nil, fmt.Errorf("%s: max_frame_bytes %d exceeds what a 32-bit total length can announce", Name, o.MaxFrame)
	}
	return factory(o), nil
}

type factory Options

// NewCodec returns a codec for one connection.
func (f factory) NewCodec() codec.Codec { return &Codec{maxFrame: f.MaxFrame} }

// Capabilities declares tRPC's streams: the engine routes a stream at its
// INIT and binds it to one upstream connection until it ends.
func (f factory) Capabilities() codec.Capabilities { return codec.Capabilities{Streams: true} }

// newFromJSON is the registry's constructor: config is null, {} or
// {"max_frame_bytes": N}; unknown fields are an error.
func newFromJSON(config json.RawMessage) (codec.Factory, error) {
	var o Options
	if len(bytes.TrimSpace(config)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(config))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			return nil, fmt.Errorf("%s: config: %w", Name, err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, fmt.Errorf("%s: config: trailing data after the JSON object", Name)
		}
	}
	return NewFactory(o)
}

func init() {
	codec.MustRegister(codec.Protocol{
		Name:    Name,
		Aliases: []string{"aeraki.meta_protocol.codec.trpc"},
		New:     newFromJSON,
	})
}
