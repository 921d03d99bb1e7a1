package main

import (
	"io"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/metaproxy/metaproxy/codecs/mysql/internal/golden"
)

var (
	app    = login{user: "app", password: "secret", db: "shop"}
	reader = login{user: "reader", password: "secret2", db: "shop"}
)

// handshake expects a successful login's messages up to the first command.
func handshake(s *session, extra ...string) bool {
	s.expect(golden.Request{Command: hr})
	for _, e := range extra {
		s.expect(golden.Request{Command: e})
	}
	if !s.connect() {
		return false
	}
	s.ident()
	return true
}

// driverScenarios records go-sql-driver connections straight to the server.
func driverScenarios(srv *server) []golden.Conn {
	serverVersion = strings.TrimSpace(srv.sql("SELECT VERSION()"))
	var out []golden.Conn
	add := func(name string, l login, fn func(s *session)) { out = append(out, through(srv, name, l, fn)) }

	add("connect_with_db", app, func(s *session) { handshake(s) })
	add("connect_without_db", login{user: "app", password: "secret"}, func(s *session) {
		if handshake(s) {
			s.use("shop")
			s.query("SELECT DATABASE()", "SELECT")
		}
	})
	add("statement_kinds", app, func(s *session) {
		if !handshake(s) {
			return
		}
		s.exec("CREATE TABLE t1 (id INT PRIMARY KEY, v VARCHAR(20))", "DDL")
		s.exec("/* leading comment */ INSERT INTO t1 VALUES (1, 'a'), (2, 'b')", "INSERT")
		s.exec("-- line comment\nUPDATE t1 SET v = 'c' WHERE id = 2", "UPDATE")
		s.exec("# hash comment\nREPLACE INTO t1 VALUES (3, 'd')", "REPLACE")
		s.exec("  \n\tDELETE FROM t1 WHERE id = 3", "DELETE")
		s.exec("/*!40101 SET @saved_mode = @@session.sql_mode */", "SET")
		s.exec("set names utf8mb4", "SET")
		s.query("SHOW TABLES", "SHOW")
		s.query("SELECT id, v FROM t1 ORDER BY id", "SELECT")
		s.query("(SELECT 1) UNION (SELECT 2)", "SELECT")
		s.query("WITH c AS (SELECT id FROM t1) SELECT COUNT(*) FROM c", "SELECT")
		s.exec("ALTER TABLE t1 ADD COLUMN n INT", "DDL")
		s.exec("RENAME TABLE t1 TO t2", "DDL")
		s.exec("TRUNCATE TABLE t2", "DDL")
		s.exec("CREATE PROCEDURE p_count() SELECT COUNT(*) FROM items", "DDL")
		s.query("CALL p_count()", "CALL")
		s.exec("DO 1", "OTHER")
		s.exec("DROP PROCEDURE p_count", "DDL")
		s.exec("DROP TABLE t2", "DDL")
		s.query("SELECT * FROM no_such_table", "SELECT") // ER_NO_SUCH_TABLE
		s.query("SELEC 1", "OTHER")                      // ER_PARSE_ERROR
	})
	add("transaction", app, func(s *session) {
		if !handshake(s) {
			return
		}
		s.expect(golden.Request{Command: "COM_QUERY", Statement: "TRANSACTION", SQL: "START TRANSACTION"})
		tx, err := s.conn.BeginTx(s.ctx, nil)
		check(err)
		s.expect(golden.Request{Command: "COM_QUERY", Statement: "INSERT", SQL: "INSERT ..."})
		_, err = tx.Exec("INSERT INTO items VALUES (10, 'kiwi', 0.50)")
		check(err)
		s.expect(golden.Request{Command: "COM_QUERY", Statement: "TRANSACTION", SQL: "COMMIT"})
		check(tx.Commit())
		s.expect(golden.Request{Command: "COM_QUERY", Statement: "TRANSACTION", SQL: "START TRANSACTION"})
		tx, err = s.conn.BeginTx(s.ctx, nil)
		check(err)
		s.expect(golden.Request{Command: "COM_QUERY", Statement: "UPDATE", SQL: "UPDATE ..."})
		_, err = tx.Exec("UPDATE items SET price = 9 WHERE id = 10")
		check(err)
		s.expect(golden.Request{Command: "COM_QUERY", Statement: "TRANSACTION", SQL: "ROLLBACK"})
		check(tx.Rollback())
		s.exec("begin", "TRANSACTION")
		s.exec("DELETE FROM items WHERE id = 10", "DELETE")
		s.exec("commit", "TRANSACTION")
	})
	add("prepared", app, func(s *session) {
		if !handshake(s) {
			return
		}
		q := "SELECT name, price FROM items WHERE id = ?"
		s.expect(golden.Request{Command: "COM_STMT_PREPARE", Statement: "SELECT", SQL: q})
		st, err := s.conn.PrepareContext(s.ctx, q)
		check(err)
		for _, id := range []int{1, 2} {
			s.expect(golden.Request{Command: "COM_STMT_EXECUTE"})
			var name, price string
			check(st.QueryRow(id).Scan(&name, &price))
		}
		s.expect(golden.Request{Command: "COM_STMT_CLOSE"})
		check(st.Close())
		q = "INSERT INTO items VALUES (?, ?, ?)"
		s.expect(golden.Request{Command: "COM_STMT_PREPARE", Statement: "INSERT", SQL: q})
		st, err = s.conn.PrepareContext(s.ctx, q)
		check(err)
		s.expect(golden.Request{Command: "COM_STMT_EXECUTE"})
		_, err = st.Exec(20, "plum", 1.25)
		check(err)
		s.expect(golden.Request{Command: "COM_STMT_CLOSE"})
		check(st.Close())
		q = "SELECT nope FROM items WHERE id = ?"
		s.expect(golden.Request{Command: "COM_STMT_PREPARE", Statement: "SELECT", SQL: q})
		if _, err := s.conn.PrepareContext(s.ctx, q); err != nil {
			s.fail(q, err) // ER_BAD_FIELD_ERROR
		}
		s.exec("DELETE FROM items WHERE id = 20", "DELETE")
	})
	add("wrong_password", login{user: "app", password: "wrong", db: "shop"}, func(s *session) {
		s.expect(golden.Request{Command: hr})
		if s.connect() {
			panic("wrong password accepted")
		}
	})
	add("reader_denied", reader, func(s *session) {
		if !handshake(s) {
			return
		}
		s.query("SELECT COUNT(*) FROM items", "SELECT")
		s.exec("DELETE FROM items", "DELETE")           // ER_TABLEACCESS_DENIED_ERROR
		s.exec("CREATE TABLE forbidden (a INT)", "DDL") // ER_TABLEACCESS_DENIED_ERROR
		// ER_DBACCESS_DENIED_ERROR: the server stays in shop, but the
		// codec, which does not see answers, goes by what was asked.
		s.use("mysql")
		s.query("SELECT DATABASE()", "SELECT")
	})
	add("ed25519_auth_switch", login{user: "edu", password: "secret3", db: "shop"}, func(s *session) {
		handshake(s, authResp)
	})
	add("multi_statements", login{user: "app", password: "secret", db: "shop", params: "multiStatements=true"}, func(s *session) {
		if !handshake(s) {
			return
		}
		s.exec("SELECT 1; DELETE FROM items WHERE id = 99", "MULTI")
		s.exec("UPDATE items SET price = price WHERE id = 1; ", "UPDATE")
		s.exec("CREATE PROCEDURE p2() BEGIN SELECT 1; SELECT 2; END", "DDL")
		s.exec("DROP PROCEDURE p2", "DDL")
	})
	mysql.RegisterReaderHandler("rows", func() io.Reader { return strings.NewReader("30,fig,3.00\n31,date,4.00\n") })
	add("local_infile", app, func(s *session) {
		if !handshake(s) {
			return
		}
		s.exec("LOAD DATA LOCAL INFILE 'Reader::rows' INTO TABLE items FIELDS TERMINATED BY ','", "OTHER")
		s.expect(golden.Request{Command: infile}) // the file
		s.expect(golden.Request{Command: infile}) // its end: an empty packet
		s.exec("DELETE FROM items WHERE id >= 30", "DELETE")
	})
	add("tls", login{user: "app", password: "secret", db: "shop", params: "tls=skip-verify"}, func(s *session) {
		s.c.TLS = true
		s.c.Requests = append(s.c.Requests, golden.Request{Command: sslReq})
		check(s.db.Ping())
	})
	add("compressed", login{user: "app", password: "secret", db: "shop", params: "compress=true"}, func(s *session) {
		s.c.Compressed = true
		s.expect(golden.Request{Command: hr})
		check(s.db.Ping())
	})
	return out
}
