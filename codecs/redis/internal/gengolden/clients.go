package main

import (
	"bytes"
	"io"
	"log"
	"net"
	"os/exec"
	"strconv"
	"sync"

	"github.com/metaproxy/metaproxy/codecs/redis/internal/golden"
)

// toolRuns are the client tools recorded: what each runs and how many
// requests it sends in all (0: not known in advance).
var toolRuns = []struct {
	name     string
	tool     string
	args     []string
	requests int
}{
	{"redis_cli_set", "redis-cli", []string{"SET", "clikey", "value with spaces"}, 1},
	{"redis_cli_get", "redis-cli", []string{"GET", "clikey"}, 1},
	{"redis_cli_mget", "redis-cli", []string{"MGET", "clikey", "k2", "k3"}, 1},
	{"redis_cli_resp3_hgetall", "redis-cli", []string{"-3", "HGETALL", "h"}, 2},
	{"redis_cli_select", "redis-cli", []string{"-n", "2", "GET", "clikey"}, 2},
	{"redis_cli_repeat", "redis-cli", []string{"-r", "3", "INCR", "clicounter"}, 3},
	{"redis_benchmark_pipeline", "redis-benchmark", []string{"-c", "1", "-n", "16", "-P", "16", "-t", "set,get,mset", "-q"}, 0},
}

// clients runs each tool through a recording relay.
func (g *gen) clients(version string) golden.Clients {
	cs := golden.Clients{Origin: version + " with redis-cli and redis-benchmark, through a relay, recorded by internal/gengolden"}
	for _, r := range toolRuns {
		rl := newRelay(g.addr)
		args := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(rl.port())}, r.args...)
		out, err := exec.Command(r.tool, args...).CombinedOutput()
		if err != nil {
			log.Fatalf("%s: %v: %s", r.tool, err, out)
		}
		conns := rl.close()
		cs.Runs = append(cs.Runs, golden.Client{Name: r.name, Command: append([]string{r.tool}, r.args...), Requests: r.requests, Conns: conns})
	}
	return cs
}

// relay forwards connections to a server and records their bytes.
type relay struct {
	l     net.Listener
	to    string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []golden.Conn
}

func newRelay(to string) *relay {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	r := &relay{l: l, to: to}
	r.wg.Add(1)
	go r.accept()
	return r
}

func (r *relay) port() int { return r.l.Addr().(*net.TCPAddr).Port }

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.serve(c)
	}
}

// serve relays one connection until the client closes it.
func (r *relay) serve(c net.Conn) {
	defer r.wg.Done()
	s, err := net.Dial("tcp", r.to)
	check(err)
	var up, down bytes.Buffer
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.MultiWriter(c, &down), s)
		close(done)
	}()
	_, _ = io.Copy(io.MultiWriter(s, &up), c)
	_ = s.(*net.TCPConn).CloseWrite()
	<-done
	c.Close()
	s.Close()
	r.mu.Lock()
	r.conns = append(r.conns, golden.Conn{Client: up.Bytes(), Server: down.Bytes()})
	r.mu.Unlock()
}

// close stops the relay once its connections are done and returns them.
func (r *relay) close() []golden.Conn {
	r.l.Close()
	r.wg.Wait()
	return r.conns
}
