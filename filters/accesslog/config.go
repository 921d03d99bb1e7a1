package accesslog

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/api/envoy"
)

// Logger names (AccessLog.name); an empty name is taken from the
// typed_config's type.
const (
	FileLogger   = "envoy.access_loggers.file"
	StdoutLogger = "envoy.access_loggers.stdout"
	StderrLogger = "envoy.access_loggers.stderr"
)

// kinds maps every accepted logger name to its kind.
var kinds = map[string]string{
	FileLogger: FileLogger, "envoy.file_access_log": FileLogger,
	StdoutLogger: StdoutLogger, StderrLogger: StderrLogger,
}

// logConfig is one parsed AccessLog.
type logConfig struct {
	path  string // the output: a file path, /dev/stdout or /dev/stderr
	text  *textFormat
	json  *jsonFormat
	omit  bool // omit_empty_values
	where string
}

// parse checks and compiles every AccessLog; errors name the field, as
// access_log[i].typed_config.log_format....
func parse(logs []*envoy.AccessLog) ([]logConfig, error) {
	out := make([]logConfig, 0, len(logs))
	for i, l := range logs {
		p := fmt.Sprintf("access_log[%d]", i)
		c, err := parseOne(l, p)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseOne(l *envoy.AccessLog, p string) (logConfig, error) {
	c := logConfig{where: p}
	a := l.GetTypedConfig()
	if a == nil {
		return c, fmt.Errorf("%s.typed_config: value is required (a FileAccessLog, StdoutAccessLog or StderrAccessLog)", p)
	}
	var msg proto.Message
	var kind string
	for _, k := range []struct {
		kind string
		m    proto.Message
	}{{FileLogger, &envoy.FileAccessLog{}}, {StdoutLogger, &envoy.StdoutAccessLog{}}, {StderrLogger, &envoy.StderrAccessLog{}}} {
		if api.UnpackConfig(a, k.m) == nil {
			msg, kind = k.m, k.kind
			break
		}
	}
	if msg == nil {
		return c, fmt.Errorf("%s.typed_config: unsupported access logger type %q (known: FileAccessLog, StdoutAccessLog, StderrAccessLog)", p, a.GetTypeUrl())
	}
	if n := l.GetName(); n != "" {
		k, ok := kinds[n]
		switch {
		case !ok:
			return c, fmt.Errorf("%s.name: unknown access logger %q (known: %s, %s, %s)", p, n, FileLogger, StdoutLogger, StderrLogger)
		case k != kind:
			return c, fmt.Errorf("%s.name: %q does not match typed_config, a %s", p, n, msg.ProtoReflect().Descriptor().Name())
		}
	}
	tc := p + ".typed_config"
	var err error
	switch m := msg.(type) {
	case *envoy.FileAccessLog:
		if m.GetPath() == "" {
			return c, fmt.Errorf("%s.path: value is required", tc)
		}
		c.path = m.GetPath()
		switch f := m.GetAccessLogFormat().(type) {
		case *envoy.FileAccessLog_Format:
			c.text, err = compileText(f.Format)
			err = under(tc+".format", err)
		case *envoy.FileAccessLog_JsonFormat:
			c.json, err = jsonOf(f.JsonFormat, tc+".json_format")
		case *envoy.FileAccessLog_LogFormat:
			err = c.substitution(f.LogFormat, tc+".log_format")
		}
	case *envoy.StdoutAccessLog:
		c.path = "/dev/stdout"
		err = c.substitution(m.GetLogFormat(), tc+".log_format")
	case *envoy.StderrAccessLog:
		c.path = "/dev/stderr"
		err = c.substitution(m.GetLogFormat(), tc+".log_format")
	}
	if err != nil {
		return c, err
	}
	if c.text == nil && c.json == nil {
		c.text, _ = compileText(DefaultFormat)
	}
	if c.text != nil {
		c.text = withNewline(c.text)
	}
	return c, nil
}

// substitution compiles a SubstitutionFormatString (nil: the default).
func (c *logConfig) substitution(s *envoy.SubstitutionFormatString, p string) error {
	if s == nil {
		return nil
	}
	c.omit = s.GetOmitEmptyValues()
	var err error
	switch f := s.GetFormat().(type) {
	case *envoy.SubstitutionFormatString_TextFormat:
		c.text, err = compileText(f.TextFormat)
		return under(p+".text_format", err)
	case *envoy.SubstitutionFormatString_JsonFormat:
		c.json, err = jsonOf(f.JsonFormat, p+".json_format")
		return err
	case *envoy.SubstitutionFormatString_TextFormatSource:
		src, err := dataSource(f.TextFormatSource, p+".text_format_source")
		if err != nil {
			return err
		}
		c.text, err = compileText(src)
		return under(p+".text_format_source", err)
	case nil:
		return fmt.Errorf("%s: text_format_source, text_format or json_format is required", p)
	}
	return nil
}

func dataSource(d *envoy.DataSource, p string) (string, error) {
	switch s := d.GetSpecifier().(type) {
	case *envoy.DataSource_InlineString:
		return s.InlineString, nil
	case *envoy.DataSource_InlineBytes:
		return string(s.InlineBytes), nil
	case *envoy.DataSource_Filename:
		b, err := os.ReadFile(s.Filename)
		if err != nil {
			return "", fmt.Errorf("%s.filename: %w", p, err)
		}
		return string(b), nil
	case *envoy.DataSource_EnvironmentVariable:
		v, ok := os.LookupEnv(s.EnvironmentVariable)
		if !ok {
			return "", fmt.Errorf("%s.environment_variable: %q is not set", p, s.EnvironmentVariable)
		}
		return v, nil
	}
	return "", fmt.Errorf("%s: inline_string, inline_bytes, filename or environment_variable is required", p)
}

func jsonOf(s *structpb.Struct, p string) (*jsonFormat, error) {
	if len(s.GetFields()) == 0 {
		return nil, fmt.Errorf("%s: an object with at least one field is required", p)
	}
	js, err := protojson.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return compileJSON(m, p)
}

// withNewline ends a text format with a newline, so that every request
// makes one line even when the format forgot it (Envoy writes such a
// format as is).
func withNewline(t *textFormat) *textFormat {
	if n := len(t.segs); n > 0 && t.segs[n-1].op == nil && strings.HasSuffix(t.segs[n-1].lit, "\n") {
		return t
	}
	t.segs = append(t.segs, segment{lit: "\n"})
	return t
}

func under(p string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", p, err)
}
