// Command gengolden records the golden connections in codecs/mysql/testdata
// from a real MariaDB server (Debian's mariadb-server) and real clients:
// go-sql-driver/mysql and the mariadb command-line client.
//
//	cd codecs/mysql/internal/gengolden && go run . -out ../../testdata
//
// It is a module of its own, so that the client library stays out of
// metaproxy's go.mod. It starts a throwaway mariadbd (TLS enabled with a
// self-signed certificate), runs each scenario through a recording TCP
// relay on a connection of its own, and writes what both sides sent. What
// a client message must decode to is written by hand in the scenario (the
// SQL it runs); what the server said comes from the client library (the
// error codes it reported) and from the server (CONNECTION_ID(),
// VERSION()). It also runs go-sql-driver through a proxy that greets the
// client itself with the codec's helpers and switches its authentication
// to the server's scramble (proxy.go), and fails if that does not work.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/metaproxy/metaproxy/codecs/mysql/internal/golden"
)

func main() {
	out := flag.String("out", "../../testdata", "directory to write the golden files to")
	flag.Parse()
	log.SetFlags(0)
	srv := startServer()
	atExit = srv.stop
	defer srv.stop()
	version := strings.TrimSpace(run("mariadbd", "--version"))
	origin := version + ", recorded by codecs/mysql/internal/gengolden"

	write(*out, "driver.json", golden.File{Origin: origin + " (go-sql-driver/mysql v1.10.1)", Conns: verify(driverScenarios(srv))})
	write(*out, "cli.json", golden.File{Origin: origin + " (mariadb client)", Conns: verify(cliScenarios(srv))})
	write(*out, "proxied.json", golden.File{Origin: origin + " (go-sql-driver/mysql through a proxy built on the codec's helpers)",
		Conns: verify(proxiedScenarios(srv))})
}

// server is a running mariadbd.
type server struct {
	dir, socket, addr string
	cmd               *exec.Cmd
}

// startServer initialises a data directory, starts mariadbd on a free
// port of 127.0.0.1 and creates the users and the database.
func startServer() *server {
	dir, err := os.MkdirTemp("", "gengolden-mysql")
	check(err)
	s := &server{dir: dir, socket: filepath.Join(dir, "mysqld.sock")}
	data := filepath.Join(dir, "data")
	run("mariadb-install-db", "--user=root", "--datadir="+data, "--skip-test-db")
	key, cert := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
		"-keyout", key, "-out", cert)
	port := freePort()
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.cmd = exec.Command("mariadbd", "--no-defaults", "--user=root", "--datadir="+data, "--socket="+s.socket,
		"--port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
		"--ssl-cert="+cert, "--ssl-key="+key, "--local-infile=1", "--log-error="+filepath.Join(dir, "error.log"))
	check(s.cmd.Start())
	waitFor(s.addr)
	s.sql(`INSTALL SONAME 'auth_ed25519';
CREATE DATABASE shop;
CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2));
INSERT INTO shop.items VALUES (1, 'apple', 1.50), (2, 'pear', 2.25);
CREATE USER 'app'@'%' IDENTIFIED BY 'secret';
GRANT ALL ON shop.* TO 'app'@'%';
CREATE USER 'reader'@'%' IDENTIFIED BY 'secret2';
GRANT SELECT ON shop.* TO 'reader'@'%';
CREATE USER 'edu'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('secret3');
GRANT ALL ON shop.* TO 'edu'@'%';`)
	return s
}

// sql runs statements as root over the socket.
func (s *server) sql(stmts string) string {
	return run("mariadb", "--socket="+s.socket, "-uroot", "-N", "-B", "-e", stmts)
}

func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	os.RemoveAll(s.dir)
}

// verify checks that each conn's client sent as many packets as its
// scenario expects messages (at least as many before TLS or compression).
func verify(conns []golden.Conn) []golden.Conn {
	for _, c := range conns {
		pkts := golden.Packets(c.ClientBytes)
		if len(pkts) == len(c.Requests) || (c.TLS || c.Compressed) && len(pkts) > len(c.Requests) {
			continue
		}
		for i, p := range pkts {
			log.Printf("%s: packet %d: %q", c.Name, i, p[:min(len(p), 60)])
		}
		fatalf("%s: %d client packets, %d expected", c.Name, len(pkts), len(c.Requests))
	}
	return conns
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
		fatalf("%s %q: %v: %s", name, args, err, out)
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
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fatalf("mariadbd did not listen on %s", addr)
}

// atExit stops the server when the generator fails.
var atExit = func() {}

func fatalf(format string, args ...any) {
	log.Printf(format, args...)
	atExit()
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}
