package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metaproxy/metaproxy/cluster"
)

// dial returns a gRPC connection to the management server of the
// bootstrap cluster cfg (STATIC or STRICT_DNS, TCP or a Unix socket,
// plaintext or TLS with files). The connection dials lazily; each dial
// takes the cluster's next endpoint, so a server that is down is skipped
// at the next reconnect.
func dial(cfg cluster.Config) (*grpc.ClientConn, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("xds: cluster %q has no endpoints", cfg.Name)
	}
	var next atomic.Uint64
	d := net.Dialer{Timeout: cfg.ConnectTimeout}
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		ep := cfg.Endpoints[int(next.Add(1)-1)%len(cfg.Endpoints)]
		if ep.Path != "" {
			return d.DialContext(ctx, "unix", ep.Path)
		}
		return d.DialContext(ctx, "tcp", net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)))
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("xds: cluster %q: %w", cfg.Name, err)
		}
		creds = credentials.NewTLS(tc)
	}
	return grpc.NewClient("passthrough:///"+cfg.Name,
		grpc.WithContextDialer(dialer),
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
}

// tlsConfig reads the CA now and the client certificate at each handshake,
// so that rotated certificates (Istio's workload certificates) are picked
// up by the next connection.
func tlsConfig(f *cluster.TLSFiles) (*tls.Config, error) {
	tc := &tls.Config{ServerName: f.SNI, MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("trusted_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("trusted_ca %s: no PEM certificate", f.CAFile)
		}
		tc.RootCAs = pool
	}
	if f.CertFile != "" || f.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err != nil {
			return nil, fmt.Errorf("tls_certificates: %w", err)
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
			return &c, err
		}
	}
	return tc, nil
}
