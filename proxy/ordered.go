package proxy

import "github.com/metaproxy/metaproxy/codec"

// Ordered protocols (codec.Capabilities.OrderedResponses: Redis) carry no
// request ids: a client matches each answer to its requests by order. The
// engine keeps that order on both sides:
//
//   - downstream, each two-way request takes the next place (ex.seq) among
//     its client's answers; an answer that is ready before those of earlier
//     requests (they went to another shard, or wait for a slower host) is
//     held until they are written;
//   - upstream, a connection carries many requests, and its answers come
//     back in the order they were sent (upstream.fifo): the n-th answer is
//     the n-th request's. A request abandoned meanwhile (timed out, its
//     client gone) keeps its place, and its late answer is dropped.
//
// The held answers are bounded by max_active_requests_per_connection, like
// the requests in flight they belong to.

// order is a session's answer order; guarded by the session's lock.
type order struct {
	seqIn  uint64            // the place of the last request decoded
	seqOut uint64            // the place of the last answer written
	parked map[uint64][]byte // finished answers waiting for earlier ones (nil: no bytes)
}

// nextSeq returns the place of a new two-way request.
func (o *order) nextSeq() uint64 {
	o.seqIn++
	return o.seqIn
}

// place keeps ex's answer, just appended to ss.wbuf from n on, back unless
// every earlier answer is written; ss.mu is held.
func (ss *Session) place(ex *exchange, n int) {
	if ex.seq == 0 || ex.seq == ss.seqOut+1 {
		return
	}
	if ss.parked == nil {
		ss.parked = map[uint64][]byte{}
	}
	ss.parked[ex.seq] = append(ss.parked[ex.seq], ss.wbuf[n:]...)
	ss.wbuf = ss.wbuf[:n]
}

// done records that the exchange in place seq ended (answered, or not
// answered at all); when it is the next to write, it and every held answer
// after it go to the client, in order; ss.mu is held.
func (ss *Session) done(seq uint64) {
	if seq != ss.seqOut+1 {
		if _, ok := ss.parked[seq]; !ok {
			if ss.parked == nil {
				ss.parked = map[uint64][]byte{}
			}
			ss.parked[seq] = nil
		}
		return
	}
	ss.seqOut = seq
	for {
		b, ok := ss.parked[ss.seqOut+1]
		if !ok {
			return
		}
		delete(ss.parked, ss.seqOut+1)
		ss.wbuf = append(ss.wbuf, b...)
		ss.seqOut++
	}
}

// answerLocally answers ex itself when the codec says the proxy does (a
// Redis PING, SELECT, AUTH...), in its place among the client's answers;
// ss.mu is held. It reports whether ex was answered (and released).
func (ss *Session) answerLocally(ex *exchange) bool {
	s := ss.srv
	n := len(ss.wbuf)
	out, answered, closeAfter := ss.local.LocalAnswer(ss.wbuf, &ex.req)
	if !answered {
		ss.wbuf = out[:n]
		return false
	}
	ss.wbuf = out
	s.stats.RequestEvent.Add(1)
	if ss.ordered && ex.req.Kind == codec.KindRequest {
		ex.seq = ss.nextSeq()
		ss.place(ex, n)
		ss.done(ex.seq)
	}
	ex.release()
	if closeAfter {
		ss.closeLocked(true)
	}
	return true
}
