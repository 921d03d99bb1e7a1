package thrift

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec/codectest"
)

// fuzzConfigs are the configurations FuzzDecode cycles through: detection,
// every pinned transport × protocol, and a small size limit.
var fuzzConfigs = []Config{
	{},
	{Transport: "framed", Protocol: "binary"},
	{Transport: "framed", Protocol: "compact"},
	{Transport: "unframed", Protocol: "binary"},
	{Transport: "unframed", Protocol: "compact"},
	{Transport: "header", Protocol: "binary"},
	{Transport: "header", Protocol: "compact"},
	{Transport: "framed_header", Protocol: "binary"},
	{Transport: "framed_header", Protocol: "compact"},
	{Protocol: "binary"},
	{MaxFrameBytes: 64},
}

// FuzzDecode runs the conformance kit's fuzz check (no panics, no frame
// longer than the input, every accepted frame re-encodes to itself, error
// replies and edits do not panic) under the configuration picked by mode.
// The seeds are the golden frames of every transport × protocol (THeader
// inside framed included), and some with the largest frame lengths.
func FuzzDecode(f *testing.F) {
	for _, w := range wires {
		reqs, rsps := w.golden(f)
		for i, c := range fuzzConfigs {
			if c.Transport != "" && (c.Transport != w.transport.String() || c.Protocol != w.protocol.String()) {
				continue
			}
			for _, fr := range append(reqs, rsps...) {
				f.Add(byte(i), fr)
			}
		}
		// Frames declaring the largest lengths, for RejectReply.
		if w.transport != TransportUnframed {
			for _, n := range []uint32{0x7fffffff, 0x80000000} {
				f.Add(byte(0), withLength(reqs[0], w.transport, n))
			}
		}
	}
	for _, g := range garbage {
		f.Add(byte(0), g)
	}
	factories := make([]*Factory, len(fuzzConfigs))
	for i, c := range fuzzConfigs {
		factories[i] = mustFactory(f, c)
	}
	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		codectest.FuzzDecode(t, factories[int(mode)%len(factories)], data)
	})
}
