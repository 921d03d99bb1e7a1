//go:build cgo

package main

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

// logger is the plugin's logger: everything the engine, filters and codecs
// log goes to Envoy's log.
var logger = slog.New(&logHandler{})

// logHandler is a slog.Handler writing one line per record through api.Log*:
// the message followed by key=value pairs. Enabled follows the level Envoy
// sets for its golang logger, so disabled records cost no formatting.
type logHandler struct {
	attrs string // pre-formatted " key=value" pairs from WithAttrs
	group string // "g1.g2." prefix of keys from WithGroup
}

// envoyLevel maps a slog level onto Envoy's levels.
func envoyLevel(l slog.Level) api.LogType {
	switch {
	case l < slog.LevelDebug:
		return api.Trace
	case l < slog.LevelInfo:
		return api.Debug
	case l < slog.LevelWarn:
		return api.Info
	case l < slog.LevelError:
		return api.Warn
	case l == slog.LevelError:
		return api.Error
	default:
		return api.Critical
	}
}

// Enabled reports whether Envoy logs records of level l.
func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool {
	return api.GetLogLevel() <= envoyLevel(l)
}

// Handle formats r and hands it to Envoy.
func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	msg := b.String()
	switch envoyLevel(r.Level) {
	case api.Trace:
		api.LogTrace(msg)
	case api.Debug:
		api.LogDebug(msg)
	case api.Info:
		api.LogInfo(msg)
	case api.Warn:
		api.LogWarn(msg)
	case api.Error:
		api.LogError(msg)
	default:
		api.LogCritical(msg)
	}
	return nil
}

// WithAttrs returns a handler that adds as to every record.
func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		appendAttr(&b, h.group, a)
	}
	return &logHandler{attrs: b.String(), group: h.group}
}

// WithGroup returns a handler that qualifies later keys with name.
func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{attrs: h.attrs, group: h.group + name + "."}
}

func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			group += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, group, ga)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(quote(a.Value.String()))
}

// quote quotes s when it would not read back as one token.
func quote(s string) string {
	if s == "" || !utf8.ValidString(s) || strings.ContainsAny(s, " \t\r\n\"=\\") {
		return strconv.Quote(s)
	}
	return s
}
