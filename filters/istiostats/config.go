package istiostats

import (
	"encoding/json"

	"github.com/metaproxy/metaproxy/api"
	isv1alpha "github.com/metaproxy/metaproxy/api/filters/istio_stats/v1alpha"
)

// parse decodes an IstioStats (canonical proto JSON; absent is an empty
// one, unknown fields are errors).
func parse(js json.RawMessage) (*isv1alpha.IstioStats, error) {
	c := &isv1alpha.IstioStats{}
	if len(js) == 0 {
		return c, nil
	}
	if err := api.Unmarshal(js, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Label names of Istio's standard metrics, in Istio's order.
var labelNames = []string{
	"reporter",
	"source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
	"source_canonical_service", "source_canonical_revision", "source_cluster",
	"destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
	"destination_version", "destination_service", "destination_service_name", "destination_service_namespace",
	"destination_canonical_service", "destination_canonical_revision", "destination_cluster",
	"request_protocol", "response_code", "response_flags", "connection_security_policy",
}

// DurationBuckets are the buckets of istio_request_duration_milliseconds
// and BytesBuckets those of istio_request_bytes and istio_response_bytes:
// Envoy's default histogram buckets, which Istio's standard histograms use.
var (
	DurationBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}
	BytesBuckets    = DurationBuckets
)
