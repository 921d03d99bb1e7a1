package harness_test

import (
	"context"
	"strings"
	"testing"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlpb "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metaproxy/metaproxy/test/harness"
)

const rateLimitRules = `domain: production
descriptors:
  - key: method
    value: sayHello
    rate_limit:
      unit: hour
      requests_per_unit: 5
`

func shouldRateLimit(ctx context.Context, c rlpb.RateLimitServiceClient, domain, key, value string) (rlpb.RateLimitResponse_Code, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.ShouldRateLimit(ctx, &rlpb.RateLimitRequest{
		Domain: domain,
		Descriptors: []*commonrl.RateLimitDescriptor{{
			Entries: []*commonrl.RateLimitDescriptor_Entry{{Key: key, Value: value}},
		}},
		HitsAddend: 1,
	})
	if err != nil {
		return 0, err
	}
	return resp.GetOverallCode(), nil
}

// TestRateLimitService runs redis-server and Envoy's rate-limit service and
// checks the service counts, limits and stops.
func TestRateLimitService(t *testing.T) {
	redis := harness.StartRedis(t)
	svc := harness.StartRateLimitService(t, redis, rateLimitRules)
	if dump, err := svc.LoadedConfig(); err != nil || !strings.Contains(dump, "production.method_sayHello") {
		t.Fatalf("/rlconfig = %q, %v", dump, err)
	}

	conn, err := grpc.NewClient(svc.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := rlpb.NewRateLimitServiceClient(conn)
	ctx := context.Background()

	for i := 1; i <= 7; i++ {
		code, err := shouldRateLimit(ctx, c, "production", "method", "sayHello")
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		want := rlpb.RateLimitResponse_OK
		if i > 5 {
			want = rlpb.RateLimitResponse_OVER_LIMIT
		}
		if code != want {
			t.Fatalf("call %d: %v, want %v", i, code, want)
		}
	}
	for _, d := range []struct{ domain, key, value string }{
		{"production", "method", "sayGoodbye"},
		{"production", "path", "sayHello"},
		{"staging", "method", "sayHello"},
	} {
		code, err := shouldRateLimit(ctx, c, d.domain, d.key, d.value)
		if err != nil || code != rlpb.RateLimitResponse_OK {
			t.Errorf("%s %s=%s: %v, %v; want OK", d.domain, d.key, d.value, code, err)
		}
	}

	svc.Kill()
	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = c.ShouldRateLimit(callCtx, &rlpb.RateLimitRequest{
		Domain: "production",
		Descriptors: []*commonrl.RateLimitDescriptor{{
			Entries: []*commonrl.RateLimitDescriptor_Entry{{Key: "method", Value: "sayHello"}},
		}},
	})
	if err == nil {
		t.Fatal("ShouldRateLimit succeeded after the service was killed")
	}
	t.Logf("after Kill: %v (in %v)", err, time.Since(start).Round(time.Millisecond))
}

func TestMain(m *testing.M) { harness.Main(m) }
