// Package accesslog writes access logs: a MetaProtocolProxy's access_log
// (Envoy's AccessLog with the file, stdout and stderr loggers), one line
// per request on every ending (answered, local error, oneway, client gone,
// timeout), in Envoy's text or JSON formats with Envoy's command
// operators. See README.md.
//
// Lines never block a connection: OnComplete formats into a pooled buffer
// on the calling goroutine and hands it to the writer of the output, one
// goroutine per file shared by every logger of the process, through a
// bounded queue; a full queue drops the line and counts it in
// <stat_prefix>.access_log.dropped. The writer batches its writes.
package accesslog

import (
	"fmt"
	"sync"

	"github.com/metaproxy/metaproxy/api/envoy"
	"github.com/metaproxy/metaproxy/filter"
)

// Name is the access logger's name in the filter chain.
const Name = "access_log"

// Filter writes the access log lines of one listener: OnRequest lets
// every request through, OnComplete writes one line per configured
// logger, Close releases the outputs (the last user of a file flushes and
// closes it).
type Filter struct {
	protocol string
	sinks    []sink
	dropped  *filter.Stat

	closeOnce sync.Once
}

type sink struct {
	text *textFormat
	json *jsonFormat
	omit bool
	w    *writer
}

// New builds the access logger of logs (a MetaProtocolProxy's access_log)
// for a listener of protocol (the %PROTOCOL% value) in env.
func New(logs []*envoy.AccessLog, protocol string, env filter.Env) (*Filter, error) {
	cfgs, err := parse(logs)
	if err != nil {
		return nil, err
	}
	return build(cfgs, protocol, env, nil)
}

// build opens the outputs of cfgs with open (openPath when nil).
func build(cfgs []logConfig, protocol string, env filter.Env, open opener) (*Filter, error) {
	env = env.WithDefaults()
	if open == nil {
		open = openPath
	}
	f := &Filter{protocol: protocol, dropped: env.Stats.Counter(env.StatPrefix + ".access_log.dropped")}
	for _, c := range cfgs {
		w, err := acquire(c.path, open, env.Logger)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("%s: opening %q: %w", c.where, c.path, err)
		}
		f.sinks = append(f.sinks, sink{text: c.text, json: c.json, omit: c.omit, w: w})
	}
	return f, nil
}

// OnRequest implements filter.Filter: every request goes on.
func (f *Filter) OnRequest(*filter.Exchange) filter.Status { return filter.Continue }

// OnComplete implements filter.Completer: it writes the exchange's line to
// every output, or counts it dropped when an output's queue is full.
func (f *Filter) OnComplete(x *filter.Exchange) {
	c := ctx{x: x, protocol: f.protocol}
	for i := range f.sinks {
		s := &f.sinks[i]
		l := getLine()
		if s.json != nil {
			l.b, l.tmp = s.json.appendJSON(l.b, l.tmp, &c, s.omit)
			l.b = append(l.b, '\n')
		} else {
			dash := "-"
			if s.omit {
				dash = ""
			}
			l.b = s.text.appendText(l.b, &c, dash)
		}
		if !s.w.enqueue(l) {
			putLine(l)
			f.dropped.Inc()
		}
	}
}

// Close implements io.Closer: it releases the outputs; the last logger
// of a file flushes what is queued and closes it.
func (f *Filter) Close() error {
	f.closeOnce.Do(func() {
		for _, s := range f.sinks {
			s.w.release()
		}
	})
	return nil
}

var (
	_ filter.Filter    = (*Filter)(nil)
	_ filter.Completer = (*Filter)(nil)
)
