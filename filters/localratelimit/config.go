package localratelimit

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/api/envoy"
	lrlv1alpha "github.com/metaproxy/metaproxy/api/filters/local_ratelimit/v1alpha"
	"github.com/metaproxy/metaproxy/router"
)

// MinFillInterval is the shortest fill interval Aeraki accepts.
const MinFillInterval = 50 * time.Millisecond

// parse decodes and checks a LocalRateLimit (canonical proto JSON, as the
// host hands filter configs over; unknown fields are errors): stat_prefix
// is set, a default bucket or at least one condition is given, every
// condition has a match and a bucket, and every bucket has max_tokens > 0,
// tokens_per_fill > 0 when set and fill_interval >= MinFillInterval.
func parse(js json.RawMessage) (*lrlv1alpha.LocalRateLimit, error) {
	c := &lrlv1alpha.LocalRateLimit{}
	if len(js) == 0 {
		return nil, fmt.Errorf("a LocalRateLimit config is required")
	}
	if err := api.Unmarshal(js, c); err != nil {
		return nil, err
	}
	if c.GetStatPrefix() == "" {
		return nil, fmt.Errorf("stat_prefix: value is required")
	}
	if c.GetTokenBucket() == nil && len(c.GetConditions()) == 0 {
		return nil, fmt.Errorf("token_bucket or conditions is required")
	}
	if c.GetTokenBucket() != nil {
		if err := checkBucket(c.GetTokenBucket(), "token_bucket"); err != nil {
			return nil, err
		}
	}
	for i, cond := range c.GetConditions() {
		p := fmt.Sprintf("conditions[%d]", i)
		if cond.GetMatch() == nil {
			return nil, fmt.Errorf("%s.match: value is required", p)
		}
		if _, err := router.CompileMatch(cond.GetMatch()); err != nil {
			return nil, fmt.Errorf("%s.match.%w", p, err)
		}
		if cond.GetTokenBucket() == nil {
			return nil, fmt.Errorf("%s.token_bucket: value is required", p)
		}
		if err := checkBucket(cond.GetTokenBucket(), p+".token_bucket"); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func checkBucket(b *envoy.TokenBucket, path string) error {
	if b.GetMaxTokens() == 0 {
		return fmt.Errorf("%s.max_tokens: value must be greater than 0", path)
	}
	if b.GetTokensPerFill() != nil && b.GetTokensPerFill().GetValue() == 0 {
		return fmt.Errorf("%s.tokens_per_fill: value must be greater than 0", path)
	}
	if b.GetFillInterval() == nil {
		return fmt.Errorf("%s.fill_interval: value is required", path)
	}
	if err := b.GetFillInterval().CheckValid(); err != nil {
		return fmt.Errorf("%s.fill_interval: %v", path, err)
	}
	if d := b.GetFillInterval().AsDuration(); d < MinFillInterval {
		return fmt.Errorf("%s.fill_interval: %v is shorter than the minimum %v", path, d, MinFillInterval)
	}
	return nil
}
