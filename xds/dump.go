package xds

import (
	"encoding/json"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// dumps keeps what the pool's watches applied last, for the admin's
// /config_dump.
type dumps struct {
	mu  sync.Mutex
	rds map[string]applied
	eds map[string]applied
	cds []applied
}

type applied struct {
	version string
	at      time.Time
	res     proto.Message
}

func (d *dumps) routes(name, version string, rc proto.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rds == nil {
		d.rds = map[string]applied{}
	}
	d.rds[name] = applied{version, time.Now(), rc}
}

func (d *dumps) endpoints(name, version string, la proto.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.eds == nil {
		d.eds = map[string]applied{}
	}
	d.eds[name] = applied{version, time.Now(), la}
}

func (d *dumps) clusters(version string, res []proto.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	d.cds = d.cds[:0]
	for _, r := range res {
		d.cds = append(d.cds, applied{version, now, r})
	}
}

// ConfigDump returns the dynamic configuration in the shape of Envoy's
// /config_dump sections: "clusters" (ClustersConfigDump's
// dynamic_active_clusters), "endpoints" (EndpointsConfigDump's
// dynamic_endpoint_configs) and "meta_protocol_routes" (Aeraki's
// RoutesConfigDump dynamic_route_configs, with the HTTP
// RouteConfiguration as received).
func (p *Pool) ConfigDump() map[string]any {
	d := &p.dumps
	d.mu.Lock()
	defer d.mu.Unlock()
	entry := func(key string, a applied) map[string]any {
		return map[string]any{"version_info": a.version, key: raw(a.res), "last_updated": a.at.UTC().Format(time.RFC3339Nano)}
	}
	var cl, eps, rts []any
	for _, a := range d.cds {
		cl = append(cl, entry("cluster", a))
	}
	for _, n := range sortedKeys(d.eds) {
		eps = append(eps, entry("endpoint_config", d.eds[n]))
	}
	for _, n := range sortedKeys(d.rds) {
		e := entry("route_config", d.rds[n])
		e["client_status"] = "ACKED"
		rts = append(rts, e)
	}
	return map[string]any{
		"clusters":             map[string]any{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters": cl},
		"endpoints":            map[string]any{"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", "dynamic_endpoint_configs": eps},
		"meta_protocol_routes": map[string]any{"@type": "type.googleapis.com/aeraki.meta_protocol_proxy.admin.v1alpha.RoutesConfigDump", "dynamic_route_configs": rts},
	}
}

// raw renders m as JSON with its @type, as Envoy dumps an Any.
func raw(m proto.Message) json.RawMessage {
	a, err := anypb.New(m)
	if err != nil {
		return json.RawMessage(`null`)
	}
	b, err := protojson.Marshal(a)
	if err != nil {
		return json.RawMessage(`null`)
	}
	return b
}
