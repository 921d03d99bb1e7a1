package cluster

import (
	"errors"
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// DefaultInitialFetchTimeout is Envoy's initial_fetch_timeout.
const DefaultInitialFetchTimeout = 15 * time.Second

// ConfigSource is where xDS resources come from (Envoy's
// core.v3.ConfigSource, the forms metaproxy follows): the ADS stream, a
// gRPC management server's cluster, or whatever the host decides (Self).
type ConfigSource struct {
	// ADS is ads: {}: the bootstrap's aggregated stream.
	ADS bool
	// Cluster is api_config_source.grpc_services[0].envoy_grpc.cluster_name:
	// the cluster of the management server to ask.
	Cluster string
	// Delta is api_config_source.api_type DELTA_GRPC (incremental xDS);
	// false for GRPC (state of the world).
	Delta bool
	// InitialFetchTimeout is how long the first response may take before
	// the resource is given up waiting for (Envoy's default,
	// DefaultInitialFetchTimeout, when unset; 0: no limit).
	InitialFetchTimeout time.Duration
	// Self is self: {}, or no config source at all: the host decides
	// (the source the resource that names it came from).
	Self bool
}

// ParseConfigSource converts a ConfigSource (EDS, RDS or CDS sources, or a
// bootstrap's ads_config wrapped in one): ads, api_config_source with
// api_type GRPC or DELTA_GRPC (AGGREGATED_GRPC and AGGREGATED_DELTA_GRPC,
// ads_config's other names, read as those) and one envoy_grpc service, or
// self; nil is Self. REST, file-based sources, google_grpc and
// the V2 API are refused with an error naming the field. Fields that do not
// change what is fetched or from where (timeouts of the gRPC service, rate
// limits, authorities) are not read.
func ParseConfigSource(cs *corev3.ConfigSource) (ConfigSource, error) {
	out := ConfigSource{InitialFetchTimeout: DefaultInitialFetchTimeout}
	if cs == nil {
		out.Self = true
		return out, nil
	}
	var err error
	if out.InitialFetchTimeout, err = durationOf(cs.GetInitialFetchTimeout(), "initial_fetch_timeout", DefaultInitialFetchTimeout); err != nil {
		return out, err
	}
	if err := apiVersion(cs.GetResourceApiVersion(), "resource_api_version"); err != nil {
		return out, err
	}
	switch s := cs.GetConfigSourceSpecifier().(type) {
	case *corev3.ConfigSource_Ads:
		out.ADS = true
	case *corev3.ConfigSource_Self:
		out.Self = true
	case *corev3.ConfigSource_ApiConfigSource:
		out.Cluster, out.Delta, err = apiConfigSource(s.ApiConfigSource)
		if err != nil {
			return out, fmt.Errorf("api_config_source.%w", err)
		}
	case *corev3.ConfigSource_Path, *corev3.ConfigSource_PathConfigSource:
		return out, errors.New("path, path_config_source: file-based config sources are not supported: use ads, api_config_source (GRPC) or self")
	default:
		return out, errors.New("no config source: set ads, api_config_source or self")
	}
	return out, nil
}

func apiVersion(v corev3.ApiVersion, what string) error {
	if v != corev3.ApiVersion_AUTO && v != corev3.ApiVersion_V3 {
		return fmt.Errorf("%s %s is not supported: use V3", what, v)
	}
	return nil
}

// apiConfigSource reads a gRPC ApiConfigSource; errors start with the
// field's name.
func apiConfigSource(a *corev3.ApiConfigSource) (cluster string, delta bool, err error) {
	switch t := a.GetApiType(); t {
	case corev3.ApiConfigSource_GRPC, corev3.ApiConfigSource_AGGREGATED_GRPC:
	case corev3.ApiConfigSource_DELTA_GRPC, corev3.ApiConfigSource_AGGREGATED_DELTA_GRPC:
		delta = true
	case corev3.ApiConfigSource_REST:
		return "", false, errors.New("api_type REST is not supported: use GRPC or DELTA_GRPC")
	default:
		return "", false, fmt.Errorf("api_type %s is not supported: use GRPC or DELTA_GRPC", t)
	}
	if err := apiVersion(a.GetTransportApiVersion(), "transport_api_version"); err != nil {
		return "", false, err
	}
	if len(a.GetClusterNames()) > 0 {
		return "", false, errors.New("cluster_names is for REST sources: use grpc_services[0].envoy_grpc.cluster_name")
	}
	switch n := len(a.GetGrpcServices()); {
	case n == 0:
		return "", false, errors.New("grpc_services: one envoy_grpc service is needed")
	case n > 1:
		return "", false, fmt.Errorf("grpc_services: %d services: metaproxy, as Envoy, takes one", n)
	}
	gs := a.GetGrpcServices()[0]
	if gs.GetGoogleGrpc() != nil {
		return "", false, errors.New("grpc_services[0].google_grpc is not supported: use envoy_grpc")
	}
	if cluster = gs.GetEnvoyGrpc().GetClusterName(); cluster == "" {
		return "", false, errors.New("grpc_services[0].envoy_grpc.cluster_name is needed")
	}
	return cluster, delta, nil
}

// edsFromProto reads eds_cluster_config into c.EDS: the EDS cluster's
// service name (its own name by default) and source.
func edsFromProto(pb *clusterv3.Cluster, c *Config) error {
	ec := pb.GetEdsClusterConfig()
	switch {
	case c.Type != EDS && ec != nil:
		return fmt.Errorf("eds_cluster_config applies to type EDS only, not %s", c.Type)
	case c.Type != EDS:
		return nil
	case ec == nil:
		return errors.New(`type "EDS" is not supported without eds_cluster_config: Envoy cannot create an EDS cluster without an EDS config`)
	}
	src, err := ParseConfigSource(ec.GetEdsConfig())
	if err != nil {
		return fmt.Errorf("eds_cluster_config.eds_config: %w", err)
	}
	c.EDS = &EDSConfig{ServiceName: ec.GetServiceName(), Source: src}
	if c.EDS.ServiceName == "" {
		c.EDS.ServiceName = c.Name
	}
	return nil
}
