package main

import (
	"net"
	"os/exec"

	"github.com/metaproxy/metaproxy/codecs/mysql/internal/golden"
)

// cliRun is one run of the mariadb client and the messages it sends (after
// its handshake response, which every run starts with unless tls).
type cliRun struct {
	name   string
	l      login
	args   []string
	tls    bool
	expect []golden.Request
}

func q(stmt, kind, db string) golden.Request {
	return golden.Request{Command: "COM_QUERY", Statement: kind, Database: db, SQL: stmt}
}

var cliRuns = []cliRun{
	{
		name: "cli_use_init_db", l: login{user: "app", password: "secret"},
		args: []string{"--skip-ssl", "-e", "use shop; select count(*) from items; select database()"},
		expect: []golden.Request{
			q("SELECT DATABASE()", "SELECT", ""), // the client asks before it switches
			{Command: "COM_INIT_DB", Database: "shop"},
			q("select count(*) from items", "SELECT", "shop"),
			q("select database()", "SELECT", "shop"),
			{Command: "COM_QUIT", Database: "shop"},
		},
	},
	{
		name: "cli_with_db", l: app,
		args: []string{"--skip-ssl", "--comments", "-e", "/* kept */ insert into items values (40, 'lime', 0.25); delete from items where id = 40; show databases"},
		expect: []golden.Request{
			q("/* kept */ insert into items values (40, 'lime', 0.25)", "INSERT", "shop"),
			q("delete from items where id = 40", "DELETE", "shop"),
			q("show databases", "SHOW", "shop"),
			{Command: "COM_QUIT", Database: "shop"},
		},
	},
	{
		name: "cli_tls", l: app, tls: true,
		args:   []string{"--ssl", "--skip-ssl-verify-server-cert", "-e", "select 1"},
		expect: []golden.Request{{Command: sslReq}},
	},
}

// cliScenarios records runs of the mariadb client through the relay.
func cliScenarios(srv *server) []golden.Conn {
	var out []golden.Conn
	for _, r := range cliRuns {
		rl := newRelay(srv.addr)
		_, port, _ := net.SplitHostPort(rl.addr())
		args := []string{"--no-defaults", "-h", "127.0.0.1", "-P", port, "--protocol=tcp", "-u", r.l.user, "-p" + r.l.password}
		args = append(args, r.args...)
		if r.l.db != "" {
			args = append(args, r.l.db)
		}
		if b, err := exec.Command("mariadb", args...).CombinedOutput(); err != nil {
			fatalf("%s: mariadb %q: %v: %s", r.name, args, err, b)
		}
		rec := rl.one(r.name)
		c := golden.Conn{Name: r.name, Client: "mariadb", User: r.l.user, Password: r.l.password, Database: r.l.db,
			Version: serverVersion, TLS: r.tls, ClientBytes: rec.fromClient.Bytes(), ServerBytes: rec.fromServer.Bytes()}
		if !r.tls {
			c.Requests = append(c.Requests, golden.Request{Command: hr, Database: r.l.db})
		}
		c.Requests = append(c.Requests, r.expect...)
		out = append(out, c)
	}
	return out
}
