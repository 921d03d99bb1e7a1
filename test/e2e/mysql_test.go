package e2e

// MySQL (MariaDB) through metaproxy's connection-bound mode, in every
// proxy host, against Debian's mariadbd and go-sql-driver/mysql: queries,
// prepared statements and transactions; RBAC refusing DDL for one user
// with a MySQL error; a killed server closing only its own clients'
// connections.

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

// mysqlBootstrap is one MySQL listener whose connections are bound to a
// server of cluster "db" (round robin over servers).
func mysqlBootstrap(t *testing.T, servers []string, filters []harness.Filter) harness.Bootstrap {
	return harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "mysql", Protocol: "mysql", Codec: "metaproxy.codec.mysql", Filters: filters,
		Routes: []harness.Route{{Name: "all", Cluster: "db"}},
	}}}, Clusters: []harness.Cluster{{Name: "db", Endpoints: servers}}}
}

func openDB(t *testing.T, addr string, u harness.MariaDBUser) *sql.DB {
	db, err := sql.Open("mysql", harness.DSN(addr, u, "timeout=5s&readTimeout=10s"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMySQL(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Run("queries, prepared statements, transactions", func(t *testing.T) { testMySQLQueries(t, px) })
			t.Run("RBAC refuses DDL", func(t *testing.T) { testMySQLRBAC(t, px) })
			t.Run("killed server", func(t *testing.T) { testMySQLKilledServer(t, px) })
			t.Run("routed on user", func(t *testing.T) { testMySQLRoutedOnUser(t, px) })
		})
	}
}

func testMySQLQueries(t *testing.T, px harness.Proxy) {
	m := harness.StartMariaDB(t)
	m.SQL(t, "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(64))")
	db := openDB(t, px.Start(t, mysqlBootstrap(t, []string{m.Addr}, nil).MustRender()), m.App)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "INSERT INTO items VALUES (1, 'apple'), (2, 'pear')"); err != nil {
		t.Fatalf("INSERT through the proxy: %v", err)
	}
	var name string
	if err := db.QueryRowContext(ctx, "SELECT name FROM items WHERE id = 2").Scan(&name); err != nil || name != "pear" {
		t.Fatalf("SELECT: %q %v", name, err)
	}
	st, err := db.PrepareContext(ctx, "SELECT name FROM items WHERE id = ?")
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	defer st.Close()
	for id, want := range map[int]string{1: "apple", 2: "pear"} {
		if err := st.QueryRowContext(ctx, id).Scan(&name); err != nil || name != want {
			t.Errorf("prepared SELECT %d: %q %v", id, name, err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO items VALUES (3, 'plum')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx, _ = db.BeginTx(ctx, nil)
	if _, err := tx.ExecContext(ctx, "INSERT INTO items VALUES (4, 'fig')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM items").Scan(&n); err != nil || n != 3 {
		t.Errorf("after a rolled-back and a committed transaction: %d rows, %v; want 3", n, err)
	}
}

// testMySQLRBAC: a DENY policy on DDL statements of user app refuses
// CREATE TABLE with a MySQL error; the same connection goes on working,
// and another user's DDL is not refused by the proxy.
func testMySQLRBAC(t *testing.T, px harness.Proxy) {
	m := harness.StartMariaDB(t)
	m.SQL(t, "CREATE TABLE shop.items (id INT PRIMARY KEY)")
	deny := map[string]any{"and_rules": map[string]any{"rules": []any{methodIs("DDL"),
		map[string]any{"header": map[string]any{"name": "user", "string_match": map[string]any{"exact": m.App.Name}}}}}}
	addr := px.Start(t, mysqlBootstrap(t, []string{m.Addr}, rbacFilters(rbacPolicy("DENY", deny, anyRule), nil)).MustRender())
	ctx := context.Background()
	conn, err := openDB(t, addr, m.App).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "CREATE TABLE other (id INT)")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || !strings.Contains(me.Message, "RBAC") {
		t.Fatalf("CREATE TABLE as %s under the DENY policy: %v, want a MySQL error from the RBAC filter", m.App.Name, err)
	}
	t.Logf("refused: MySQL error %d: %s", me.Number, me.Message)
	if _, err := conn.ExecContext(ctx, "INSERT INTO items VALUES (1)"); err != nil {
		t.Errorf("INSERT on the same connection after the refusal: %v", err)
	}
	if out := strings.TrimSpace(m.SQL(t, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'shop' AND table_name = 'other'")); out != "0" {
		t.Errorf("the refused table exists (%s)", out)
	}
}

// testMySQLKilledServer: connections bound to a killed server close; the
// other server's clients keep working on their connections.
func testMySQLKilledServer(t *testing.T, px harness.Proxy) {
	a, b := harness.StartMariaDB(t), harness.StartMariaDB(t)
	db := openDB(t, px.Start(t, mysqlBootstrap(t, []string{a.Addr, b.Addr}, nil).MustRender()), a.App)
	ctx := context.Background()
	var onA, onB []*sql.Conn
	for range 6 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var port string
		if err := c.QueryRowContext(ctx, "SELECT @@port").Scan(&port); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(a.Addr, ":"+port) {
			onA = append(onA, c)
		} else {
			onB = append(onB, c)
		}
	}
	if len(onA) == 0 || len(onB) == 0 {
		t.Fatalf("%d connections on one server, %d on the other: want both used", len(onA), len(onB))
	}
	b.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range onB {
		var one int
		for c.QueryRowContext(ctx, "SELECT 1").Scan(&one) == nil {
			if time.Now().After(deadline) {
				t.Fatal("a connection bound to the killed server still answers")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i, c := range onA {
		var one int
		if err := c.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Errorf("connection %d on the live server after the kill: %v", i, err)
		}
	}
	t.Logf("%d connections on the live server kept working, %d on the killed one closed", len(onA), len(onB))
}

// testMySQLRoutedOnUser: a route on the handshake's user sends user
// reader to its own server; the proxy greets the client itself and
// switches its authentication to the chosen server's challenge, so the
// server checks the real password (a wrong one is refused by the server).
func testMySQLRoutedOnUser(t *testing.T, px harness.Proxy) {
	primary, replica := harness.StartMariaDB(t), harness.StartMariaDB(t)
	b := harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "mysql", Protocol: "mysql", Codec: "metaproxy.codec.mysql",
		Routes: []harness.Route{
			{Name: "readers", Match: []harness.Match{harness.Exact("user", primary.Reader.Name)}, Cluster: "replica"},
			{Name: "rest", Match: []harness.Match{harness.Exact("database", harness.MariaDBDatabase)}, Cluster: "primary"},
		},
	}}}, Clusters: []harness.Cluster{{Name: "primary", Endpoints: []string{primary.Addr}}, {Name: "replica", Endpoints: []string{replica.Addr}}}}
	addr := px.Start(t, b.MustRender())
	ctx := context.Background()
	portOf := func(u harness.MariaDBUser) (string, error) {
		var port string
		err := openDB(t, addr, u).QueryRowContext(ctx, "SELECT @@port").Scan(&port)
		return port, err
	}
	for _, tc := range []struct {
		user harness.MariaDBUser
		want *harness.MariaDB
	}{{primary.App, primary}, {primary.Reader, replica}} {
		port, err := portOf(tc.user)
		if err != nil || !strings.HasSuffix(tc.want.Addr, ":"+port) {
			t.Errorf("user %s: served on port %q (%v), want %s", tc.user.Name, port, err, tc.want.Addr)
		}
	}
	_, err := portOf(harness.MariaDBUser{Name: primary.App.Name, Password: "wrong"})
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1045 {
		t.Errorf("a wrong password through the proxy: %v, want the server's access denied (1045)", err)
	}
}
