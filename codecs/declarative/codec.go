// Package declarative is a codec whose protocol is described entirely in
// its configuration: a fixed header of named fields, framing by a length
// field or a delimiter, regions (protobuf, key/value pairs, JSON, raw)
// after the header, rules that give a frame's kind, id and status, the
// metadata it exposes, where header edits go, and templates of the error
// and heartbeat replies. README.md is the guide to the description.
//
// The description is validated and compiled into flat tables when the
// codec is configured. Decoding reads the header in place and walks the
// regions once; metadata values alias the frame, and a frame decodes
// without allocating in the common case.
package declarative

import (
	"encoding/json"
	"fmt"

	"github.com/metaproxy/metaproxy/codec"
)

// Name is the codec's registered name; "declarative" is its alias.
const Name = "metaproxy.codec.declarative"

// Factory makes the codecs of one compiled description. It is safe for
// concurrent use.
type Factory struct{ p *protocol }

// NewFactory validates and compiles d. Errors name the offending element
// of the description.
func NewFactory(d *Description) (*Factory, error) {
	p, err := compile(d)
	if err != nil {
		return nil, err
	}
	return &Factory{p: p}, nil
}

// Parse decodes a description from its JSON form strictly: unknown
// fields and trailing data are errors.
func Parse(config json.RawMessage) (*Description, error) {
	var d Description
	if err := codec.DecodeConfig(config, &d); err != nil {
		return nil, fmt.Errorf("declarative: config: %w", err)
	}
	return &d, nil
}

// NewCodec returns a codec for one connection.
func (f *Factory) NewCodec() codec.Codec { return newCodec(f.p) }

// Protocol returns the description's protocol name.
func (f *Factory) Protocol() string { return f.p.name }

func newCodec(p *protocol) *Codec {
	return &Codec{p: p, slots: make([]slot, len(p.slots)), spans: make([]span, len(p.regions))}
}

// Codec implements codec.Codec for one described protocol. A Codec is
// used by one connection at a time.
type Codec struct {
	p       *protocol
	slots   []slot
	spans   []span
	scanned int // delimiter framing: bytes searched without a delimiter
}

var (
	_ codec.Codec         = (*Codec)(nil)
	_ codec.Rejecter      = (*Codec)(nil)
	_ codec.HeaderCarrier = (*Codec)(nil)
)

// CarriesHeaders reports whether the description has a header target
// for m's kind.
func (c *Codec) CarriesHeaders(m *codec.Message) bool {
	return int(m.Kind) < numKinds && c.p.target[m.Kind].src != srcNone
}

func newFromJSON(config json.RawMessage) (codec.Factory, error) {
	d, err := Parse(config)
	if err != nil {
		return nil, err
	}
	return NewFactory(d)
}

func init() {
	codec.MustRegister(codec.Protocol{Name: Name, Aliases: []string{"declarative"}, New: newFromJSON})
}
