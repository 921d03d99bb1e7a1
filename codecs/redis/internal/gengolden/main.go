// Command gengolden records the golden frames in codecs/redis/testdata
// from a real redis-server, redis-cli and redis-benchmark (Debian's
// redis-server and redis-tools):
//
//	go run ./codecs/redis/internal/gengolden -out codecs/redis/testdata
//
// It starts a throwaway redis-server, sends commands over raw TCP (RESP2,
// RESP3 after HELLO 3, inline lines) and records each reply; it runs
// redis-cli and redis-benchmark through a recording relay; and it saves
// COMMAND's key specs. The metadata a frame must decode to comes from the
// server, not from the codec: COMMAND INFO says whether a command is
// known, COMMAND GETKEYS lists its keys. Replies are delimited without a
// RESP parser: each command is followed by a PING of a unique sentinel,
// and the reply is what comes before the sentinel's answer.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/metaproxy/metaproxy/codecs/redis/internal/golden"
)

func main() {
	out := flag.String("out", "codecs/redis/testdata", "directory to write the golden files to")
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "gengolden")
	check(err)
	defer os.RemoveAll(dir)
	port := freePort()
	srv := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--enable-debug-command", "local")
	check(srv.Start())
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(addr)
	g := &gen{addr: addr}
	version := strings.TrimSpace(run("redis-server", "--version"))

	write(*out, "commands.json", g.commandTable(version))
	write(*out, "resp2.json", g.session("resp2", version, resp2))
	write(*out, "resp3.json", g.session("resp3", version, resp3))
	write(*out, "inline.json", g.session("inline", version, inline))
	write(*out, "refused.json", g.refused(version, refused))
	write(*out, "clients.json", g.clients(version))
}

// gen records against one redis-server.
type gen struct {
	addr    string
	seq     int
	known   map[string]bool // COMMAND's names
	ctl     *bufio.Reader
	ctlConn net.Conn
}

// step is one thing a session sends: a command as arguments (sent as a
// RESP array, or as raw bytes when raw is set), with the arguments
// COMMAND GETKEYS is asked about.
type step struct {
	name string
	args []string
	raw  string // an inline line, or bytes sent as they are
	// requestFrames is the number of frames in raw when not 1.
	requestFrames int
	frames        int    // reply frames when not 1
	publish       string // after the reply, publish this to channel "news" from another connection
}

func cmd(name string, args ...string) step { return step{name: name, args: args} }

// session records the steps on one connection.
func (g *gen) session(kind, version string, steps []step) golden.File {
	conn, err := net.Dial("tcp", g.addr)
	check(err)
	defer conn.Close()
	f := golden.File{Origin: version + ", raw TCP (" + kind + "), recorded by internal/gengolden"}
	for _, s := range steps {
		req := []byte(s.raw)
		if s.raw == "" {
			req = resp(s.args)
		}
		rsp := g.exchange(conn, req, s.publish)
		e := golden.Exchange{Name: s.name, Request: req, RequestFrames: s.requestFrames, Response: rsp, Frames: s.frames}
		if s.frames == 0 && len(rsp) > 0 {
			e.Frames = 1
		}
		if len(s.args) > 0 {
			e.Method, e.Keys = g.expect(s.args)
		}
		f.Exchanges = append(f.Exchanges, e)
	}
	return f
}

// exchange sends req and a sentinel ECHO, and returns what came before the
// sentinel's answer.
func (g *gen) exchange(conn net.Conn, req []byte, publish string) []byte {
	g.seq++
	sentinel := fmt.Sprintf("gengolden-sentinel-%d-%d", os.Getpid(), g.seq)
	tail := []byte(fmt.Sprintf("$%d\r\n%s\r\n", len(sentinel), sentinel))
	_, err := conn.Write(req)
	check(err)
	if publish != "" {
		time.Sleep(50 * time.Millisecond)
		pub, err := net.Dial("tcp", g.addr)
		check(err)
		_, err = pub.Write(resp([]string{"PUBLISH", "news", publish}))
		check(err)
		_, _ = pub.Read(make([]byte, 64))
		pub.Close()
		time.Sleep(50 * time.Millisecond)
	}
	// PING, not ECHO: a RESP2 connection in Pub/Sub mode answers only
	// PING, with ["pong", sentinel].
	_, err = conn.Write(resp([]string{"PING", sentinel}))
	check(err)
	var got []byte
	buf := make([]byte, 64<<10)
	check(conn.SetReadDeadline(time.Now().Add(5 * time.Second)))
	for !bytes.HasSuffix(got, tail) {
		n, err := conn.Read(buf)
		if err != nil {
			log.Fatalf("reading the answer to %q: %v (got %q)", req, err, got)
		}
		got = append(got, buf[:n]...)
	}
	got = got[:len(got)-len(tail)]
	return bytes.TrimSuffix(got, []byte("*2\r\n$4\r\npong\r\n"))
}

// refused sends each step on a new connection and records what the
// server answers before it closes the connection.
func (g *gen) refused(version string, steps []step) golden.File {
	f := golden.File{Origin: version + ", raw TCP, one connection per request, recorded by internal/gengolden"}
	for _, s := range steps {
		conn, err := net.Dial("tcp", g.addr)
		check(err)
		_, err = conn.Write([]byte(s.raw))
		check(err)
		check(conn.SetReadDeadline(time.Now().Add(5 * time.Second)))
		rsp, err := io.ReadAll(conn)
		check(err)
		conn.Close()
		f.Exchanges = append(f.Exchanges, golden.Exchange{Name: s.name, Request: []byte(s.raw), Response: rsp, Frames: 1})
	}
	return f
}

// expect asks the server what args must decode to: the method (upper
// case when COMMAND lists the command) and COMMAND GETKEYS' keys.
func (g *gen) expect(args []string) (method string, keys []string) {
	method = args[0]
	if g.known[strings.ToLower(args[0])] {
		method = strings.ToUpper(args[0])
	}
	if g.ctl == nil {
		c, err := net.Dial("tcp", g.addr)
		check(err)
		g.ctl = bufio.NewReader(c)
		g.ctlConn = c
	}
	_, err := g.ctlConn.Write(resp(append([]string{"COMMAND", "GETKEYS"}, args...)))
	check(err)
	// The answer is an array of bulk strings or an error ("no key
	// arguments", "invalid command"): all this needs to read.
	l, err := g.ctl.ReadString('\n')
	check(err)
	keys = []string{}
	if l[0] == '-' {
		return method, keys
	}
	n, err := strconv.Atoi(strings.TrimSpace(l[1:]))
	check(err)
	for range n {
		l, err := g.ctl.ReadString('\n')
		check(err)
		size, err := strconv.Atoi(strings.TrimSpace(l[1:]))
		check(err)
		b := make([]byte, size+2)
		_, err = io.ReadFull(g.ctl, b)
		check(err)
		keys = append(keys, string(b[:size]))
	}
	return method, keys
}

func (g *gen) port() string {
	_, p, _ := net.SplitHostPort(g.addr)
	return p
}

// commandTable records COMMAND: every command's first key, last key and
// step, and those of its subcommands that take keys.
func (g *gen) commandTable(version string) golden.Commands {
	var all [][]json.RawMessage
	check(json.Unmarshal([]byte(run("redis-cli", "-h", "127.0.0.1", "-p", g.port(), "--json", "COMMAND")), &all))
	t := golden.Commands{Origin: version + ", COMMAND, recorded by internal/gengolden"}
	g.known = map[string]bool{}
	var add func(e []json.RawMessage)
	add = func(e []json.RawMessage) {
		var c golden.Command
		var flags []string
		check(json.Unmarshal(e[0], &c.Name))
		check(json.Unmarshal(e[1], &c.Arity))
		check(json.Unmarshal(e[2], &flags))
		check(json.Unmarshal(e[3], &c.First))
		check(json.Unmarshal(e[4], &c.Last))
		check(json.Unmarshal(e[5], &c.Step))
		for _, f := range flags {
			c.Movable = c.Movable || f == "movablekeys"
		}
		t.Commands = append(t.Commands, c)
		g.known[c.Name] = true
		var subs [][]json.RawMessage
		check(json.Unmarshal(e[9], &subs))
		for _, s := range subs {
			add(s)
		}
	}
	for _, e := range all {
		add(e)
	}
	return t
}

// resp encodes args as a RESP array of bulk strings.
func resp(args []string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

func write(dir, name string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	check(err)
	check(os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644))
	log.Printf("wrote %s", filepath.Join(dir, name))
}

func run(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		log.Fatalf("%s %q: %v: %s", name, args, err, out)
	}
	return string(out)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(addr string) {
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("redis-server did not listen on %s", addr)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
