package thrift

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// Only THeader messages carry header edits: what Encode accepts.
func TestCarriesHeaders(t *testing.T) {
	c := &Codec{}
	for v, want := range map[uint16]bool{
		Variant(TransportHeader, ProtocolBinary):        true,
		Variant(TransportFramedHeader, ProtocolCompact): true,
		Variant(TransportFramed, ProtocolBinary):        false,
		Variant(TransportUnframed, ProtocolBinary):      false,
		0xffff: false,
	} {
		if got := c.CarriesHeaders(&codec.Message{Variant: v}); got != want {
			t.Errorf("variant %#x: %v, want %v", v, got, want)
		}
	}
}
