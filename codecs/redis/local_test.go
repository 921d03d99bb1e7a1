package redis

import (
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

func localAnswer(t *testing.T, c *Codec, cmd ...string) (string, bool, bool) {
	t.Helper()
	var args [][]byte
	for _, a := range cmd {
		args = append(args, []byte(a))
	}
	frame := AppendCommand(nil, args...)
	var m codec.Message
	m.Frame = frame
	if err := c.Decode(frame, &m); err != nil {
		t.Fatal(err)
	}
	out, answered, closeAfter := c.LocalAnswer(nil, &m)
	return string(out), answered, closeAfter
}

func TestLocalAnswers(t *testing.T) {
	f, _ := NewFactory(Options{})
	c := f.NewCodecFor(codec.SideDownstream)
	for _, tc := range []struct {
		cmd      []string
		want     string // prefix; "" means forwarded
		closeNow bool
	}{
		{[]string{"PING"}, "+PONG", false},
		{[]string{"PING", "hi"}, "$2\r\nhi", false},
		{[]string{"ECHO", "x"}, "$1\r\nx", false},
		{[]string{"SELECT", "0"}, "+OK", false},
		{[]string{"SELECT", "3"}, "-ERR only database 0", false},
		{[]string{"HELLO", "3"}, "-NOPROTO", false},
		{[]string{"QUIT"}, "+OK", true},
		{[]string{"SUBSCRIBE", "ch"}, "-ERR SUBSCRIBE is not supported", false},
		{[]string{"MULTI"}, "-ERR MULTI is not supported", false},
		{[]string{"BLPOP", "k", "0"}, "-ERR BLPOP is not supported", false},
		{[]string{"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}, "-ERR XREAD is not supported", false},
		{[]string{"XREAD", "STREAMS", "s", "0"}, "", false},
		{[]string{"GET", "k"}, "", false},
		{[]string{"AUTH", "pw"}, "-ERR AUTH <password> called without any password", false},
	} {
		out, answered, closeAfter := localAnswer(t, c, tc.cmd...)
		if tc.want == "" {
			if answered {
				t.Errorf("%v answered locally: %q", tc.cmd, out)
			}
			continue
		}
		if !answered || !strings.HasPrefix(out, tc.want) || closeAfter != tc.closeNow {
			t.Errorf("%v: %q answered=%v close=%v, want %q close=%v", tc.cmd, out, answered, closeAfter, tc.want, tc.closeNow)
		}
	}
}

func TestDownstreamAuth(t *testing.T) {
	f, _ := NewFactory(Options{DownstreamAuthPassword: "s3cret"})
	c := f.NewCodecFor(codec.SideDownstream)
	if out, answered, _ := localAnswer(t, c, "GET", "k"); !answered || !strings.HasPrefix(out, "-NOAUTH") {
		t.Fatalf("GET before AUTH: %q", out)
	}
	if out, _, _ := localAnswer(t, c, "AUTH", "wrong"); !strings.HasPrefix(out, "-WRONGPASS") {
		t.Fatalf("AUTH wrong: %q", out)
	}
	if out, _, _ := localAnswer(t, c, "AUTH", "default", "s3cret"); out != "+OK\r\n" {
		t.Fatalf("AUTH user pw: %q", out)
	}
	if _, answered, _ := localAnswer(t, c, "GET", "k"); answered {
		t.Fatal("GET after AUTH was not forwarded")
	}
}
