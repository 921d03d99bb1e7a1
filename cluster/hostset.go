package cluster

import (
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
)

// hostSet is one generation of a cluster's hosts with the balancer built for
// them; a cluster swaps the whole set at once.
type hostSet struct {
	hosts   []*Host
	weights []uint32 // the balancing weight of hosts[i]
	keys    []string // the hash key of hosts[i] (RING_HASH, MAGLEV)
	lb      Balancer
	// unhealthy counts the hosts with a health flag set (panic mode).
	unhealthy atomic.Int32
}

// member is one host of a set being built.
type member struct {
	addr, key string
	weight    uint32
}

// hashKey is the string Envoy's hashing balancers hash for a host: the
// endpoint's envoy.lb hash_key metadata if set, else the host's address as
// Envoy's Address::asString prints it ("ip:port", "[ipv6]:port").
func hashKey(ep Endpoint, addr string) string {
	if ep.HashKey != "" {
		return ep.HashKey
	}
	return addr
}

// staticMembers resolves STATIC endpoints, which must be IP literals.
func staticMembers(name string, eps []Endpoint) ([]member, error) {
	out := make([]member, 0, len(eps))
	for _, ep := range eps {
		ip, err := netip.ParseAddr(ep.Host)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: STATIC endpoint %q is not an IP address (use type STRICT_DNS for host names)", name, ep.Host)
		}
		if ep.Port <= 0 || ep.Port > 65535 {
			return nil, fmt.Errorf("cluster %q: endpoint %q: port %d is not in 1-65535", name, ep.Host, ep.Port)
		}
		addr := netip.AddrPortFrom(ip, uint16(ep.Port)).String()
		out = append(out, member{addr: addr, key: hashKey(ep, addr), weight: ep.Weight})
	}
	return out, nil
}

// buildSet makes the host set of ms, keeping the Host objects (and their
// live state) of prev's addresses that stay; an address listed twice keeps
// as many of its old hosts as it had.
func (c *Cluster) buildSet(prev *hostSet, ms []member) *hostSet {
	old := make(map[string][]*Host, len(prev.hosts))
	for _, h := range prev.hosts {
		old[h.Addr] = append(old[h.Addr], h)
	}
	hs := &hostSet{hosts: make([]*Host, len(ms)), weights: make([]uint32, len(ms)), keys: make([]string, len(ms))}
	for i, m := range ms {
		var h *Host
		if kept := old[m.addr]; len(kept) > 0 {
			h, old[m.addr] = kept[0], kept[1:]
		} else {
			h = &Host{Addr: m.addr, Weight: m.weight}
			if c.checks != nil {
				h.flags.Store(FailedActiveHC) // until its first check passes
			}
		}
		hs.hosts[i], hs.weights[i], hs.keys[i] = h, m.weight, m.key
	}
	hs.lb = newBalancer(&c.cfg, hs.hosts, hs.weights, hs.keys)
	hs.countUnhealthy()
	return hs
}

func (hs *hostSet) same(o *hostSet) bool {
	return slices.Equal(hs.hosts, o.hosts) && slices.Equal(hs.weights, o.weights) && slices.Equal(hs.keys, o.keys)
}

// swap replaces the host set with one of ms (unless it would be the same)
// and tells the watchers which hosts left it.
func (c *Cluster) swap(ms []member) {
	c.mu.Lock()
	prev := c.set.Load()
	hs := c.buildSet(prev, ms)
	if hs.same(prev) {
		c.mu.Unlock()
		return
	}
	c.set.Store(hs)
	if c.checks != nil {
		c.checks.update(hs.hosts)
	}
	fns := make([]func([]*Host), 0, len(c.watchers))
	for _, w := range c.watchers {
		fns = append(fns, w.fn)
	}
	c.mu.Unlock()

	in := make(map[*Host]bool, len(hs.hosts))
	for _, h := range hs.hosts {
		in[h] = true
	}
	var removed []*Host
	for _, h := range prev.hosts {
		if !in[h] {
			h.left.Store(true) // before the watchers drain its pools
			removed = append(removed, h)
		}
	}
	for _, fn := range fns {
		fn(removed)
	}
}

// Update replaces the endpoints of a STATIC cluster (fed by a control
// plane), keeping the Host objects, and so the live state (requests in
// flight, connect back-off), of addresses that stay. A kept host's
// balancing weight becomes the new one (Host.Weight keeps the weight it was
// created with). Endpoints must be IP literals; on error nothing changes.
// The balancer is rebuilt with the hosts, so a policy's state (round robin
// position, scheduler) starts afresh.
func (c *Cluster) Update(eps []Endpoint) error {
	if c.cfg.Type == StrictDNS {
		return fmt.Errorf("cluster %q: Update: a STRICT_DNS cluster's hosts come from DNS", c.cfg.Name)
	}
	ms, err := staticMembers(c.cfg.Name, eps)
	if err != nil {
		return err
	}
	c.swap(ms)
	return nil
}

type watcher struct {
	id uint64
	fn func(removed []*Host)
}

// Watch calls fn after each swap of the cluster's host set (by Update or a
// DNS refresh that changed the hosts), outside any lock, with the hosts that
// left the set (possibly none), so that their connection pools can be
// drained: Pick no longer returns them, but requests already sent to them
// may still be in flight. Calls for successive swaps come in order unless
// Update is called concurrently. cancel stops the calls; a call for a swap
// under way when cancel is called may still come.
func (c *Cluster) Watch(fn func(removed []*Host)) (cancel func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watchSeq++
	id := c.watchSeq
	c.watchers = append(c.watchers, watcher{id, fn})
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.watchers = slices.DeleteFunc(c.watchers, func(w watcher) bool { return w.id == id })
	}
}
