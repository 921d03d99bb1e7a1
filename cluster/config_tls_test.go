package cluster

import (
	"reflect"
	"strings"
	"testing"
)

const tlsSocket = `"transport_socket":{"name":"envoy.transport_sockets.tls","typed_config":{
  "@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext","sni":"xds.example",
  "common_tls_context":{"alpn_protocols":["h2"],
    "tls_certificates":[{"certificate_chain":{"filename":"/certs/cert.pem"},"private_key":{"filename":"/certs/key.pem"}}],
    "validation_context":{"trusted_ca":{"filename":"/certs/ca.pem"}}}}}`

func TestParseTLS(t *testing.T) {
	c, err := parse(t, tlsSocket)
	want := &TLSFiles{CertFile: "/certs/cert.pem", KeyFile: "/certs/key.pem", CAFile: "/certs/ca.pem", SNI: "xds.example"}
	if err != nil || !reflect.DeepEqual(c.TLS, want) || len(c.Warnings) != 0 {
		t.Fatalf("TLS: %+v, %v", c.TLS, err)
	}
	c, err = parse(t, `"transport_socket":{"typed_config":{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"}}`)
	if err != nil || !reflect.DeepEqual(c.TLS, &TLSFiles{}) {
		t.Errorf("TLS with the system's roots, no client certificate: %+v, %v", c.TLS, err)
	}
	if _, err := New(c, nil); err == nil || !strings.Contains(err.Error(), "upstream TLS (transport_socket) is not supported for routed clusters: in Envoy, TLS belongs to the plainText cluster") {
		t.Errorf("New with TLS: %v", err)
	}
	for name, tc := range map[string]struct{ from, to, want string }{
		"inline bytes":  {`"certificate_chain":{"filename":"/certs/cert.pem"}`, `"certificate_chain":{"inline_bytes":"AAAA"}`, "tls_certificates[0].certificate_chain: inline certificates and keys are not supported: use filename"},
		"inline string": {`"trusted_ca":{"filename":"/certs/ca.pem"}`, `"trusted_ca":{"inline_string":"---"}`, "validation_context.trusted_ca: inline certificates"},
		"no key":        {`,"private_key":{"filename":"/certs/key.pem"}`, ``, "tls_certificates[0].private_key: filename is needed"},
		"SDS":           {`"tls_certificates"`, `"tls_certificate_sds_secret_configs":[{"name":"default"}],"tls_certificates"`, "tls_certificate_sds_secret_configs: SDS secrets are not supported"},
		"SAN matching":  {`"trusted_ca":{"filename":"/certs/ca.pem"}`, `"trusted_ca":{"filename":"/certs/ca.pem"},"match_subject_alt_names":[{"exact":"istiod"}]`, "validation_context.match_subject_alt_names is not supported"},
		"other socket":  {`"envoy.transport_sockets.tls"`, `"envoy.transport_sockets.alts"`, `transport_socket "envoy.transport_sockets.alts" is not supported`},
	} {
		if _, err := parse(t, strings.Replace(tlsSocket, tc.from, tc.to, 1)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
	if _, err := parse(t, `"transport_socket":{"name":"envoy.transport_sockets.tls"}`); err == nil || !strings.Contains(err.Error(), "typed_config, an UpstreamTlsContext, is needed") {
		t.Errorf("no typed_config: %v", err)
	}
	if _, err := parse(t, strings.Replace(tlsSocket, `"validation_context":{"trusted_ca":{"filename":"/certs/ca.pem"}}`,
		`"combined_validation_context":{"default_validation_context":{},"validation_context_sds_secret_config":{"name":"ROOTCA"}}`, 1)); err == nil ||
		!strings.Contains(err.Error(), "common_tls_context.combined_validation_context is not supported") {
		t.Errorf("combined_validation_context: %v", err)
	}
}
