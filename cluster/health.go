package cluster

// Host health, as Envoy keeps it: a host is unhealthy while a health flag
// is set, each flag owned by one mechanism. Active health checking
// (healthcheck.go) sets FailedActiveHC; outlier detection (outlier.go)
// sets FailedOutlierCheck. Connect back-off is not a flag: it is metaproxy's
// own, short and per host, and panic mode does not override it.

// Health flags (Envoy's Host::HealthFlag).
const (
	// FailedActiveHC: the host failed active health checking (or has not
	// passed its first check yet).
	FailedActiveHC uint32 = 1 << iota
	// FailedOutlierCheck: outlier detection ejected the host.
	FailedOutlierCheck
)

// HealthFlags returns h's health flags; 0 means healthy.
func (h *Host) HealthFlags() uint32 { return h.flags.Load() }

// setHealth sets (failed) or clears flag on h and reports whether that
// changed it. The count of unhealthy hosts that panic mode reads is kept
// up to date.
func (c *Cluster) setHealth(h *Host, flag uint32, failed bool) bool {
	for {
		old := h.flags.Load()
		next := old &^ flag
		if failed {
			next = old | flag
		}
		if next == old {
			return false
		}
		if h.flags.CompareAndSwap(old, next) {
			break
		}
	}
	c.mu.Lock()
	c.set.Load().countUnhealthy()
	c.mu.Unlock()
	return true
}

// countUnhealthy recounts the hosts of hs with a health flag set.
func (hs *hostSet) countUnhealthy() {
	n := 0
	for _, h := range hs.hosts {
		if h.flags.Load() != 0 {
			n++
		}
	}
	hs.unhealthy.Store(int32(n))
}

// Membership returns the number of hosts and of healthy ones (no health
// flag set), as Envoy's membership_total and membership_healthy.
func (c *Cluster) Membership() (total, healthy int) {
	hs := c.set.Load()
	return len(hs.hosts), len(hs.hosts) - int(hs.unhealthy.Load())
}
