package tracing

import (
	"go.opentelemetry.io/otel/trace"
)

// W3C Trace Context metadata keys. Dubbo attachments and THeader info
// headers reach the filter as metadata keys of the same spelling (the
// codecs keep the key as sent; metadata keys compare case-insensitively).
const (
	KeyTraceparent = "traceparent"
	KeyTracestate  = "tracestate"
)

// parseTraceparent reads a W3C traceparent header
// (version "-" trace-id "-" parent-id "-" trace-flags, lowercase hex). A
// version other than 00 is read as 00 is, as the spec asks, provided what
// follows the flags starts with "-"; version ff, all-zero ids and
// malformed values are refused (ok false): the request is then one that
// carries no trace.
func parseTraceparent(s string) (tid trace.TraceID, sid trace.SpanID, flags trace.TraceFlags, ok bool) {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return tid, sid, 0, false
	}
	var ver [1]byte
	if !unhex(ver[:], s[0:2]) || ver[0] == 0xff || (ver[0] == 0 && len(s) != 55) || (len(s) > 55 && s[55] != '-') {
		return tid, sid, 0, false
	}
	var fl [1]byte
	if !unhex(tid[:], s[3:35]) || !unhex(sid[:], s[36:52]) || !unhex(fl[:], s[53:55]) || !tid.IsValid() || !sid.IsValid() {
		return tid, sid, 0, false
	}
	return tid, sid, trace.TraceFlags(fl[0]), true
}

// formatTraceparent renders a version 00 traceparent.
func formatTraceparent(tid trace.TraceID, sid trace.SpanID, flags trace.TraceFlags) string {
	const digits = "0123456789abcdef"
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	for i, v := range tid {
		b[3+2*i], b[4+2*i] = digits[v>>4], digits[v&0xf]
	}
	b[35] = '-'
	for i, v := range sid {
		b[36+2*i], b[37+2*i] = digits[v>>4], digits[v&0xf]
	}
	b[52] = '-'
	b[53], b[54] = digits[flags>>4], digits[flags&0xf]
	return string(b[:])
}

// unhex decodes lowercase hex src into dst (len(src) == 2*len(dst)).
func unhex(dst []byte, src string) bool {
	for i := range dst {
		hi, ok1 := nibble(src[2*i])
		lo, ok2 := nibble(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func nibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
