package dubbo

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// Hessian 2 requests carry attachment edits; other serializations, events
// and truncated frames do not.
func TestCarriesHeaders(t *testing.T) {
	frame := func(flags byte) []byte {
		f := make([]byte, HeaderLen)
		f[0], f[1], f[2] = 0xda, 0xbb, flags
		return f
	}
	c := &Codec{}
	for name, tc := range map[string]struct {
		frame []byte
		want  bool
	}{
		"hessian2 request": {frame(0xc2), true},
		"fastjson request": {frame(0xc6), false},
		"event":            {frame(0xe2), false},
		"truncated":        {[]byte{0xda, 0xbb}, false},
	} {
		if got := c.CarriesHeaders(&codec.Message{Frame: tc.frame}); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}
