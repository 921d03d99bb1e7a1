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
	route := harness.Route{Name: "all", Cluster: "shards", Extra: map[string]any{"hash_policy": []any{"hash_key"}}}
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
			t.Run("multi-key commands over shards", func(t *testing.T) { testRedisMultiKey(t, px) })
			t.Run("killed shard", func(t *testing.T) { testRedisKilledShard(t, px) })
			t.Run("routing by key prefix and RBAC", func(t *testing.T) { testRedisRoutingAndRBAC(t, px) })
			t.Run("downstream AUTH", func(t *testing.T) { testRedisDownstreamAuth(t, px) })
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

// startShards starts n redis-servers and a proxy sharding over them.
func startShards(t *testing.T, px harness.Proxy, n int) (proxy *redis.Client, shards []*harness.Redis, direct []*redis.Client) {
	var addrs []string
	for range n {
		r := harness.StartRedisProcess(t)
		shards, addrs = append(shards, r), append(addrs, r.Addr)
		direct = append(direct, redisClient(t, r.Addr))
	}
	return redisClient(t, px.Start(t, redisBootstrap(t, addrs, nil).MustRender())), shards, direct
}

// shardOf returns the index of the shard holding key, -1 for none.
func shardOf(t *testing.T, direct []*redis.Client, key string) int {
	for i, d := range direct {
		if n, err := d.Exists(context.Background(), key).Result(); err == nil && n == 1 {
			return i
		}
	}
	return -1
}

// testRedisMultiKey: MSET, MGET, DEL and EXISTS over keys on every shard,
// split by shard and merged in order; hash tags keep keys together;
// commands without a key to shard on get a clear error.
func testRedisMultiKey(t *testing.T, px harness.Proxy) {
	c, _, direct := startShards(t, px, 3)
	ctx := context.Background()
	var kv []any
	var keys []string
	for i := range 30 {
		k := fmt.Sprintf("mk:%d", i)
		keys, kv = append(keys, k), append(kv, k, fmt.Sprintf("v%d", i))
	}
	if err := c.MSet(ctx, kv...).Err(); err != nil {
		t.Fatalf("MSET of 30 keys over three shards: %v", err)
	}
	on := map[int]int{}
	for _, k := range keys {
		on[shardOf(t, direct, k)]++
	}
	if len(on) != 3 || on[-1] != 0 {
		t.Fatalf("MSET's keys per shard %v: want every key on one of the three shards, each shard some", on)
	}
	vals, err := c.MGet(ctx, append(keys, "mk:missing")...).Result()
	if err != nil || len(vals) != 31 {
		t.Fatalf("MGET: %v (%d values)", err, len(vals))
	}
	for i, v := range vals[:30] {
		if v != fmt.Sprintf("v%d", i) {
			t.Fatalf("MGET value %d = %v: out of order", i, v)
		}
	}
	if vals[30] != nil {
		t.Errorf("MGET of a missing key gave %v, want nil", vals[30])
	}
	if n, err := c.Exists(ctx, keys...).Result(); err != nil || n != 30 {
		t.Errorf("EXISTS over three shards = %d, %v; want 30", n, err)
	}
	if n, err := c.Del(ctx, keys[:10]...).Result(); err != nil || n != 10 {
		t.Errorf("DEL of 10 keys over the shards = %d, %v; want 10", n, err)
	}
	if err := c.MSet(ctx, "{user1}:a", "1", "{user1}:b", "2", "{user1}:c", "3").Err(); err != nil {
		t.Fatal(err)
	}
	if a, b, cc := shardOf(t, direct, "{user1}:a"), shardOf(t, direct, "{user1}:b"), shardOf(t, direct, "{user1}:c"); a < 0 || a != b || b != cc {
		t.Errorf("keys of one hash tag on shards %d, %d, %d: want one shard", a, b, cc)
	}
	for _, cmd := range [][]any{{"KEYS", "*"}, {"FLUSHALL"}} {
		if err := c.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "shard") {
			t.Errorf("%v across shards: %v, want an error saying it is not run across shards", cmd, err)
		}
	}
	// Commands that need a connection of their own are refused, not run
	// on a shared upstream connection.
	for _, cmd := range [][]any{{"MULTI"}, {"SUBSCRIBE", "news"}, {"BLPOP", "mk:20", "1"}} {
		if err := c.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "needs an upstream connection of its own") {
			t.Errorf("%v: %v, want the clear refusal", cmd, err)
		}
	}
	if v, err := c.Get(ctx, "mk:20").Result(); err != nil || v != "v20" {
		t.Errorf("GET after the refusals: %q %v", v, err)
	}
}

// testRedisKilledShard: with one of three shards killed, commands on its
// keys get Redis errors and every other key still works.
func testRedisKilledShard(t *testing.T, px harness.Proxy) {
	c, shards, direct := startShards(t, px, 3)
	ctx := context.Background()
	var keys []string
	for i := range 60 {
		k := fmt.Sprintf("ks:%d", i)
		if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	where := map[string]int{}
	for _, k := range keys {
		where[k] = shardOf(t, direct, k)
	}
	shards[1].Kill()
	var failedOnDead, okElsewhere int
	for _, k := range keys {
		_, err := c.Get(ctx, k).Result()
		switch {
		case where[k] == 1 && err != nil:
			if !strings.HasPrefix(err.Error(), "ERR ") {
				t.Errorf("GET %s on the killed shard: %v, want a Redis error reply", k, err)
			}
			failedOnDead++
		case where[k] == 1:
			t.Errorf("GET %s on the killed shard succeeded", k)
		case err != nil:
			t.Errorf("GET %s on a live shard: %v", k, err)
		default:
			okElsewhere++
		}
	}
	if failedOnDead == 0 || okElsewhere == 0 {
		t.Errorf("%d keys failed on the killed shard, %d succeeded elsewhere", failedOnDead, okElsewhere)
	}
	t.Logf("killed shard: %d keys failed with Redis errors, %d keys on the live shards answered", failedOnDead, okElsewhere)
}

// testRedisRoutingAndRBAC: route matchers on a command's metadata send
// keys of a prefix to their own server, and the RBAC filter refuses
// FLUSHDB with a Redis error, as for any protocol.
func testRedisRoutingAndRBAC(t *testing.T, px harness.Proxy) {
	sessions, rest := harness.StartRedis(t), harness.StartRedis(t)
	b := harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "redis", Protocol: "redis", Codec: "metaproxy.codec.redis",
		Routes: []harness.Route{
			{Name: "sessions", Match: []harness.Match{{Name: "key", Prefix: "session:"}}, Cluster: "sessions"},
			{Name: "rest", Cluster: "rest"},
		},
		Filters: rbacFilters(rbacPolicy("DENY", methodIs("FLUSHDB"), anyRule), nil),
	}}}, Clusters: []harness.Cluster{{Name: "sessions", Endpoints: []string{sessions}}, {Name: "rest", Endpoints: []string{rest}}}}
	c := redisClient(t, px.Start(t, b.MustRender()))
	ctx := context.Background()
	for _, k := range []string{"session:1", "session:2", "user:1"} {
		if err := c.Set(ctx, k, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := redisClient(t, sessions).DBSize(ctx).Result(); n != 2 {
		t.Errorf("the sessions server holds %d keys, want the 2 session: keys", n)
	}
	if n, _ := redisClient(t, rest).DBSize(ctx).Result(); n != 1 {
		t.Errorf("the other server holds %d keys, want 1", n)
	}
	if err := c.Do(ctx, "FLUSHDB").Err(); err == nil || !strings.Contains(err.Error(), "RBAC") {
		t.Errorf("FLUSHDB under a DENY policy: %v, want the RBAC refusal", err)
	}
	if n, _ := redisClient(t, rest).DBSize(ctx).Result(); n != 1 {
		t.Errorf("after the refused FLUSHDB the server holds %d keys", n)
	}
}

// testRedisDownstreamAuth: with the codec's downstream_auth_password, a
// client gets NOAUTH until it authenticates with that password; the
// redis-server behind has none.
func testRedisDownstreamAuth(t *testing.T, px harness.Proxy) {
	r := harness.StartRedis(t)
	codecCfg := map[string]any{"protocol": map[string]any{"name": "redis", "codec": map[string]any{
		"name": "metaproxy.codec.redis",
		"config": map[string]any{"@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
			"type_url": "type.googleapis.com/metaproxy.codecs.redis.Options",
			"value":    map[string]any{"downstream_auth_password": "s3cret"}},
	}}}
	addr := px.Start(t, redisBootstrap(t, []string{r}, codecCfg).MustRender())
	ctx := context.Background()
	if err := redisClient(t, addr).Set(ctx, "k", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Errorf("SET without AUTH: %v, want NOAUTH", err)
	}
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, Password: "s3cret", DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET after AUTH: %v", err)
	}
	if v, err := redisClient(t, r).Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Errorf("the server holds %q (%v), want the authenticated client's write", v, err)
	}
}
