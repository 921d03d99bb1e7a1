// Package abihost runs metaprotocol.so the way Envoy does, without an Envoy
// binary: host/ is a small C program that loads the plugin with dlopen,
// exports the callbacks Envoy exports (compiled against Envoy's own api.h)
// and reproduces the golang network filter's threading and buffer
// semantics (see README.md). This package builds the host and the
// plugin, turns Envoy bootstrap files into the host's config and runs the
// host for tests.
package abihost
