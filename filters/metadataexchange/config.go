package metadataexchange

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metaproxy/metaproxy/api"
	mxv1alpha "github.com/metaproxy/metaproxy/api/filters/metadata_exchange/v1alpha"
	"github.com/metaproxy/metaproxy/filter"
)

// parse decodes and checks a MetadataExchange (canonical proto JSON; it has
// no settings, so anything but an empty object is an error).
func parse(js json.RawMessage) error {
	if len(js) == 0 {
		return nil
	}
	return api.Unmarshal(js, &mxv1alpha.MetadataExchange{})
}

// Node is the identity of the proxy's node: Envoy's bootstrap node (id,
// cluster and the metadata Istio puts there: NAME, NAMESPACE,
// WORKLOAD_NAME, LABELS, CLUSTER_ID, MESH_ID, SERVICE_ACCOUNT...).
type Node struct {
	ID      string
	Cluster string
	// Metadata is the node's metadata; nil for none.
	Metadata *structpb.Struct
}

// node fields of Envoy's config.core.v3.Node that are accepted; only id,
// cluster and metadata are used.
var nodeFields = map[string]bool{
	"id": true, "cluster": true, "metadata": true, "dynamic_parameters": true, "dynamicParameters": true,
	"locality": true, "user_agent_name": true, "userAgentName": true, "user_agent_version": true,
	"userAgentVersion": true, "user_agent_build_version": true, "userAgentBuildVersion": true,
	"extensions": true, "client_features": true, "clientFeatures": true,
	"listening_addresses": true, "listeningAddresses": true,
}

// ParseNode decodes a node in the schema of Envoy's bootstrap node (JSON):
// id, cluster and metadata are kept, Envoy's other node fields are
// accepted and ignored, unknown fields are an error.
func ParseNode(js []byte) (Node, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(js, &raw); err != nil {
		return Node{}, fmt.Errorf("node: %w", err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !nodeFields[k] {
			return Node{}, fmt.Errorf("node: unknown field %q", k)
		}
	}
	var n Node
	for k, dst := range map[string]*string{"id": &n.ID, "cluster": &n.Cluster} {
		if v, ok := raw[k]; ok && !bytes.Equal(v, []byte("null")) {
			if err := json.Unmarshal(v, dst); err != nil {
				return Node{}, fmt.Errorf("node.%s: %w", k, err)
			}
		}
	}
	if v, ok := raw["metadata"]; ok && !bytes.Equal(v, []byte("null")) {
		var m map[string]any
		if err := json.Unmarshal(v, &m); err != nil {
			return Node{}, fmt.Errorf("node.metadata: %w", err)
		}
		s, err := structpb.NewStruct(m)
		if err != nil {
			return Node{}, fmt.Errorf("node.metadata: %w", err)
		}
		n.Metadata = s
	}
	return n, nil
}

// ExtractNode removes the "node" field from the JSON object doc (the Envoy
// plugin's plugin_config) and returns the rest and the node, nil when doc
// has none.
func ExtractNode(doc []byte) (rest []byte, node *Node, err error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return doc, nil, err
	}
	raw, ok := m["node"]
	if !ok {
		return doc, nil, nil
	}
	delete(m, "node")
	n, err := ParseNode(raw)
	if err != nil {
		return doc, nil, err
	}
	if rest, err = json.Marshal(m); err != nil {
		return doc, nil, err
	}
	return rest, &n, nil
}

// LocalNode returns the node of env (filter.Env.Node), or else the node
// Istio's sidecar environment describes (see NodeFromEnv).
func LocalNode(env filter.Env) (Node, error) {
	if len(env.Node) == 0 {
		return NodeFromEnv(os.Environ()), nil
	}
	return ParseNode(env.Node)
}

// NodeFromEnv builds a node from Istio's sidecar environment variables
// (env holds "KEY=value" entries, as os.Environ): every ISTIO_META_<KEY> is
// metadata KEY (a string), every ISTIO_METAJSON_<KEY> metadata KEY (a JSON
// value, such as ISTIO_METAJSON_LABELS={"app":"reviews"}); POD_NAME,
// POD_NAMESPACE and SERVICE_ACCOUNT give NAME, NAMESPACE and
// SERVICE_ACCOUNT when the ISTIO_META_ form is not set. The id is Istio's
// "sidecar~<INSTANCE_IP>~<POD_NAME>.<POD_NAMESPACE>~<POD_NAMESPACE>.svc.cluster.local"
// when POD_NAME is set.
func NodeFromEnv(env []string) Node {
	vars := map[string]string{}
	md := map[string]any{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		vars[k] = v
		switch {
		case strings.HasPrefix(k, "ISTIO_METAJSON_") && len(k) > len("ISTIO_METAJSON_"):
			var j any
			if json.Unmarshal([]byte(v), &j) == nil {
				md[k[len("ISTIO_METAJSON_"):]] = j
			}
		case strings.HasPrefix(k, "ISTIO_META_") && len(k) > len("ISTIO_META_"):
			if _, set := md[k[len("ISTIO_META_"):]]; !set {
				md[k[len("ISTIO_META_"):]] = v
			}
		}
	}
	for meta, envName := range map[string]string{"NAME": "POD_NAME", "NAMESPACE": "POD_NAMESPACE", "SERVICE_ACCOUNT": "SERVICE_ACCOUNT"} {
		if _, set := md[meta]; !set && vars[envName] != "" {
			md[meta] = vars[envName]
		}
	}
	var n Node
	if pod, ns := vars["POD_NAME"], vars["POD_NAMESPACE"]; pod != "" {
		n.ID = fmt.Sprintf("sidecar~%s~%s.%s~%s.svc.cluster.local", vars["INSTANCE_IP"], pod, ns, ns)
	}
	if len(md) > 0 {
		n.Metadata, _ = structpb.NewStruct(md) // values come from JSON or are strings
	}
	return n
}
