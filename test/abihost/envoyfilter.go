package abihost

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"
)

// envoyFilter is the part of Istio's networking.istio.io/v1alpha3
// EnvoyFilter that the shipped resources use; decoding is strict, so a
// misspelt field fails.
type envoyFilter struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		WorkloadSelector *struct {
			Labels map[string]string `json:"labels"`
		} `json:"workloadSelector"`
		ConfigPatches []struct {
			ApplyTo string `json:"applyTo"`
			Match   struct {
				Context  string `json:"context"`
				Listener *struct {
					PortNumber  int `json:"portNumber"`
					FilterChain *struct {
						Filter *struct {
							Name string `json:"name"`
						} `json:"filter"`
					} `json:"filterChain"`
				} `json:"listener"`
			} `json:"match"`
			Patch struct {
				Operation string          `json:"operation"`
				Value     json.RawMessage `json:"value"`
			} `json:"patch"`
		} `json:"configPatches"`
	} `json:"spec"`
}

// EnvoyFilterBootstrap builds the bootstrap Envoy would run from Istio
// EnvoyFilter resources: every NETWORK_FILTER REPLACE patch becomes a
// listener (named after its resource) whose only filter is the patch's
// value, and every CLUSTER ADD patch a cluster. The listeners are named in
// the order of the resources.
func EnvoyFilterBootstrap(resources ...[]byte) ([]byte, error) {
	var listeners, clusters []any
	for _, r := range resources {
		js, err := yaml.YAMLToJSON(r)
		if err != nil {
			return nil, err
		}
		var ef envoyFilter
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ef); err != nil {
			return nil, fmt.Errorf("EnvoyFilter: %w", err)
		}
		if ef.APIVersion != "networking.istio.io/v1alpha3" || ef.Kind != "EnvoyFilter" {
			return nil, fmt.Errorf("%s %s: want networking.istio.io/v1alpha3 EnvoyFilter", ef.APIVersion, ef.Kind)
		}
		for i, p := range ef.Spec.ConfigPatches {
			var value any
			if err := json.Unmarshal(p.Patch.Value, &value); err != nil {
				return nil, fmt.Errorf("EnvoyFilter %s: configPatches[%d]: %w", ef.Metadata.Name, i, err)
			}
			switch {
			case p.ApplyTo == "CLUSTER" && p.Patch.Operation == "ADD":
				clusters = append(clusters, value)
			case p.ApplyTo == "NETWORK_FILTER" && p.Patch.Operation == "REPLACE":
				if l := p.Match.Listener; l == nil || l.PortNumber == 0 || l.FilterChain == nil || l.FilterChain.Filter == nil {
					return nil, fmt.Errorf("EnvoyFilter %s: configPatches[%d]: match a listener port and the filter to replace", ef.Metadata.Name, i)
				}
				listeners = append(listeners, map[string]any{
					"name":          ef.Metadata.Name,
					"address":       map[string]any{"socket_address": map[string]any{"address": "127.0.0.1", "port_value": 0}},
					"filter_chains": []any{map[string]any{"filters": []any{value}}},
				})
			default:
				return nil, fmt.Errorf("EnvoyFilter %s: configPatches[%d]: %s %s is not modelled", ef.Metadata.Name, i, p.Patch.Operation, p.ApplyTo)
			}
		}
	}
	out, err := json.Marshal(map[string]any{"static_resources": map[string]any{"listeners": listeners, "clusters": clusters}})
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(out)
}
