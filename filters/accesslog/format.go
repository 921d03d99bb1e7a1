package accesslog

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
)

// DefaultFormat is Aeraki's default text format, used when a logger sets
// no format.
const DefaultFormat = `[%START_TIME%] %REQ(X-META-PROTOCOL-APPLICATION-PROTOCOL)% %RESPONSE_CODE% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "%REQ(X-FORWARDED-FOR)%" "%REQ(X-REQUEST-ID)%" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %ROUTE_NAME%` + "\n"

// opKind is a command operator.
type opKind uint8

const (
	opStartTime opKind = iota
	opDuration
	opResponseFlags
	opResponseCode
	opResponseCodeDetails
	opUpstreamHost
	opUpstreamCluster
	opRouteName
	opDownstreamRemote
	opDownstreamRemoteNoPort
	opBytesReceived
	opBytesSent
	opReq
	opResp
	opMetadata
	opProtocol
	opAttempts
	opUnknown // an operator whose value metaproxy never knows: always "-"
)

// operators maps the operator names metaproxy accepts to their kind and
// whether they take an argument ("(...)").
var operators = map[string]struct {
	kind opKind
	arg  bool // an argument is required
	opt  bool // an argument is allowed
	num  bool // a number in JSON output
}{
	"START_TIME":                             {kind: opStartTime, opt: true},
	"DURATION":                               {kind: opDuration, num: true},
	"RESPONSE_FLAGS":                         {kind: opResponseFlags},
	"RESPONSE_CODE":                          {kind: opResponseCode, num: true},
	"RESPONSE_CODE_DETAILS":                  {kind: opResponseCodeDetails},
	"UPSTREAM_HOST":                          {kind: opUpstreamHost},
	"UPSTREAM_CLUSTER":                       {kind: opUpstreamCluster},
	"UPSTREAM_CLUSTER_RAW":                   {kind: opUpstreamCluster},
	"ROUTE_NAME":                             {kind: opRouteName},
	"DOWNSTREAM_REMOTE_ADDRESS":              {kind: opDownstreamRemote},
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": {kind: opDownstreamRemoteNoPort},
	"DOWNSTREAM_PEER_ADDRESS":                {kind: opDownstreamRemote},
	"BYTES_RECEIVED":                         {kind: opBytesReceived, num: true},
	"BYTES_SENT":                             {kind: opBytesSent, num: true},
	"REQ":                                    {kind: opReq, arg: true},
	"RESP":                                   {kind: opResp, arg: true},
	"METADATA":                               {kind: opMetadata, arg: true},
	"PROTOCOL":                               {kind: opProtocol},
	"UPSTREAM_REQUEST_ATTEMPT_COUNT":         {kind: opAttempts, num: true},
	// Known to Envoy, unknown to metaproxy's exchanges: always "-".
	"UPSTREAM_TRANSPORT_FAILURE_REASON": {kind: opUnknown},
	"CONNECTION_TERMINATION_DETAILS":    {kind: opUnknown},
	"UPSTREAM_LOCAL_ADDRESS":            {kind: opUnknown},
	"DOWNSTREAM_LOCAL_ADDRESS":          {kind: opUnknown},
	"REQUESTED_SERVER_NAME":             {kind: opUnknown},
}

// op is one compiled command operator.
type op struct {
	kind opKind
	keys []string // REQ/RESP alternatives (a?b), the METADATA key
	max  int      // truncation (%OP:N%); 0: none
	num  bool
	time *timeFormat // START_TIME with a format; nil: the default
}

// segment is a literal or an operator of a text format.
type segment struct {
	lit string
	op  *op
}

// textFormat is a compiled format string.
type textFormat struct{ segs []segment }

// compileText compiles an Envoy format string.
func compileText(s string) (*textFormat, error) {
	f := &textFormat{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.segs = append(f.segs, segment{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' { // %% is a literal %
			lit.WriteByte('%')
			i += 2
			continue
		}
		o, n, err := parseOp(s[i:])
		if err != nil {
			return nil, err
		}
		flush()
		f.segs = append(f.segs, segment{op: o})
		i += n
	}
	flush()
	return f, nil
}

// parseOp parses the operator at the start of s ("%NAME(arg):N%...") and
// returns it with its length.
func parseOp(s string) (*op, int, error) {
	j := 1
	for j < len(s) && (s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9' || s[j] == '_') {
		j++
	}
	name := s[1:j]
	if name == "" {
		return nil, 0, fmt.Errorf("a %% at %q does not start a command operator (write %%%% for a literal %%)", clip(s))
	}
	def, ok := operators[name]
	if !ok {
		return nil, 0, fmt.Errorf("unknown command operator %%%s%%", name)
	}
	o := &op{kind: def.kind, num: def.num}
	hasArg := false
	var arg string
	if j < len(s) && s[j] == '(' {
		// The argument ends at the first ')' followed by '%' or ':'
		// (a START_TIME format holds % signs of its own).
		end := -1
		for k := j + 1; k < len(s); k++ {
			if s[k] == ')' && k+1 < len(s) && (s[k+1] == '%' || s[k+1] == ':') {
				end = k
				break
			}
		}
		if end < 0 {
			return nil, 0, fmt.Errorf("command operator %%%s%%: unterminated argument in %q", name, clip(s))
		}
		hasArg, arg = true, s[j+1:end]
		j = end + 1
	}
	if j < len(s) && s[j] == ':' {
		k := j + 1
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		n, err := strconv.Atoi(s[j+1 : k])
		if err != nil || n <= 0 {
			return nil, 0, fmt.Errorf("command operator %%%s%%: bad length %q (want %%%s(...):N%% with N > 0)", name, s[j+1:k], name)
		}
		o.max, j = n, k
	}
	if j >= len(s) || s[j] != '%' {
		return nil, 0, fmt.Errorf("command operator %%%s%%: no closing %% in %q", name, clip(s))
	}
	switch {
	case def.arg && (!hasArg || arg == ""):
		return nil, 0, fmt.Errorf("command operator %%%s%% needs an argument: %%%s(key)%%", name, name)
	case hasArg && !def.arg && !def.opt:
		return nil, 0, fmt.Errorf("command operator %%%s%% takes no argument", name)
	}
	switch o.kind {
	case opReq, opResp:
		o.keys = strings.Split(arg, "?")
		if len(o.keys) > 2 || o.keys[0] == "" || len(o.keys) == 2 && o.keys[1] == "" {
			return nil, 0, fmt.Errorf("command operator %%%s(%s)%%: want a key or key?alternative", name, arg)
		}
	case opMetadata:
		o.keys = []string{arg}
	case opStartTime:
		if hasArg && arg != "" {
			tf, err := compileTime(arg)
			if err != nil {
				return nil, 0, fmt.Errorf("command operator %%START_TIME(%s)%%: %w", arg, err)
			}
			o.time = tf
		}
	}
	return o, j + 1, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ctx is what a format renders from.
type ctx struct {
	x        *filter.Exchange
	protocol string
}

// appendValue appends o's value to dst; ok is false (and dst unchanged)
// when the exchange has none.
func (o *op) appendValue(dst []byte, c *ctx) (_ []byte, ok bool) {
	x := c.x
	start := len(dst)
	switch o.kind {
	case opStartTime:
		if x.Start.IsZero() {
			return dst, false
		}
		t := x.Start.UTC()
		if o.time == nil {
			dst = t.AppendFormat(dst, "2006-01-02T15:04:05.000Z")
		} else {
			dst = o.time.append(dst, t)
		}
	case opDuration:
		if x.Start.IsZero() || x.Outcome.End.IsZero() {
			return dst, false
		}
		dst = strconv.AppendInt(dst, x.Outcome.End.Sub(x.Start).Milliseconds(), 10)
	case opResponseFlags:
		dst = append(dst, filter.ResponseFlags(x)...)
	case opResponseCode:
		dst = append(dst, filter.ResponseCode(x)...)
	case opResponseCodeDetails:
		dst = append(dst, details(x)...)
	case opUpstreamHost:
		dst = append(dst, x.Upstream...)
	case opUpstreamCluster:
		dst = append(dst, x.Cluster...)
	case opRouteName:
		if x.Route != nil {
			dst = append(dst, x.Route.Name...)
		}
	case opDownstreamRemote:
		dst = append(dst, x.Downstream...)
	case opDownstreamRemoteNoPort:
		dst = append(dst, withoutPort(x.Downstream)...)
	case opBytesReceived:
		dst = strconv.AppendInt(dst, int64(x.Outcome.BytesIn), 10)
	case opBytesSent:
		dst = strconv.AppendInt(dst, int64(x.Outcome.BytesOut), 10)
	case opReq:
		for _, k := range o.keys {
			if v, ok := lookup(x.RequestHeaders, x.Request, k); ok {
				dst = append(dst, v...)
				break
			}
		}
	case opResp:
		for _, k := range o.keys {
			if v, ok := lookup(x.ResponseHeaders, x.Response, k); ok {
				dst = append(dst, v...)
				break
			}
		}
	case opMetadata:
		if x.Request != nil {
			dst = append(dst, x.Request.Meta.Value(o.keys[0])...)
		}
	case opProtocol:
		dst = append(dst, c.protocol...)
	case opAttempts:
		dst = strconv.AppendInt(dst, int64(x.Outcome.Tries), 10)
	}
	if len(dst) == start {
		return dst, false
	}
	if o.max > 0 && len(dst)-start > o.max {
		dst = dst[:start+o.max]
	}
	return dst, true
}

// lookup finds key among the headers a filter or route set (they override)
// and then the message's metadata.
func lookup(hs []codec.KV, m *codec.Message, key string) (string, bool) {
	for i := range hs {
		if len(hs[i].Key) == len(key) && strings.EqualFold(hs[i].Key, key) {
			return hs[i].Value, true
		}
	}
	if m == nil {
		return "", false
	}
	return m.Meta.Get(key)
}

// details is %RESPONSE_CODE_DETAILS%: the local error's type, the client's
// disconnection, or via_upstream.
func details(x *filter.Exchange) string {
	switch o := &x.Outcome; {
	case o.Local:
		return o.ErrorType.String()
	case o.ClientGone:
		return "downstream_remote_disconnect"
	}
	return "via_upstream"
}

// withoutPort strips the port of "host:port" or "[v6]:port".
func withoutPort(a string) string {
	i := strings.LastIndexByte(a, ':')
	if i < 0 || strings.IndexByte(a, ':') != i && (len(a) == 0 || a[0] != '[') {
		return a // no port, or a bare IPv6 address
	}
	h := a[:i]
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	return h
}

// appendText renders f; a value the exchange lacks is dash ("-", or ""
// with omit_empty_values).
func (f *textFormat) appendText(dst []byte, c *ctx, dash string) []byte {
	for i := range f.segs {
		s := &f.segs[i]
		if s.op == nil {
			dst = append(dst, s.lit...)
			continue
		}
		var ok bool
		if dst, ok = s.op.appendValue(dst, c); !ok {
			dst = append(dst, dash...)
		}
	}
	return dst
}

// jsonFormat is a compiled json_format: an object whose values are
// formats, nested objects or constants, keys sorted.
type jsonFormat struct{ fields []jsonField }

type jsonField struct {
	key    string // quoted and escaped, with its colon: "key":
	text   *textFormat
	single *op // the value is this operator alone: typed, null when missing
	obj    *jsonFormat
	lit    string // a constant (number, bool, null), as JSON
}

// compileJSON compiles a json_format (a Struct decoded as JSON).
func compileJSON(m map[string]any, path string) (*jsonFormat, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f := &jsonFormat{}
	for _, k := range keys {
		fl := jsonField{key: string(appendJSONString(nil, k)) + ":"}
		p := path + "." + k
		switch v := m[k].(type) {
		case string:
			t, err := compileText(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if len(t.segs) == 1 && t.segs[0].op != nil {
				fl.single = t.segs[0].op
			} else {
				fl.text = t
			}
		case map[string]any:
			o, err := compileJSON(v, p)
			if err != nil {
				return nil, err
			}
			fl.obj = o
		case float64:
			if math.Trunc(v) == v && math.Abs(v) < 1e15 {
				fl.lit = strconv.FormatInt(int64(v), 10)
			} else {
				fl.lit = strconv.FormatFloat(v, 'g', -1, 64)
			}
		case bool:
			fl.lit = strconv.FormatBool(v)
		case nil:
			fl.lit = "null"
		default:
			return nil, fmt.Errorf("%s: a %T value is not supported (want a format string or a nested object)", p, v)
		}
		f.fields = append(f.fields, fl)
	}
	return f, nil
}

// appendJSON renders f as one JSON object; tmp is scratch space, returned
// for reuse. With omit, fields without a value are left out; else they are
// null (an operator alone) or "-" (within a string).
func (f *jsonFormat) appendJSON(dst, tmp []byte, c *ctx, omit bool) ([]byte, []byte) {
	dst = append(dst, '{')
	first := true
	sep := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	for i := range f.fields {
		fl := &f.fields[i]
		switch {
		case fl.obj != nil:
			sep()
			dst = append(dst, fl.key...)
			dst, tmp = fl.obj.appendJSON(dst, tmp, c, omit)
		case fl.lit != "":
			sep()
			dst = append(dst, fl.key...)
			dst = append(dst, fl.lit...)
		case fl.single != nil:
			var ok bool
			tmp, ok = fl.single.appendValue(tmp[:0], c)
			if !ok && omit {
				continue
			}
			sep()
			dst = append(dst, fl.key...)
			switch {
			case !ok:
				dst = append(dst, "null"...)
			case fl.single.num && fl.single.max == 0:
				dst = append(dst, tmp...)
			default:
				dst = appendJSONBytes(dst, tmp)
			}
		default:
			dash := "-"
			if omit {
				dash = ""
			}
			tmp = fl.text.appendText(tmp[:0], c, dash)
			if omit && len(tmp) == 0 {
				continue
			}
			sep()
			dst = append(dst, fl.key...)
			dst = appendJSONBytes(dst, tmp)
		}
	}
	return append(dst, '}'), tmp
}

const hexDigits = "0123456789abcdef"

func appendJSONString(dst []byte, s string) []byte { return appendJSONBytes(dst, []byte(s)) }

// appendJSONBytes appends s as a JSON string (invalid UTF-8 becomes
// U+FFFD).
func appendJSONBytes(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				dst = append(dst, '\\', b)
			case b >= 0x20:
				dst = append(dst, b)
			case b == '\n':
				dst = append(dst, '\\', 'n')
			case b == '\r':
				dst = append(dst, '\\', 'r')
			case b == '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}

// timeFormat is a compiled strftime-style START_TIME format (the subset
// Envoy's users write, in UTC as Envoy renders it).
type timeFormat struct{ parts []timePart }

type timePart struct {
	lit  string
	verb byte // 0: lit
	prec int  // %Nf
}

// compileTime compiles a START_TIME format: %Y %y %m %d %e %H %M %S %j %a
// %A %b %B %p %z %Z %s %T %F %D %R %%, and %f / %Nf (N = 1..9 fraction
// digits; %f is 9).
func compileTime(s string) (*timeFormat, error) {
	tf := &timeFormat{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			tf.parts = append(tf.parts, timePart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			lit.WriteByte(s[i])
			continue
		}
		i++
		if i >= len(s) {
			return nil, fmt.Errorf("a trailing %%")
		}
		prec := 0
		if s[i] >= '1' && s[i] <= '9' {
			prec = int(s[i] - '0')
			i++
			if i >= len(s) || s[i] != 'f' {
				return nil, fmt.Errorf("%%%d must be followed by f (%%%df)", prec, prec)
			}
		}
		switch v := s[i]; v {
		case '%':
			lit.WriteByte('%')
		case 'f':
			if prec == 0 {
				prec = 9
			}
			flush()
			tf.parts = append(tf.parts, timePart{verb: 'f', prec: prec})
		case 'Y', 'y', 'm', 'd', 'e', 'H', 'M', 'S', 'j', 'a', 'A', 'b', 'B', 'p', 'z', 'Z', 's', 'T', 'F', 'D', 'R':
			flush()
			tf.parts = append(tf.parts, timePart{verb: v})
		default:
			return nil, fmt.Errorf("unsupported conversion %%%c", v)
		}
	}
	flush()
	return tf, nil
}

func appendPad(dst []byte, v, width int) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	var b [20]byte
	i := len(b)
	for v >= 10 || width > 1 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	b[i] = byte('0' + v)
	return append(dst, b[i:]...)
}

func (tf *timeFormat) append(dst []byte, t time.Time) []byte {
	for _, p := range tf.parts {
		if p.verb == 0 {
			dst = append(dst, p.lit...)
			continue
		}
		switch p.verb {
		case 'Y':
			dst = appendPad(dst, t.Year(), 4)
		case 'y':
			dst = appendPad(dst, t.Year()%100, 2)
		case 'm':
			dst = appendPad(dst, int(t.Month()), 2)
		case 'd':
			dst = appendPad(dst, t.Day(), 2)
		case 'e':
			if t.Day() < 10 {
				dst = append(dst, ' ')
			}
			dst = appendPad(dst, t.Day(), 1)
		case 'H':
			dst = appendPad(dst, t.Hour(), 2)
		case 'M':
			dst = appendPad(dst, t.Minute(), 2)
		case 'S':
			dst = appendPad(dst, t.Second(), 2)
		case 'j':
			dst = appendPad(dst, t.YearDay(), 3)
		case 'a':
			dst = t.AppendFormat(dst, "Mon")
		case 'A':
			dst = t.AppendFormat(dst, "Monday")
		case 'b':
			dst = t.AppendFormat(dst, "Jan")
		case 'B':
			dst = t.AppendFormat(dst, "January")
		case 'p':
			dst = t.AppendFormat(dst, "PM")
		case 'z':
			dst = append(dst, "+0000"...)
		case 'Z':
			dst = append(dst, "UTC"...)
		case 's':
			dst = strconv.AppendInt(dst, t.Unix(), 10)
		case 'T':
			dst = t.AppendFormat(dst, "15:04:05")
		case 'F':
			dst = t.AppendFormat(dst, "2006-01-02")
		case 'D':
			dst = t.AppendFormat(dst, "01/02/06")
		case 'R':
			dst = t.AppendFormat(dst, "15:04")
		case 'f':
			ns := t.Nanosecond()
			for range 9 - p.prec {
				ns /= 10
			}
			dst = appendPad(dst, ns, p.prec)
		}
	}
	return dst
}
