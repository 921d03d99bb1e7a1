#!/bin/sh
# Builds metaprotocol.so, the plugin for Envoy's golang network filter.
# `make so` and the Dockerfile run this script; the ABI host tests too.
#
#   plugin/build.sh [OUTPUT]          default OUTPUT: ./metaprotocol.so
#
# ENVOY_VERSION  the Envoy release (or commit) whose Go SDK the plugin is
#                built against; it must match the Envoy binary that loads it,
#                since Envoy checks no ABI version. Default: the version in
#                go.mod (v1.36.2, the Envoy of Istio 1.28). Another version
#                is resolved in a temporary copy of go.mod; the repository's
#                go.mod is left alone.
#                plugin/shim declares Envoy's C functions itself (capi.h,
#                checked against go.mod's Envoy by TestShimMatchesEnvoy):
#                for another version, compare capi.h with its
#                contrib/golang/common/go/api/api.h.
# GO_TAGS        extra build tags (the tests use abitest).
# GO_LDFLAGS     extra linker flags.
#
# GODEBUG=cgocheck=0 is baked into the .so: the SDK passes Go pointers to C,
# and Envoy (Istio's proxyv2 included) does not set it for the process.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-metaprotocol.so}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
cd "$root"

modflags=
if [ -n "${ENVOY_VERSION:-}" ] && [ "$ENVOY_VERSION" != "$(go list -m -f '{{.Version}}' github.com/envoyproxy/envoy)" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	cp go.mod "$tmp/go.mod"
	cp go.sum "$tmp/go.sum"
	go get -modfile="$tmp/go.mod" "github.com/envoyproxy/envoy@$ENVOY_VERSION"
	modflags="-modfile=$tmp/go.mod"
fi

CGO_ENABLED=1 go build $modflags \
	-buildmode=c-shared \
	-trimpath \
	-tags "${GO_TAGS:-}" \
	-ldflags "-X=runtime.godebugDefault=cgocheck=0 ${GO_LDFLAGS:-}" \
	-o "$out" ./plugin
rm -f "${out%.so}.h"
