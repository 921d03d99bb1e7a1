package harness_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/metaproxy/metaproxy/test/harness"
)

func adminGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestEnvoyAdminClusters(t *testing.T) {
	a := harness.StartEnvoyAdmin(t)
	url := "http://" + a.Addr + "/clusters?format=json"
	var got adminv3.Clusters
	code, body := adminGet(t, url)
	if err := protojson.Unmarshal(body, &got); code != http.StatusOK || err != nil || len(got.GetClusterStatuses()) != 0 {
		t.Fatalf("no clusters: %d %q %v", code, body, err)
	}

	a.SetCluster("outbound|20880||greeter.default.svc.cluster.local",
		harness.AdminHost{Addr: "10.0.0.1:20880", Weight: 3, Healthy: true},
		harness.AdminHost{Addr: "10.0.0.2:20880", Healthy: false, Priority: 1})
	a.SetCluster("b", harness.AdminHost{Addr: "127.0.0.1:9000", Healthy: true})
	a.SetCluster("gone", harness.AdminHost{Addr: "127.0.0.1:9001", Healthy: true})
	a.RemoveCluster("gone")
	code, body = adminGet(t, url)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if err := protojson.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if !proto.Equal(&got, a.Clusters()) {
		t.Fatalf("served %v, want %v", &got, a.Clusters())
	}
	cs := got.GetClusterStatuses()
	if len(cs) != 2 || cs[0].GetName() != "b" || cs[1].GetName() != "outbound|20880||greeter.default.svc.cluster.local" || !cs[1].GetAddedViaApi() {
		t.Fatalf("clusters = %v", cs)
	}
	h := cs[1].GetHostStatuses()
	if len(h) != 2 ||
		h[0].GetAddress().GetSocketAddress().GetAddress() != "10.0.0.1" || h[0].GetAddress().GetSocketAddress().GetPortValue() != 20880 ||
		h[0].GetWeight() != 3 || h[0].GetHealthStatus().GetEdsHealthStatus() != corev3.HealthStatus_HEALTHY ||
		h[1].GetWeight() != 1 || h[1].GetPriority() != 1 || h[1].GetHealthStatus().GetEdsHealthStatus() != corev3.HealthStatus_UNHEALTHY {
		t.Fatalf("hosts = %v", h)
	}

	// The JSON is Envoy's: proto field names, enums by name.
	var raw struct {
		ClusterStatuses []struct {
			Name         string `json:"name"`
			AddedViaAPI  bool   `json:"added_via_api"`
			HostStatuses []struct {
				Address struct {
					SocketAddress struct {
						Address   string `json:"address"`
						PortValue uint32 `json:"port_value"`
					} `json:"socket_address"`
				} `json:"address"`
				Stats        []map[string]any `json:"stats"`
				HealthStatus map[string]any   `json:"health_status"`
				Weight       uint32           `json:"weight"`
			} `json:"host_statuses"`
		} `json:"cluster_statuses"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	rh := raw.ClusterStatuses[1].HostStatuses
	if !raw.ClusterStatuses[1].AddedViaAPI || rh[1].Address.SocketAddress.Address != "10.0.0.2" || rh[1].Address.SocketAddress.PortValue != 20880 ||
		rh[0].HealthStatus["eds_health_status"] != "HEALTHY" || rh[1].HealthStatus["eds_health_status"] != "UNHEALTHY" ||
		rh[0].Weight != 3 || len(rh[0].Stats) != 8 || rh[0].Stats[0]["name"] != "cx_connect_fail" || rh[0].Stats[6]["type"] != "GAUGE" {
		t.Fatalf("JSON shape:\n%s", body)
	}
	if n := a.Requests(); n != 2 {
		t.Fatalf("%d requests counted, want 2", n)
	}
}

func TestEnvoyAdminOtherRequests(t *testing.T) {
	a := harness.StartEnvoyAdmin(t)
	for path, want := range map[string]int{
		"/clusters":             http.StatusBadRequest,
		"/clusters?format=text": http.StatusBadRequest,
		"/stats":                http.StatusNotFound,
		"/":                     http.StatusNotFound,
		"/clusters/x":           http.StatusNotFound,
	} {
		if code, body := adminGet(t, "http://"+a.Addr+path); code != want {
			t.Errorf("GET %s: %d %s, want %d", path, code, body, want)
		}
	}
	resp, err := http.Post("http://"+a.Addr+"/clusters?format=json", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
	if n := a.Requests(); n != 0 {
		t.Fatalf("%d requests counted, want 0", n)
	}
}
