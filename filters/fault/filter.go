// Package fault is the fault injection filter (metaproxy.filters.fault),
// shaped like Envoy's HTTP fault filter: it delays matching requests for a
// fixed time, or answers them with a protocol-native local error, each with
// a configured probability, at most max_active_faults at once across the
// listener. See README.md.
//
// The order is Envoy's: the delay is decided first; a delayed request may
// then be aborted when its delay is over (the abort's chance is drawn
// then), and a request that is not delayed may be aborted at once. A delay
// pauses the exchange and arms a timer on Env.Clock: no goroutine waits,
// and the connection goes on serving other requests.
package fault

import (
	"encoding/json"

	"github.com/metaproxy/metaproxy/filter"
)

// Name is the filter's name in meta_protocol_filters; Alias is its short
// name.
const (
	Name  = "metaproxy.filters.fault"
	Alias = "fault"
)

func init() {
	filter.MustRegister(filter.Definition{Name: Name, Aliases: []string{Alias}, New: New})
}

// activeSlot holds, in an exchange that got a fault, the gauge it was
// counted in, so that OnComplete takes it out again: a fault is active
// from its injection until its exchange ends, as in Envoy. Every fault
// filter of a listener shares the gauge, and an exchange counts once.
var activeSlot = filter.NewSlot[*filter.Stat]("fault.active")

// Filter is a configured fault filter.
type Filter struct {
	s     *settings
	clock filter.Clock
	rand  filter.Rand
	// Stats, as Envoy's fault filter names them, below the listener's
	// stat prefix.
	delays, aborts, active, overflow *filter.Stat
}

// New builds the filter of config (a Fault) in env.
func New(config json.RawMessage, env filter.Env) (filter.Filter, error) {
	s, err := parse(config)
	if err != nil {
		return nil, err
	}
	env = env.WithDefaults()
	p := "fault."
	if env.StatPrefix != "" {
		p = env.StatPrefix + ".fault."
	}
	f := &Filter{s: s, clock: env.Clock, rand: env.Rand,
		delays: env.Stats.Counter(p + "delays_injected"), aborts: env.Stats.Counter(p + "aborts_injected"),
		active: env.Stats.Gauge(p + "active_faults"), overflow: env.Stats.Counter(p + "faults_overflow")}
	if s.delay > 0 && s.delayPctUnset {
		env.Logger.Warn("delay.percentage is unset: 0 % of requests are delayed (Envoy's default); set it")
	}
	if s.abort && s.abortPctUnset {
		env.Logger.Warn("abort.percentage is unset: 0 % of requests are aborted (Envoy's default); set it")
	}
	if s.maxActive == 0 {
		env.Logger.Warn("max_active_faults is 0: no fault is ever injected")
	}
	return f, nil
}

// OnRequest implements filter.Filter.
func (f *Filter) OnRequest(x *filter.Exchange) filter.Status {
	s := f.s
	if len(s.match) > 0 && !s.match.Match(&x.Request.Meta) {
		return filter.Continue
	}
	delay := s.delay > 0 && filter.Chance(f.rand, s.delayNum, s.delayDen)
	if !delay && !(s.abort && filter.Chance(f.rand, s.abortNum, s.abortDen)) {
		return filter.Continue
	}
	if !f.activate(x) {
		f.overflow.Inc()
		return filter.Continue
	}
	if !delay {
		return f.abort(x)
	}
	f.delays.Inc()
	x.Outcome.Flags |= filter.FlagDelayInjected
	if s.abort && s.abortNum > 0 {
		f.clock.AfterFunc(s.delay, func() { f.afterDelay(x) })
	} else {
		f.clock.AfterFunc(s.delay, x.Resume)
	}
	return filter.Pause
}

// afterDelay ends the delay of x: an abort may follow it, as in Envoy.
// It runs in the timer's goroutine, after OnRequest returned Pause. An
// exchange whose client went away or whose deadline passed meanwhile is
// still resumed: the proxy ends it then (its late Resume is expected).
func (f *Filter) afterDelay(x *filter.Exchange) {
	if filter.Chance(f.rand, f.s.abortNum, f.s.abortDen) {
		f.abort(x)
	}
	x.Resume()
}

func (f *Filter) abort(x *filter.Exchange) filter.Status {
	f.aborts.Inc()
	x.Outcome.Flags |= filter.FlagFaultInjected
	return x.Reply(f.s.abortType, "metaproxy: fault injected: abort (%s)", f.s.abortType)
}

// activate counts a fault on x, unless max_active_faults are in progress
// already. An exchange a fault filter of the listener counted already is
// not counted again (and not refused).
func (f *Filter) activate(x *filter.Exchange) bool {
	if g, _ := activeSlot.Get(x); g != nil {
		return true
	}
	f.active.Add(1)
	if lim := f.s.maxActive; lim >= 0 && f.active.Value() > lim {
		// Never over the limit; under contention a fault may be refused
		// although the one that raced it then went back out.
		f.active.Add(-1)
		return false
	}
	activeSlot.Set(x, f.active)
	return true
}

// OnComplete implements filter.Completer: the fault of x, if it had one,
// is over.
func (f *Filter) OnComplete(x *filter.Exchange) {
	if g, _ := activeSlot.Get(x); g != nil {
		g.Add(-1)
		activeSlot.Set(x, nil)
	}
}
