package fault

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/api/envoy"
	faultv1 "github.com/metaproxy/metaproxy/api/filters/fault/v1"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/router"
)

// abortTypes are the local error types an abort may name, by the names of
// codec.ErrorType's String.
var abortTypes = []codec.ErrorType{codec.ErrUnavailable, codec.ErrOverloaded, codec.ErrTimeout,
	codec.ErrInternal, codec.ErrUnauthorized, codec.ErrUnknownMethod}

// settings is a checked Fault.
type settings struct {
	match router.Matchers

	delay         time.Duration // 0: no delay configured
	delayNum      uint64
	delayDen      uint64
	abort         bool
	abortType     codec.ErrorType
	abortNum      uint64
	abortDen      uint64
	maxActive     int64 // < 0: no limit
	delayPctUnset bool
	abortPctUnset bool
}

// parse decodes and checks a Fault (canonical proto JSON, as the host hands
// filter configs over; unknown fields are errors): at least one of delay
// and abort, delay.fixed_delay set and greater than 0, abort.error naming
// a known error type, a match that compiles.
func parse(js json.RawMessage) (*settings, error) {
	if len(js) == 0 {
		return nil, fmt.Errorf("a Fault config is required (delay or abort)")
	}
	c := &faultv1.Fault{}
	if err := api.Unmarshal(js, c); err != nil {
		return nil, err
	}
	if c.GetDelay() == nil && c.GetAbort() == nil {
		return nil, fmt.Errorf("delay or abort is required")
	}
	s := &settings{maxActive: -1}
	if d := c.GetDelay(); d != nil {
		fd := d.GetFixedDelay()
		if fd == nil {
			return nil, fmt.Errorf("delay.fixed_delay: value is required")
		}
		if err := fd.CheckValid(); err != nil {
			return nil, fmt.Errorf("delay.fixed_delay: %v", err)
		}
		if s.delay = fd.AsDuration(); s.delay <= 0 {
			return nil, fmt.Errorf("delay.fixed_delay: %v: value must be greater than 0", s.delay)
		}
		var err error
		if s.delayNum, s.delayDen, err = fraction(d.GetPercentage(), "delay.percentage"); err != nil {
			return nil, err
		}
		s.delayPctUnset = d.GetPercentage() == nil
	}
	if a := c.GetAbort(); a != nil {
		if a.GetError() == "" {
			return nil, fmt.Errorf("abort.error: value is required (one of %s)", abortTypeNames())
		}
		t, ok := abortType(a.GetError())
		if !ok {
			return nil, fmt.Errorf("abort.error: unknown error type %q (known: %s)", a.GetError(), abortTypeNames())
		}
		s.abort, s.abortType = true, t
		var err error
		if s.abortNum, s.abortDen, err = fraction(a.GetPercentage(), "abort.percentage"); err != nil {
			return nil, err
		}
		s.abortPctUnset = a.GetPercentage() == nil
	}
	if c.GetMatch() != nil {
		m, err := router.CompileMatch(c.GetMatch())
		if err != nil {
			return nil, fmt.Errorf("match.%w", err)
		}
		s.match = m
	}
	if m := c.GetMaxActiveFaults(); m != nil {
		s.maxActive = int64(m.GetValue())
	}
	return s, nil
}

// fraction returns a FractionalPercent as numerator and denominator; unset
// is 0 %, as Envoy's fault filter has it.
func fraction(fp *envoy.FractionalPercent, path string) (num, den uint64, err error) {
	switch fp.GetDenominator() {
	case envoy.FractionalPercent_HUNDRED:
		den = 100
	case envoy.FractionalPercent_TEN_THOUSAND:
		den = 1e4
	case envoy.FractionalPercent_MILLION:
		den = 1e6
	default:
		return 0, 0, fmt.Errorf("%s.denominator: unknown denominator %d", path, fp.GetDenominator())
	}
	return uint64(fp.GetNumerator()), den, nil
}

func abortType(name string) (codec.ErrorType, bool) {
	for _, t := range abortTypes {
		if t.String() == name {
			return t, true
		}
	}
	return 0, false
}

func abortTypeNames() string {
	names := make([]string, len(abortTypes))
	for i, t := range abortTypes {
		names[i] = t.String()
	}
	return strings.Join(names, ", ")
}
