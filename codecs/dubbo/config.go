package dubbo

import (
	"encoding/json"
	"fmt"

	"github.com/metaproxy/metaproxy/codec"
)

// DefaultMaxFrame is the default largest frame: Dubbo's default payload
// limit of 8 MiB plus the header.
const DefaultMaxFrame = 8<<20 + HeaderLen

// Options configure the codec. Aeraki's DubboCodec config is empty; these
// are metaproxy additions, and the zero value gives the defaults.
type Options struct {
	// MaxFrame is the largest frame accepted, header included, in bytes.
	// Split rejects a frame announcing more with a *codec.ProtocolError,
	// which closes the connection. Zero means DefaultMaxFrame.
	MaxFrame int `json:"max_frame_bytes,omitempty"`
}

// NewFactory validates o and returns a factory of Dubbo codecs.
func NewFactory(o Options) (codec.Factory, error) {
	switch {
	case o.MaxFrame == 0:
		o.MaxFrame = DefaultMaxFrame
	case o.MaxFrame < HeaderLen:
		return nil, fmt.Errorf("%s: max_frame_bytes %d is below the %d-byte header", Name, o.MaxFrame, HeaderLen)
	case uint64(o.MaxFrame) > HeaderLen+1<<32-1:
		return nil, fmt.Errorf("%s: max_frame_bytes %d exceeds what a 32-bit body length can announce", Name, o.MaxFrame)
	}
	return factory(o), nil
}

type factory Options

// NewCodec returns a codec for one connection.
func (f factory) NewCodec() codec.Codec { return &Codec{maxFrame: f.MaxFrame} }

// newFromJSON is the registry's constructor: config is null, {} or
// {"max_frame_bytes": N}; unknown fields are an error.
func newFromJSON(config json.RawMessage) (codec.Factory, error) {
	var o Options
	if err := codec.DecodeConfig(config, &o); err != nil {
		return nil, fmt.Errorf("%s: config: %w", Name, err)
	}
	return NewFactory(o)
}

func init() {
	codec.MustRegister(codec.Protocol{
		Name:    Name,
		Aliases: []string{"aeraki.meta_protocol.codec.dubbo"},
		New:     newFromJSON,
	})
}
