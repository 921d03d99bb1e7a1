package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/metaproxy/metaproxy/codecs/mysql/internal/golden"
)

// Command names as the codec must give them.
const (
	hr       = "HandshakeResponse"
	sslReq   = "SSLRequest"
	authResp = "AuthSwitchResponse"
	infile   = "LocalInfileData"
)

// session is one go-sql-driver connection and what it must decode to.
type session struct {
	name string
	ctx  context.Context
	db   *sql.DB
	conn *sql.Conn
	c    golden.Conn
	cur  string // the current database
}

// login describes a scenario's connection.
type login struct {
	user, password, db string
	params             string // DSN parameters
}

// open connects through addr with l. The handshake's expected messages
// (and those of a failed login) are added by the scenario.
func open(name, addr string, l login) *session {
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/%s?%s", l.user, l.password, addr, l.db, l.params)
	db, err := sql.Open("mysql", dsn)
	check(err)
	db.SetMaxOpenConns(1)
	s := &session{name: name, ctx: context.Background(), db: db, cur: l.db,
		c: golden.Conn{Name: name, Client: "go-sql-driver/mysql", User: l.user, Password: l.password, Database: l.db}}
	return s
}

// connect pins the session's connection, recording an error code when
// the login fails.
func (s *session) connect() bool {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	conn, err := s.db.Conn(ctx)
	if err == nil {
		err = conn.PingContext(ctx)
		s.expect(golden.Request{Command: "COM_PING"})
	}
	if err != nil {
		s.fail("connect", err)
		return false
	}
	s.conn = conn
	return true
}

func (s *session) expect(r golden.Request) {
	if r.Database == "" {
		r.Database = s.cur
	}
	s.c.Requests = append(s.c.Requests, r)
}

// fail records the error code the driver reported; anything but a
// server error stops the generator.
func (s *session) fail(what string, err error) {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		fatalf("%s: %s: %v", s.name, what, err)
	}
	s.c.Errors = append(s.c.Errors, me.Number)
}

// exec runs stmt with Exec (COM_QUERY without arguments).
func (s *session) exec(stmt, kind string) {
	s.expect(golden.Request{Command: "COM_QUERY", Statement: kind, SQL: stmt})
	if _, err := s.conn.ExecContext(s.ctx, stmt); err != nil {
		s.fail(stmt, err)
	}
}

// query runs stmt with Query and reads every row of every result set.
func (s *session) query(stmt, kind string) {
	s.expect(golden.Request{Command: "COM_QUERY", Statement: kind, SQL: stmt})
	rows, err := s.conn.QueryContext(s.ctx, stmt)
	if err != nil {
		s.fail(stmt, err)
		return
	}
	drain(rows)
}

func drain(rows *sql.Rows) {
	defer rows.Close()
	for {
		cols, err := rows.Columns()
		check(err)
		for rows.Next() {
			vals := make([]any, len(cols))
			for i := range vals {
				vals[i] = new(sql.RawBytes)
			}
			check(rows.Scan(vals...))
		}
		if !rows.NextResultSet() {
			check(rows.Err())
			return
		}
	}
}

// ident asks the server for the connection id and version the greeting
// must carry.
func (s *session) ident() {
	const q = "SELECT CONNECTION_ID(), VERSION()"
	s.expect(golden.Request{Command: "COM_QUERY", Statement: "SELECT", SQL: q})
	check(s.conn.QueryRowContext(s.ctx, q).Scan(&s.c.ConnID, &s.c.Version))
}

// use runs USE, which changes the current database.
func (s *session) use(db string) {
	s.cur = db
	s.exec("USE "+db, "USE")
}

// close returns the connection and closes the pool: COM_QUIT.
func (s *session) close() {
	if s.conn != nil {
		check(s.conn.Close())
		s.expect(golden.Request{Command: "COM_QUIT"})
	}
	check(s.db.Close())
}

// record fills the session's conn with the relay's recording.
func (s *session) record(rec *recording) golden.Conn {
	s.c.ClientBytes, s.c.ServerBytes = rec.fromClient.Bytes(), rec.fromServer.Bytes()
	if s.c.Version == "" {
		s.c.Version = serverVersion
	}
	return s.c
}

// serverVersion is VERSION(), for the scenarios that cannot ask.
var serverVersion string

// through runs fn on a session through a fresh relay to srv.
func through(srv *server, name string, l login, fn func(s *session)) golden.Conn {
	rl := newRelay(srv.addr)
	s := open(name, rl.addr(), l)
	fn(s)
	s.close()
	return s.record(rl.one(name))
}
