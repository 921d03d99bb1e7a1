package harness_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/metaproxy/metaproxy/test/harness"
)

func openMariaDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mysqlErr returns the server error code of err, 0 if it is not one.
func mysqlErr(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// TestMariaDB starts a MariaDB server and checks its users with
// go-sql-driver/mysql over TCP: the app user writes and reads, the reader
// only reads, a wrong password and root over TCP are refused; then
// mariadb-slap measures it, and the server stops when killed.
func TestMariaDB(t *testing.T) {
	m := harness.StartMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	app := openMariaDB(t, harness.DSN(m.Addr, m.App, ""))
	for _, stmt := range []string{
		"CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40))",
		"INSERT INTO items VALUES (1, 'apple'), (2, 'pear')",
	} {
		if _, err := app.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	var name string
	if err := app.QueryRowContext(ctx, "SELECT name FROM items WHERE id = ?", 2).Scan(&name); err != nil || name != "pear" {
		t.Fatalf("select: %q %v", name, err)
	}

	reader := openMariaDB(t, harness.DSN(m.Addr, m.Reader, ""))
	var n int
	if err := reader.QueryRowContext(ctx, "SELECT COUNT(*) FROM items").Scan(&n); err != nil || n != 2 {
		t.Fatalf("reader select: %d %v", n, err)
	}
	if _, err := reader.ExecContext(ctx, "DELETE FROM items"); mysqlErr(err) != 1142 {
		t.Errorf("reader delete: %v, want ER_TABLEACCESS_DENIED_ERROR (1142)", err)
	}
	wrong := openMariaDB(t, harness.DSN(m.Addr, harness.MariaDBUser{Name: "app", Password: "wrong"}, ""))
	if err := wrong.PingContext(ctx); mysqlErr(err) != 1045 {
		t.Errorf("wrong password: %v, want ER_ACCESS_DENIED_ERROR (1045)", err)
	}
	root := openMariaDB(t, harness.DSN(m.Addr, harness.MariaDBUser{Name: "root", Password: "x"}, ""))
	if err := root.PingContext(ctx); err == nil {
		t.Error("root logged in over TCP")
	}
	if out := m.SQL(t, "SELECT COUNT(*) FROM shop.items"); strings.TrimSpace(out) != "2" {
		t.Errorf("root over the socket: %q", out)
	}

	qps := harness.Slap(t, m.Addr, m.App.Name, m.App.Password, 4, 500, "SELECT name FROM items WHERE id = 1")
	if qps <= 0 {
		t.Fatalf("slap: %v queries/s", qps)
	}
	t.Logf("mariadb-slap: %.0f queries/s (4 clients, 2000 queries)", qps)
	if err := app.QueryRowContext(ctx, "SELECT COUNT(*) FROM items").Scan(&n); err != nil || n != 2 {
		t.Fatalf("after mariadb-slap: %d %v", n, err)
	}

	m.Kill()
	if err := harness.WaitPortClosed(m.Addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
