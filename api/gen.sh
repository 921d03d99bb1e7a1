#!/usr/bin/env bash
# Regenerates the Go code of the protobuf definitions under api/proto.
#
#   bash api/gen.sh          (from the repository root; the lead's `make api` calls it)
#
# It installs what it needs: protoc and the well-known .proto files from
# Debian (protobuf-compiler, libprotobuf-dev) when protoc is missing, and
# protoc-gen-go at the google.golang.org/protobuf version that go.mod
# requires, into a temporary GOBIN. Each generated .pb.go file lands in the
# directory of its go_package, below api/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v protoc >/dev/null 2>&1 || [ ! -f /usr/include/google/protobuf/any.proto ]; then
	sudo=""
	if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq protobuf-compiler libprotobuf-dev >/dev/null
fi

version="$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"
gobin="$(mktemp -d)"
trap 'rm -rf "$gobin"' EXIT
GOBIN="$gobin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${version}"

module="github.com/metaproxy/metaproxy"
mapfile -t protos < <(cd api/proto && find . -name '*.proto' | sed 's|^\./||' | sort)

# Remove stale output first, so a deleted .proto leaves no Go behind.
find api -name '*.pb.go' -not -path 'api/proto/*' -delete

PATH="$gobin:$PATH" protoc \
	-I api/proto -I /usr/include \
	--go_out=. --go_opt="module=${module}" \
	"${protos[@]}"

gofmt -l api | grep '\.pb\.go$' && { echo "gen.sh: generated code is not gofmt-clean" >&2; exit 1; }
echo "gen.sh: generated $(find api -name '*.pb.go' | wc -l) files with protoc-gen-go ${version} and $(protoc --version)"
