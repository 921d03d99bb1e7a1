# Istio's proxy image with metaprotocol.so, the metaproxy plugin for Envoy's
# golang network filter, at /usr/local/lib/metaprotocol/metaprotocol.so
# (the library_path of envoy-configs/).
#
#   docker build -t metaproxy-proxyv2:1.28.1 .
#
# Istio 1.28's proxyv2 carries Envoy 1.36, the release the plugin's Go SDK
# (go.mod: github.com/envoyproxy/envoy v1.36.2) matches; Envoy checks no ABI
# version, so for another Istio give the Envoy release (or commit) its
# proxyv2 carries:
#
#   docker build --build-arg ISTIO_VERSION=1.29.0 --build-arg ENVOY_VERSION=v1.37.0 .
#
# For the distroless variant, use --build-arg ISTIO_VARIANT=-distroless.
#
# The plugin is built on Debian bookworm (glibc 2.36), no newer than the
# glibc of any proxyv2 variant (Ubuntu noble: 2.39, distroless: 2.36), with
# plugin/build.sh, the script `make so` and the tests run.
ARG GO_VERSION=1.26
ARG ISTIO_VERSION=1.28.1
ARG ISTIO_VARIANT=

FROM golang:${GO_VERSION}-bookworm AS build
ARG ENVOY_VERSION=
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN ENVOY_VERSION="${ENVOY_VERSION}" plugin/build.sh /out/metaprotocol.so

FROM istio/proxyv2:${ISTIO_VERSION}${ISTIO_VARIANT}
COPY --from=build /out/metaprotocol.so /usr/local/lib/metaprotocol/metaprotocol.so
