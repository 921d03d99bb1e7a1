// Command metaproxy is the standalone proxy: it reads an Envoy bootstrap
// whose listeners carry Aeraki's MetaProtocolProxy filter and serves them on
// Go's net package.
//
//	metaproxy -c bootstrap.yaml [-drain-timeout 15s] [-log-level info]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/metaproxy/metaproxy/admin"
	_ "github.com/metaproxy/metaproxy/builtin"
	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/config"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/proxy"
	"github.com/metaproxy/metaproxy/standalone"
	"github.com/metaproxy/metaproxy/xds"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "metaproxy:", err)
		os.Exit(1)
	}
}

func run() error {
	path := flag.String("c", "", "Envoy bootstrap file (YAML or JSON)")
	drain := flag.Duration("drain-timeout", 15*time.Second, "on SIGTERM, how long in-flight requests may take")
	level := flag.String("log-level", "info", "debug, info, warn or error")
	flag.Parse()
	if *path == "" {
		flag.Usage()
		return errors.New("-c is required")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))

	data, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	bs, err := config.LoadBootstrap(data, filter.Env{Logger: log})
	if err != nil {
		return err
	}
	for _, w := range bs.Warnings {
		log.Warn(w)
	}

	var listeners []*standalone.Listener
	var sources []admin.Source
	node, err := xds.ParseNode(bs.XDS.Node)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	pool := xds.NewPool(log) // one client per management server, shared by every listener
	defer pool.Close()
	pool.Configure(node, bs.XDS.Servers, bs.XDS.ADS)
	clusters := cluster.NewManager(log) // shared by every listener
	clusters.SetDiscovery(pool.Discovery)
	for _, l := range bs.Listeners {
		maxBuf := l.Proxy.MaxBufferedBytes
		if maxBuf <= 0 {
			maxBuf = proxy.DefaultMaxBufferedBytes
		}
		srv, err := proxy.New(l.Proxy, proxy.Options{Dialer: standalone.NewDialer(maxBuf), Clusters: clusters, Logger: log.With("listener", l.Name)})
		if err != nil {
			return fmt.Errorf("listener %q: %w", l.Name, err)
		}
		if _, err := pool.Bind(l, &bs.XDS, srv); err != nil {
			return fmt.Errorf("listener %q: %w", l.Name, err)
		}
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			return fmt.Errorf("listener %q: %w", l.Name, err)
		}
		listeners = append(listeners, standalone.NewListener(srv, ln, maxBuf, log.With("listener", l.Name)))
		sources = append(sources, admin.Source{Protocol: l.Proxy.Protocol, StatPrefix: l.Proxy.StatPrefix, Server: srv})
		log.Info("listening", "listener", l.Name, "address", ln.Addr().String(), "protocol", l.Proxy.Protocol)
	}

	var draining atomic.Bool
	var adminSrv *http.Server
	if bs.AdminAddress != "" {
		aln, err := net.Listen("tcp", bs.AdminAddress)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		adminSrv = &http.Server{Handler: admin.Handler(sources, func() bool { return !draining.Load() }, admin.Dump{Bootstrap: bootstrapJSON(data), Dynamic: pool.ConfigDump}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = adminSrv.Serve(aln) }()
		log.Info("admin listening", "address", aln.Addr().String())
	}

	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errc <- l.Serve() }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		log.Info("draining", "signal", s.String(), "timeout", drain.String())
	case err := <-errc:
		return fmt.Errorf("listener stopped: %w", err)
	}
	draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Shutdown(ctx); err != nil {
				log.Warn("drain incomplete", "err", err)
			}
		}()
	}
	wg.Wait()
	if adminSrv != nil {
		_ = adminSrv.Close()
	}
	log.Info("stopped")
	return nil
}

// bootstrapJSON is the bootstrap file as JSON, for /config_dump.
func bootstrapJSON(data []byte) json.RawMessage {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil
	}
	return js
}
