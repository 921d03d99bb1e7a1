package proxy

import (
	"errors"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/router"
)

// Retries. A request that was not sent — its host backs off, or its
// connection never connected — is tried once more at another host of its
// cluster whatever the route says: the server never saw it. Beyond that a
// route's retry_policy says which failures are tried again (retry_on) and
// how often (num_retries). A retry goes to another host where there is
// one, holds one of the cluster's max_retries while it is in flight, and
// never outlives the request's deadline. The request's bytes are kept
// until the exchange ends and the client's request id is restored on the
// answer whichever try gives it. Sticky requests (a key of a sharded data
// store, cluster.LBContext.Sticky) are never retried elsewhere. A request
// whose host left its cluster before it was sent there picks a host again
// (repick): that is not a try, nor a retry.

// maxRepicks bounds the picks again of one request: each follows an
// endpoint update that removed the host picked just before it.
const maxRepicks = 3

// retry sends ex again after its attempt failed (f) or was answered with a
// server failure (f nil); it reports false, leaving ex to the caller, when
// the failure is not retried; ss.mu is held.
func (ss *Session) retry(ex *exchange, f *failure) bool {
	s := ss.srv
	if ss.closed || ex.unawaited || ex.cl == nil {
		return false
	}
	if f != nil && f.cause == causeHostGone {
		return ss.repick(ex)
	}
	if ex.lb.Sticky {
		return false // a sharded key lives on its host: no other host has it
	}
	builtin := f != nil && f.cause == causeConnect && ex.tries == 1 && len(ex.cl.cl.Hosts()) > 1
	if ex.stream != nil && !builtin {
		return false // a stream's INIT is tried again only if it never left
	}
	if !builtin && !ss.policyRetries(ex, f) {
		return false
	}
	if ex.deadline != 0 && s.now().UnixNano() >= ex.deadline {
		return false
	}
	cl := ex.cl.cl
	if builtin {
		cl.Stats().UpstreamRqRetry.Add(1)
	} else {
		if !cl.TryRetry() {
			s.stats.UpstreamRqRetryOverflow.Add(1)
			return false
		}
		ex.retries++
	}
	s.stats.UpstreamRqRetry.Add(1)
	ex.lb.Exclude = ex.try.host
	ex.try = attempt{budget: !builtin}
	ss.attempt(ex)
	return true
}

// repick runs ex's attempt again at a host picked from its cluster's
// current hosts, after the host it picked left the cluster before ex was
// sent there. The attempt is the same try: a policy retry holds one of
// max_retries again; ss.mu is held. An attempt is a policy retry exactly
// when ex.retries > 0: the built-in retry of a request not sent can only
// be its second try, before any policy retry.
func (ss *Session) repick(ex *exchange) bool {
	if ex.repicks >= maxRepicks {
		return false
	}
	retry := ex.retries > 0
	if retry && !ex.cl.cl.TryRetry() {
		ss.srv.stats.UpstreamRqRetryOverflow.Add(1)
		return false
	}
	ex.repicks++
	ex.tries--
	ex.try = attempt{budget: retry}
	ss.attempt(ex)
	return true
}

// policyRetries reports whether the route's retry policy covers f (nil: a
// server failure response) and has retries left.
func (ss *Session) policyRetries(ex *exchange, f *failure) bool {
	r := ex.x.Route
	if r == nil || !r.Retry.Enabled() || ex.retries >= r.Retry.NumRetries {
		return false
	}
	if ex.req.Kind == codec.KindOneway && (f == nil || f.cause != causeConnect) {
		return false // a oneway request that left cannot be known to have failed
	}
	var want router.RetryOn
	switch {
	case f == nil:
		want = router.RetryServerFailure
	case f.cause == causeConnect:
		want = router.RetryConnectFailure
	case f.cause == causeReset:
		want = router.RetryReset
	case f.cause == causePerTryTimeout:
		want = router.RetryPerTryTimeout
	default:
		return false
	}
	return r.Retry.On&want != 0
}

// endTry ends ex's attempt: it gives back the retry and the request it
// held under its cluster's circuit breakers.
func (ex *exchange) endTry() {
	if ex.try.budget {
		ex.cl.cl.EndRetry()
		ex.try.budget = false
	}
	if ex.try.rq {
		ex.cl.cl.EndRequest()
		ex.try.rq = false
	}
}

func asCodecError(err error) *codec.Error {
	var ce *codec.Error
	if !errors.As(err, &ce) {
		ce = &codec.Error{Type: codec.ErrInternal, Message: err.Error()}
	}
	return ce
}
