package harness

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// EnvoyAdmin is a fake of Envoy's admin API that serves only
// GET /clusters?format=json: an envoy.admin.v3.Clusters message rendered
// with protojson the way Envoy renders it (proto field names, enums by
// name, 64-bit stats as strings, one-space indent). Each cluster has
// added_via_api true, observability_name its name, Envoy's default
// circuit-breaker thresholds and per host Envoy's eight host stats (zero)
// and an empty locality. The clusters are whatever SetCluster gave, sorted
// by name, hosts in the given order.
//
// Other paths get 404; /clusters without format=json gets 400, and methods
// other than GET get 405.
type EnvoyAdmin struct {
	// Addr is "127.0.0.1:P".
	Addr string

	mu       sync.Mutex
	clusters map[string][]AdminHost
	requests int
}

// AdminHost is one host of a cluster of EnvoyAdmin.
type AdminHost struct {
	Addr     string // "ip:port"
	Weight   uint32 // 0 is shown as 1, as Envoy's weights are at least 1
	Healthy  bool   // false: health_status.eds_health_status UNHEALTHY
	Priority uint32
}

// StartEnvoyAdmin starts a fake admin endpoint on a free port of 127.0.0.1
// with no clusters; it is closed when the test ends.
func StartEnvoyAdmin(t testing.TB) *EnvoyAdmin {
	t.Helper()
	a := &EnvoyAdmin{Addr: Addr(FreePort(t)), clusters: map[string][]AdminHost{}}
	ln, err := net.Listen("tcp", a.Addr)
	if err != nil {
		t.Fatalf("envoy admin: %v", err)
	}
	srv := &http.Server{Handler: a}
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-served })
	return a
}

// SetCluster replaces cluster name's hosts (adding the cluster if it is
// new). It panics on a host address that is not ip:port.
func (a *EnvoyAdmin) SetCluster(name string, hosts ...AdminHost) {
	for _, h := range hosts {
		socketAddr(h.Addr)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clusters[name] = append([]AdminHost(nil), hosts...)
}

// RemoveCluster drops cluster name.
func (a *EnvoyAdmin) RemoveCluster(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.clusters, name)
}

// Requests returns how many GETs of /clusters?format=json were answered.
func (a *EnvoyAdmin) Requests() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

// Clusters returns the message the endpoint serves now.
func (a *EnvoyAdmin) Clusters() *adminv3.Clusters {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := &adminv3.Clusters{}
	for _, name := range slices.Sorted(maps.Keys(a.clusters)) {
		cs := &adminv3.ClusterStatus{Name: name, AddedViaApi: true, ObservabilityName: name,
			CircuitBreakers: defaultCircuitBreakers()}
		for _, h := range a.clusters[name] {
			health := corev3.HealthStatus_HEALTHY
			if !h.Healthy {
				health = corev3.HealthStatus_UNHEALTHY
			}
			w := h.Weight
			if w == 0 {
				w = 1
			}
			cs.HostStatuses = append(cs.HostStatuses, &adminv3.HostStatus{
				Address:      socketAddr(h.Addr),
				Stats:        hostStats(),
				HealthStatus: &adminv3.HostHealthStatus{EdsHealthStatus: health},
				Weight:       w,
				Priority:     h.Priority,
				Locality:     &corev3.Locality{},
			})
		}
		out.ClusterStatuses = append(out.ClusterStatuses, cs)
	}
	return out
}

// ServeHTTP implements http.Handler.
func (a *EnvoyAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/clusters" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Query().Get("format") != "json" {
		http.Error(w, "this fake admin endpoint serves /clusters?format=json only", http.StatusBadRequest)
		return
	}
	body, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true, Indent: " "}.Marshal(a.Clusters())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	a.mu.Lock()
	a.requests++
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.Write(append(body, '\n'))
}

// hostStats are the stats Envoy lists for each host: counters, then gauges.
func hostStats() []*adminv3.SimpleMetric {
	var out []*adminv3.SimpleMetric
	for _, n := range []string{"cx_connect_fail", "cx_total", "rq_error", "rq_success", "rq_timeout", "rq_total"} {
		out = append(out, &adminv3.SimpleMetric{Type: adminv3.SimpleMetric_COUNTER, Name: n})
	}
	for _, n := range []string{"cx_active", "rq_active"} {
		out = append(out, &adminv3.SimpleMetric{Type: adminv3.SimpleMetric_GAUGE, Name: n})
	}
	return out
}

// defaultCircuitBreakers are Envoy's default thresholds, for the DEFAULT and
// HIGH priorities, as /clusters shows them.
func defaultCircuitBreakers() *clusterv3.CircuitBreakers {
	cb := &clusterv3.CircuitBreakers{}
	for _, p := range []corev3.RoutingPriority{corev3.RoutingPriority_DEFAULT, corev3.RoutingPriority_HIGH} {
		cb.Thresholds = append(cb.Thresholds, &clusterv3.CircuitBreakers_Thresholds{
			Priority:           p,
			MaxConnections:     wrapperspb.UInt32(1024),
			MaxPendingRequests: wrapperspb.UInt32(1024),
			MaxRequests:        wrapperspb.UInt32(1024),
			MaxRetries:         wrapperspb.UInt32(3),
		})
	}
	return cb
}

// socketAddr turns "ip:port" into an Envoy TCP socket address; it panics on
// anything else. (Shared with xds.go's EDSAssignment.)
func socketAddr(hostPort string) *corev3.Address {
	host, port, err := net.SplitHostPort(hostPort)
	p, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil || net.ParseIP(host) == nil {
		panic(fmt.Sprintf("harness: address %q is not ip:port", hostPort))
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(p)}}}}
}
