package bench

import (
	"testing"

	"github.com/metaproxy/metaproxy/test/harness"
)

// BenchmarkMySQL runs mariadb-slap (16 clients, a primary-key SELECT)
// against a mariadbd directly and through the standalone proxy in the same
// run, and reports queries/s through the proxy as a ratio of direct, and
// the proxy's CPU per query. Run it once:
//
//	go test -run '^$' -bench MySQL -benchtime 1x ./bench
func BenchmarkMySQL(b *testing.B) {
	m := harness.StartMariaDB(b)
	m.SQL(b, "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(64)); INSERT INTO shop.items VALUES (1, 'apple')")
	y := harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(b), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "mysql", Protocol: "mysql", Codec: "metaproxy.codec.mysql",
		Routes: []harness.Route{{Name: "all", Cluster: "db"}},
	}}}, Clusters: []harness.Cluster{{Name: "db", Endpoints: []string{m.Addr}}}}.MustRender()
	addr, mp := harness.Standalone{}.StartProcess(b, y)
	const clients, iterations = 16, 2000
	const query = "SELECT name FROM shop.items WHERE id = 1"
	for b.Loop() {
		direct := harness.Slap(b, m.Addr, m.App.Name, m.App.Password, clients, iterations, query)
		var proxied float64
		perQuery := perOp(b, mp.Pid(), float64(clients*iterations), func() { proxied = harness.Slap(b, addr, m.App.Name, m.App.Password, clients, iterations, query) })
		b.Logf("mariadb-slap, %d clients: direct %.0f queries/s, through metaproxy %.0f queries/s (%.2f×); proxy CPU %.2f µs per query",
			clients, direct, proxied, proxied/direct, perQuery)
		b.ReportMetric(proxied/direct, "ratio")
		b.ReportMetric(perQuery, "proxy-cpu-µs/query")
	}
}
