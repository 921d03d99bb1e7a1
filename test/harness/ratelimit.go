package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Real peers of the global rate-limit filter's tests: redis-server (Debian's
// package) and Envoy's reference rate-limit service
// (github.com/envoyproxy/ratelimit), built from its own Go module in
// test/peers/ratelimit so that its dependencies stay out of the test module.

// RedisServer is the redis-server binary StartRedis runs (Debian's
// redis-server package; .ci/run installs it).
var RedisServer = "redis-server"

// StartRedis starts a redis-server on a free port of 127.0.0.1 with no
// persistence (its directory is a t.TempDir()), waits until it accepts
// connections and returns its address "127.0.0.1:P". The server is killed
// when the test ends.
func StartRedis(t testing.TB) string {
	t.Helper()
	return StartRedisProcess(t).Addr
}

// Redis is a running redis-server.
type Redis struct {
	*Process
	Addr string // "127.0.0.1:P"
}

// StartRedisProcess is StartRedis, and also returns the process so that a
// test can kill it.
func StartRedisProcess(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath(RedisServer)
	if err != nil {
		t.Fatalf("%s not found (apt-get install redis-server): %v", RedisServer, err)
	}
	port := FreePort(t)
	addr := Addr(port)
	p := StartListening(t, "redis "+addr, addr, bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(),
		"--loglevel", "warning")
	return &Redis{Process: p, Addr: addr}
}

// RateLimitPeerDir is the directory, relative to the test module, of the Go
// module holding the rate-limit service's main package.
const RateLimitPeerDir = "peers/ratelimit"

// BuildRateLimitService builds Envoy's rate-limit service from
// test/peers/ratelimit (its own module, with its own go.mod and go.sum) and
// returns the binary's path. Like Build, it builds once per test process and
// concurrent callers wait for the same build; the binary lives in the run's
// build directory, which Main removes.
func BuildRateLimitService(t testing.TB) string {
	t.Helper()
	b := moduleDirOnce(t, RateLimitPeerDir, "ratelimit")
	if b.err != nil {
		t.Fatalf("build %s: %v", RateLimitPeerDir, b.err)
	}
	return b.bin
}

// buildModuleDir runs `go build .` in rel, a module directory under the test
// module, and names the binary after name.
func buildModuleDir(t testing.TB, rel, name string) (string, error) {
	dir, err := buildDir()
	if err != nil {
		return "", err
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the harness source")
	}
	modDir := filepath.Join(filepath.Dir(filepath.Dir(file)), filepath.FromSlash(rel))
	out := filepath.Join(dir, fmt.Sprintf("%s-%d", name, time.Now().UnixNano()))
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = modDir
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, msg)
	}
	t.Logf("built %s in %v", rel, time.Since(start).Round(time.Millisecond))
	return out, nil
}

// RateLimitService is a running envoyproxy/ratelimit service. Addr is its
// gRPC address (envoy.service.ratelimit.v3.RateLimitService); Kill (from
// Process) stops it.
type RateLimitService struct {
	*Process
	Addr      string // gRPC, "127.0.0.1:G"
	HTTPAddr  string // HTTP API (/json, /healthcheck)
	DebugAddr string // debug endpoints (/rlconfig, /stats)
	Dir       string // RUNTIME_ROOT; the rules are in Dir/ratelimit/config/config.yaml
}

// StartRateLimitService starts Envoy's rate-limit service, backed by the
// redis at redisAddr, with the rules configYAML (written to
// <dir>/ratelimit/config/config.yaml), every listener on a free port of
// 127.0.0.1. It returns once the gRPC port accepts connections and the
// rules are loaded (the debug endpoint /rlconfig lists them; an empty
// configYAML waits for the port only). It fails t at once if the service
// exits (e.g. redis is not reachable) or logs that the rules do not load.
// The service is killed when the test ends; the returned value's Kill kills
// it earlier.
//
// RUNTIME_WATCH_ROOT=false: the service watches the config directory itself,
// not the runtime root (whether a rewrite of Dir/ratelimit/config/config.yaml
// is picked up was not checked; start a new service for new rules). Limits count in
// wall-clock windows (a minute limit may reset mid-test): use unit: hour.
func StartRateLimitService(t testing.TB, redisAddr string, configYAML string) *RateLimitService {
	t.Helper()
	bin := BuildRateLimitService(t)
	root := t.TempDir()
	confDir := filepath.Join(root, "ratelimit", "config")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "config.yaml"), []byte(configYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	httpPort, grpcPort, debugPort := FreePort(t), FreePort(t), FreePort(t)
	s := &RateLimitService{
		Addr:      Addr(grpcPort),
		HTTPAddr:  Addr(httpPort),
		DebugAddr: Addr(debugPort),
		Dir:       root,
	}
	env := []string{
		"USE_STATSD=false",
		"DISABLE_STATS=true", // else a stdout sink logs every counter each 10 s
		"USE_PROMETHEUS=false",
		"USE_DOG_STATSD=false",
		"TRACING_ENABLED=false",
		"BACKEND_TYPE=redis",
		"REDIS_SOCKET_TYPE=tcp",
		"REDIS_TYPE=SINGLE",
		"REDIS_URL=" + redisAddr,
		"RUNTIME_ROOT=" + root,
		"RUNTIME_SUBDIRECTORY=ratelimit",
		"RUNTIME_APPDIRECTORY=config",
		"RUNTIME_WATCH_ROOT=false",
		"HOST=127.0.0.1", "PORT=" + strconv.Itoa(httpPort),
		"GRPC_HOST=127.0.0.1", "GRPC_PORT=" + strconv.Itoa(grpcPort),
		"DEBUG_HOST=127.0.0.1", "DEBUG_PORT=" + strconv.Itoa(debugPort),
		"LOG_LEVEL=warn",
	}
	start := time.Now()
	s.Process = launchEnv(t, "ratelimit "+s.Addr, bin, env)
	ready := make(chan error, 1)
	go func() { ready <- s.waitReady(strings.TrimSpace(configYAML) != "", StartTimeout) }()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("ratelimit: %v\n%s", err, s.Output())
		}
	case <-s.Exited():
		t.Fatalf("ratelimit exited before it was ready: %v\n%s", s.waitErr, s.Output())
	}
	t.Logf("ratelimit service ready on %s in %v", s.Addr, time.Since(start).Round(time.Millisecond))
	return s
}

// launchEnv is launch with env added to the test process's environment.
func launchEnv(t testing.TB, name, bin string, env []string) *Process {
	t.Helper()
	// launch builds the command; set the environment through a wrapper that
	// exec's bin, so that launch (shared by every peer) stays as it is.
	args := append([]string{"-i"}, env...)
	args = append(args, "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"), bin)
	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return launch(t, name, envBin, args)
}

// waitReady waits until the gRPC port accepts connections and, if rules is
// set, the debug endpoint /rlconfig lists a loaded configuration.
func (s *RateLimitService) waitReady(rules bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if err := WaitPort(s.Addr, timeout); err != nil {
		return err
	}
	if !rules {
		return nil
	}
	var last string
	for {
		// A bad rule file does not stop the service: it logs and serves
		// with no rules.
		if _, msg, bad := strings.Cut(s.Output(), "Error loading new configuration"); bad {
			msg, _, _ = strings.Cut(msg, "\n")
			return fmt.Errorf("rules not loaded: %s", strings.Trim(msg, ` :"`))
		}
		dump, err := s.LoadedConfig()
		if err == nil && strings.TrimSpace(dump) != "" {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "no configuration loaded"
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rules not loaded after %v: %s", timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LoadedConfig returns the service's dump of its loaded rules (GET
// /rlconfig on the debug port): one line per limit, e.g.
// "production.method_sayHello: unit=HOUR requests_per_unit=5, shadow_mode: false".
func (s *RateLimitService) LoadedConfig() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.DebugAddr+"/rlconfig", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /rlconfig: %s: %s", resp.Status, b)
	}
	return string(b), nil
}
