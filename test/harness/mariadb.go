package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The MariaDB binaries StartMariaDB and Slap run (Debian's mariadb-server
// and mariadb-client packages; .ci/run installs them).
var (
	MariaDBServer    = "mariadbd"
	MariaDBInstallDB = "mariadb-install-db"
	MariaDBClient    = "mariadb"
	MariaDBSlap      = "mariadb-slap"
)

// MariaDBDatabase is the database StartMariaDB creates.
const MariaDBDatabase = "shop"

// MariaDBUser is a user that logs in over TCP with a password
// (mysql_native_password, MariaDB's default).
type MariaDBUser struct {
	Name, Password string
}

// MariaDB is a running mariadbd with the database MariaDBDatabase and two
// users: App (all privileges on it) and Reader (SELECT only). root logs in
// over the socket only (unix_socket authentication).
type MariaDB struct {
	*Process
	Addr   string // "127.0.0.1:P"
	Socket string // the Unix socket root logs in on
	Dir    string // the data directory
	App    MariaDBUser
	Reader MariaDBUser
}

// StartMariaDB initialises a data directory in a t.TempDir(), starts
// mariadbd on a free port of 127.0.0.1 (no binary log, a 64 MiB buffer
// pool), waits until it accepts connections and creates the database and
// the users. The server is killed when the test ends.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	bin := lookMariaDB(t, MariaDBServer)
	data := t.TempDir()
	// A Unix socket path must fit in 108 bytes: t.TempDir()'s may not.
	sockDir, err := os.MkdirTemp("", "mariadb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	start := time.Now()
	if out, err := exec.Command(lookMariaDB(t, MariaDBInstallDB), "--user=root", "--datadir="+data,
		"--skip-test-db", "--auth-root-authentication-method=socket").CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", MariaDBInstallDB, err, out)
	}
	port := FreePort(t)
	m := &MariaDB{
		Addr:   Addr(port),
		Socket: filepath.Join(sockDir, "mysqld.sock"),
		Dir:    data,
		App:    MariaDBUser{"app", "secret"},
		Reader: MariaDBUser{"reader", "secret2"},
	}
	m.Process = StartListening(t, "mariadb "+m.Addr, m.Addr, bin,
		"--no-defaults", "--user=root", "--datadir="+data, "--socket="+m.Socket,
		"--port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-log-bin",
		"--innodb-buffer-pool-size=64M", "--skip-name-resolve")
	m.SQL(t, fmt.Sprintf(`CREATE DATABASE %[1]s;
CREATE USER '%[2]s'@'%%' IDENTIFIED BY '%[3]s';
GRANT ALL ON %[1]s.* TO '%[2]s'@'%%';
CREATE USER '%[4]s'@'%%' IDENTIFIED BY '%[5]s';
GRANT SELECT ON %[1]s.* TO '%[4]s'@'%%';`,
		MariaDBDatabase, m.App.Name, m.App.Password, m.Reader.Name, m.Reader.Password))
	t.Logf("mariadb ready on %s in %v", m.Addr, time.Since(start).Round(time.Millisecond))
	return m
}

func lookMariaDB(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		bin, err = exec.LookPath(filepath.Join("/usr/sbin", name)) // mariadbd, outside a user's PATH
	}
	if err != nil {
		t.Fatalf("%s not found (apt-get install mariadb-server mariadb-client): %v", name, err)
	}
	return bin
}

// SQL runs statements as root over the socket with the mariadb client and
// returns its output (tab-separated rows, no column names).
func (m *MariaDB) SQL(t testing.TB, statements string) string {
	t.Helper()
	out, errOut, err := Run(t, StartTimeout, lookMariaDB(t, MariaDBClient), "--no-defaults",
		"--socket="+m.Socket, "-uroot", "-N", "-B", "-e", statements)
	if err != nil {
		t.Fatalf("mariadb -e %q: %v\n%s", statements, err, errOut)
	}
	return out
}

// DSN returns a go-sql-driver/mysql data source name for u on the
// database MariaDBDatabase at addr (the server's, or a proxy's), with
// params ("" or "k=v&k=v").
func DSN(addr string, u MariaDBUser, params string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?%s", u.Name, u.Password, addr, MariaDBDatabase, params)
}

var (
	slapSeconds = regexp.MustCompile(`Average number of seconds to run all queries: ([0-9.]+) seconds`)
	slapClients = regexp.MustCompile(`Number of clients running queries: ([0-9]+)`)
	slapPer     = regexp.MustCompile(`Average number of queries per client: ([0-9]+)`)
)

// Slap runs mariadb-slap against addr (a server's or a proxy's) as user
// with password on MariaDBDatabase: concurrency clients, each running
// query (one statement) iterations times on its own connection, and
// returns the queries per second it measured (all clients' queries over
// its average time to run them, connecting excluded). It fails t if a
// client fails or the run is too short for mariadb-slap's millisecond
// clock.
func Slap(t testing.TB, addr, user, password string, concurrency, iterations int, query string) float64 {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("slap: address %q is not host:port", addr)
	}
	stdout, stderr, err := Run(t, 5*time.Minute, lookMariaDB(t, MariaDBSlap), "--no-defaults",
		"--host="+host, "--port="+port, "--protocol=tcp", "--user="+user, "--password="+password,
		"--create-schema="+MariaDBDatabase, "--no-drop", "--iterations=1",
		"--concurrency="+strconv.Itoa(concurrency), "--number-of-queries="+strconv.Itoa(concurrency*iterations),
		"--query="+query)
	if err != nil || strings.Contains(stderr, "Error") {
		t.Fatalf("mariadb-slap: %v\n%s%s", err, stdout, stderr)
	}
	secs, err1 := slapFloat(slapSeconds, stdout)
	clients, err2 := slapFloat(slapClients, stdout)
	per, err3 := slapFloat(slapPer, stdout)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("mariadb-slap output not understood (%v %v %v):\n%s", err1, err2, err3, stdout)
	}
	if secs <= 0 {
		t.Fatalf("mariadb-slap: %v queries took 0.000 s: too few to measure\n%s", clients*per, stdout)
	}
	return clients * per / secs
}

func slapFloat(re *regexp.Regexp, out string) (float64, error) {
	m := re.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no %q", re)
	}
	return strconv.ParseFloat(m[1], 64)
}
