package redis

import (
	"encoding/json"
	"fmt"

	"github.com/metaproxy/metaproxy/codec"
)

// Name is the codec's name in a MetaProtocolProxy codec config; Alias is its
// short name.
const (
	Name  = "metaproxy.codec.redis"
	Alias = "redis"
)

// Defaults and hard limits of Options.
const (
	// DefaultMaxFrame is the default largest frame: 64 MiB. Redis' own
	// proto-max-bulk-len is 512 MiB; a proxy buffering whole frames wants
	// less by default.
	DefaultMaxFrame = 64 << 20
	// DefaultMaxDepth is the default deepest nesting of aggregates. Redis'
	// own replies nest at most about 7 deep (COMMAND DOCS).
	DefaultMaxDepth = 32
	// DefaultMaxElements is the default largest announced length of one
	// aggregate (pairs for a map or an attribute).
	DefaultMaxElements = 1 << 24
	// MaxInline is the longest inline command line, Redis'
	// PROTO_INLINE_MAX_SIZE.
	MaxInline = 64 << 10

	maxDepthLimit = 1024
	minFrame      = 16
)

// Options configure the codec; the zero value gives the defaults.
type Options struct {
	// MaxFrame is the largest frame accepted, in bytes. Split rejects a
	// frame that needs more with a *codec.ProtocolError (the connection is
	// closed; a client first gets "-ERR Protocol error: ..."). Zero means
	// DefaultMaxFrame.
	MaxFrame int `json:"max_frame_bytes,omitempty"`
	// MaxDepth is the deepest nesting of aggregates (arrays, maps, sets,
	// pushes, attributes); a top-level array is depth 1. Zero means
	// DefaultMaxDepth; at most 1024.
	MaxDepth int `json:"max_depth,omitempty"`
	// MaxElements is the largest element count an aggregate may announce.
	// Zero means DefaultMaxElements.
	MaxElements int `json:"max_elements,omitempty"`
	// DownstreamAuthPassword, when set, is the password clients must give
	// with AUTH before any other command (Envoy redis_proxy's
	// downstream_auth_password; see LocalAnswer).
	DownstreamAuthPassword string `json:"downstream_auth_password,omitempty"`
}

// Factory makes Redis codecs. It is safe for concurrent use.
type Factory struct{ o Options }

var (
	_ codec.Factory = (*Factory)(nil)
	_ codec.Capable = (*Factory)(nil)
)

// NewFactory validates o and returns a factory of Redis codecs.
func NewFactory(o Options) (*Factory, error) {
	switch {
	case o.MaxFrame == 0:
		o.MaxFrame = DefaultMaxFrame
	case o.MaxFrame < minFrame:
		return nil, fmt.Errorf("%s: max_frame_bytes %d is below %d", Name, o.MaxFrame, minFrame)
	}
	switch {
	case o.MaxDepth == 0:
		o.MaxDepth = DefaultMaxDepth
	case o.MaxDepth < 1 || o.MaxDepth > maxDepthLimit:
		return nil, fmt.Errorf("%s: max_depth %d is not in [1, %d]", Name, o.MaxDepth, maxDepthLimit)
	}
	switch {
	case o.MaxElements == 0:
		o.MaxElements = DefaultMaxElements
	case o.MaxElements < 1:
		return nil, fmt.Errorf("%s: max_elements %d is below 1", Name, o.MaxElements)
	}
	return &Factory{o: o}, nil
}

// Options returns the factory's options, defaults filled in.
func (f *Factory) Options() Options { return f.o }

// NewCodec returns a codec for one connection that tells requests from
// responses by their shape until it learns its side (see Codec).
func (f *Factory) NewCodec() codec.Codec { return f.NewCodecFor(codec.SideBoth) }

// NewCodecFor returns a codec for one connection of a known side:
// codec.SideDownstream reads only requests (as redis-server reads them),
// codec.SideUpstream only responses. codec.SideBoth is NewCodec's codec.
func (f *Factory) NewCodecFor(side codec.Side) *Codec {
	return &Codec{o: f.o, side: side}
}

// Capabilities declares that Redis responses carry no id and come back in
// request order. The engine refuses such a codec until its ordered mode
// exists.
func (f *Factory) Capabilities() codec.Capabilities {
	return codec.Capabilities{OrderedResponses: true}
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
