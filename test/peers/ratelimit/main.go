// Command ratelimit runs Envoy's reference rate-limit service
// (github.com/envoyproxy/ratelimit) as a real peer for metaproxy's tests of
// the global rate-limit filter. It is its own Go module so that the
// service's dependencies (grpc, go-control-plane, ...) do not change the
// test module's; test/harness builds it (see StartRateLimitService).
//
// The service is configured only by its environment (settings.NewSettings
// reads it), exactly as upstream's src/service_cmd.
package main

import (
	"github.com/envoyproxy/ratelimit/src/service_cmd/runner"
	"github.com/envoyproxy/ratelimit/src/settings"
)

func main() {
	r := runner.NewRunner(settings.NewSettings())
	r.Run()
}
