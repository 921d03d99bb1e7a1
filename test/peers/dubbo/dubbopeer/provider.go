package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/global"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	"dubbo.apache.org/dubbo-go/v3/protocol"
	"dubbo.apache.org/dubbo-go/v3/server"
)

// Interface is the service every provider exports.
const Interface = "org.apache.dubbo.samples.basic.api.DemoService"

// DemoService is the provider's implementation. dubbo-go maps the Java style
// method names (sayHello) to these Go methods.
type DemoService struct {
	tag  string
	addr string

	mu    sync.Mutex
	notes []string

	sleeping, peak atomic.Int64 // sleep calls in progress, and their most at once
}

// SayHello answers with the provider's identity so that tests can tell
// which provider served a call.
func (s *DemoService) SayHello(_ context.Context, name string) (string, error) {
	return fmt.Sprintf("Hello %s, response from %s@%s", name, s.tag, s.addr), nil
}

// EchoAttachment returns the attachment key as the provider received it, or
// "" when it is absent.
func (s *DemoService) EchoAttachment(ctx context.Context, key string) (string, error) {
	atta, _ := ctx.Value(constant.AttachmentKey).(map[string]any)
	switch v := atta[key].(type) {
	case string:
		return v, nil
	case []string:
		return strings.Join(v, ","), nil
	case nil:
		return "", nil
	default:
		return fmt.Sprint(v), nil
	}
}

// Fail always fails with msg: a server-side exception.
func (s *DemoService) Fail(_ context.Context, msg string) error {
	return errors.New(msg)
}

// Sleep answers after ms milliseconds.
func (s *DemoService) Sleep(_ context.Context, ms int64) (string, error) {
	n := s.sleeping.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	s.sleeping.Add(-1)
	return fmt.Sprintf("slept %dms at %s@%s", ms, s.tag, s.addr), nil
}

// SleepPeak returns the most sleep calls the provider has run at once
// since the last SleepPeak, and starts counting afresh.
func (s *DemoService) SleepPeak(context.Context) (string, error) {
	return strconv.FormatInt(s.peak.Swap(s.sleeping.Load()), 10), nil
}

// Note records s; it is meant to be called oneway.
func (s *DemoService) Note(_ context.Context, note string) error {
	s.mu.Lock()
	s.notes = append(s.notes, note)
	s.mu.Unlock()
	return nil
}

// Notes returns every recorded note, comma separated, in arrival order.
func (s *DemoService) Notes(_ context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.notes, ","), nil
}

// runProvider serves DemoService (with service version version, if not
// empty) on 127.0.0.1:port and prints READY once the port accepts
// connections. It never returns unless startup fails.
func runProvider(port int, tag, version string) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// dubbo-go logs a failed bind and keeps running (gotcha 2): check first.
	if l, err := net.Listen("tcp", addr); err != nil {
		return err
	} else {
		l.Close()
	}
	// No MetadataService: with the default "local" metadata type it is
	// exported on *:port before the service binds 127.0.0.1:port, and the
	// second bind fails (gotcha 1).
	app := global.DefaultApplicationConfig()
	app.Name = "dubbopeer-" + tag
	app.MetadataType = constant.RemoteMetadataStorageType
	srv, err := server.NewServer(
		server.SetServerApplication(app),
		server.SetServerShutdown(noSignalShutdown()),
		server.WithServerProtocol(protocol.WithDubbo(), protocol.WithIp("127.0.0.1"), protocol.WithPort(port)),
	)
	if err != nil {
		return err
	}
	opts := []server.ServiceOption{server.WithInterface(Interface)}
	if version != "" {
		opts = append(opts, server.WithVersion(version))
	}
	if err := srv.Register(&DemoService{tag: tag, addr: addr}, nil, opts...); err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	if err := waitListening(addr, 10*time.Second, served); err != nil {
		return err
	}
	fmt.Println("READY", addr)
	return <-served
}

// waitListening polls addr until it accepts a connection, Serve fails, or
// timeout passes.
func waitListening(addr string, timeout time.Duration, served <-chan error) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-served:
			return fmt.Errorf("serve: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %v: %w", addr, timeout, err)
		}
	}
}

// noSignalShutdown turns off dubbo-go's signal handler: its graceful
// shutdown holds the port for seconds (gotcha 3) and panics without a
// registry. SIGTERM then exits at once.
func noSignalShutdown() *global.ShutdownConfig {
	return graceful_shutdown.NewOptions(graceful_shutdown.WithoutInternalSignal()).Shutdown
}
