package proxy

import (
	"sync/atomic"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/router"
)

// snapshot is one configuration of a listener as requests see it: the
// filter chain, the route table and the clusters. The Server holds the
// current one in an atomic pointer and swaps it whole; each exchange
// captures the snapshot at decode time and keeps it to its end, so a swap
// never changes the rules of a request already decoded.
type snapshot struct {
	chain    *filter.Chain
	routes   *router.Table
	clusters map[string]*clusterRef
	// tick is how often deadlines are checked: a fraction of the
	// shortest timeout configured.
	tick time.Duration
}

// clusterRef is a cluster as the engine uses it, with the engine's own
// per-cluster state. It outlives snapshots: a new snapshot keeps the refs
// of the clusters it still has.
type clusterRef struct {
	cl      *cluster.Cluster
	unwatch func()      // stops the Server's watch on the cluster's hosts
	gone    atomic.Bool // the cluster left the listener (SetClusters)
}

// sweepTick returns how often deadlines must be checked so that a request
// times out at most about an eighth of its timeout late (within 5-100 ms).
func sweepTick(listener time.Duration, t *router.Table) time.Duration {
	shortest := listener
	for _, r := range t.Routes {
		for _, d := range []time.Duration{r.Timeout, r.Retry.PerTryTimeout} {
			if d > 0 && (shortest <= 0 || d < shortest) {
				shortest = d
			}
		}
	}
	if shortest <= 0 {
		return 100 * time.Millisecond
	}
	return min(max(shortest/8, 5*time.Millisecond), 100*time.Millisecond)
}
