//go:build cgo && abitest

package main

// Test-only additions, built with `GO_TAGS=abitest plugin/build.sh`: a
// filter and a codec that panic on demand, to show that a panic leaves
// Envoy and the other connections alive, and a switch that runs the garbage
// collector often, to show that closed connections release Envoy's objects.

import (
	"bytes"
	"encoding/json"
	"os"
	"runtime"
	"time"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
)

// Names of the test-only filter and codec, and the triggers of their panics.
const (
	panicFilter  = "abitest.panic"
	panicCodec   = "abitest.panicky_dubbo"
	panicMethod  = "panicNow"   // a request for this method makes the filter panic
	panicPayload = "codecPanic" // a frame holding these bytes makes the codec panic
)

func init() {
	filter.MustRegister(filter.Definition{
		Name: panicFilter,
		New: func(json.RawMessage, filter.Env) (filter.Filter, error) {
			return filter.Func(func(x *filter.Exchange) filter.Status {
				if x.Request.Meta.Value(codec.KeyMethod) == panicMethod {
					panic("abitest: the filter panics as asked")
				}
				return filter.Continue
			}), nil
		},
	})
	codec.MustRegister(codec.Protocol{
		Name: panicCodec,
		New: func(cfg json.RawMessage) (codec.Factory, error) {
			dubbo, _ := codec.Lookup("dubbo")
			f, err := dubbo.New(cfg)
			if err != nil {
				return nil, err
			}
			return codec.FactoryFunc(func() codec.Codec { return panicky{f.NewCodec()} }), nil
		},
	})
	if d, err := time.ParseDuration(os.Getenv("METAPROTOCOL_TEST_GC")); err == nil && d > 0 {
		go func() {
			for range time.Tick(d) {
				runtime.GC()
			}
		}()
	}
}

// panicky is the Dubbo codec, except that Decode panics on frames holding
// panicPayload.
type panicky struct{ codec.Codec }

func (p panicky) Decode(frame []byte, msg *codec.Message) error {
	if bytes.Contains(frame, []byte(panicPayload)) {
		panic("abitest: the codec panics as asked")
	}
	return p.Codec.Decode(frame, msg)
}
