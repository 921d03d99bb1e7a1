package cluster

import (
	"errors"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

const tlsSocketName = "envoy.transport_sockets.tls"

// tlsFromProto reads transport_socket, an envoy.transport_sockets.tls
// UpstreamTlsContext, into c.TLS: files only. Inline certificates, SDS and
// the validation settings metaproxy does not apply (subject alt names,
// pins, CRLs) are errors, so that no check is dropped silently.
func tlsFromProto(pb *clusterv3.Cluster, c *Config) error {
	ts := pb.GetTransportSocket()
	if ts == nil {
		return nil
	}
	const what = "transport_socket"
	if n := ts.GetName(); n != "" && n != tlsSocketName {
		return fmt.Errorf("%s %q is not supported: only %s (UpstreamTlsContext)", what, n, tlsSocketName)
	}
	if ts.GetTypedConfig() == nil {
		return fmt.Errorf("%s: typed_config, an UpstreamTlsContext, is needed", what)
	}
	var utc tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&utc); err != nil {
		return fmt.Errorf("%s.typed_config: only an UpstreamTlsContext (%s) is supported: %w", what, tlsSocketName, err)
	}
	const uw = what + ".typed_config"
	if err := onlyFields(&utc, uw, "common_tls_context", "sni"); err != nil {
		return err
	}
	files := &TLSFiles{SNI: utc.GetSni()}
	ctx := utc.GetCommonTlsContext()
	cw := uw + ".common_tls_context"
	for _, sds := range []string{"tls_certificate_sds_secret_configs", "validation_context_sds_secret_config"} {
		if nonZero(ctx.ProtoReflect(), sds) {
			return fmt.Errorf("%s.%s: SDS secrets are not supported: use files (filename)", cw, sds)
		}
	}
	if err := onlyFields(ctx, cw, "tls_certificates", "validation_context", "alpn_protocols"); err != nil {
		return err
	}
	switch certs := ctx.GetTlsCertificates(); len(certs) {
	case 0:
	case 1:
		w := cw + ".tls_certificates[0]"
		if err := onlyFields(certs[0], w, "certificate_chain", "private_key"); err != nil {
			return err
		}
		var err error
		if files.CertFile, err = fileOf(certs[0].GetCertificateChain(), w+".certificate_chain"); err != nil {
			return err
		}
		if files.KeyFile, err = fileOf(certs[0].GetPrivateKey(), w+".private_key"); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s.tls_certificates: %d certificates: metaproxy takes one", cw, len(certs))
	}
	if vc := ctx.GetValidationContext(); vc != nil {
		w := cw + ".validation_context"
		if err := onlyFields(vc, w, "trusted_ca"); err != nil {
			return err
		}
		if vc.GetTrustedCa() != nil {
			var err error
			if files.CAFile, err = fileOf(vc.GetTrustedCa(), w+".trusted_ca"); err != nil {
				return err
			}
		}
	}
	c.TLS = files
	return nil
}

// fileOf returns a DataSource's filename.
func fileOf(ds *corev3.DataSource, what string) (string, error) {
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_Filename:
		if s.Filename != "" {
			return s.Filename, nil
		}
	case *corev3.DataSource_InlineBytes, *corev3.DataSource_InlineString:
		return "", fmt.Errorf("%s: inline certificates and keys are not supported: use filename", what)
	case *corev3.DataSource_EnvironmentVariable:
		return "", fmt.Errorf("%s: environment_variable is not supported: use filename", what)
	}
	if ds.GetWatchedDirectory() != nil {
		return "", fmt.Errorf("%s: watched_directory is not supported: use filename", what)
	}
	return "", fmt.Errorf("%s: filename is needed", what)
}

// onlyFields refuses the fields of m set other than allowed, naming the
// first (by name).
func onlyFields(m proto.Message, what string, allowed ...string) error {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	var bad string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if n := string(fd.Name()); !ok[n] && (bad == "" || n < bad) {
			bad = n
		}
		return true
	})
	if bad != "" {
		return errors.New(what + "." + bad + " is not supported")
	}
	return nil
}
