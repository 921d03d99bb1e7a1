package proxy

import (
	"reflect"
	"sync/atomic"
)

// Stats are the listener's counters, named as Aeraki's
// (meta_protocol.<protocol>.<stat_prefix>.<name>).
type Stats struct {
	CxTotal                        atomic.Uint64 `stat:"cx_total"`
	CxActive                       atomic.Int64  `stat:"cx_active"`
	DownstreamCxOverflow           atomic.Uint64 `stat:"downstream_cx_overflow"`     // connections over max_connections, closed
	DownstreamCxAcceptError        atomic.Uint64 `stat:"downstream_cx_accept_error"` // standalone: failed accepts (fd limit)
	CxDestroyLocalWithActiveRq     atomic.Uint64 `stat:"cx_destroy_local_with_active_rq"`
	CxDestroyRemoteWithActiveRq    atomic.Uint64 `stat:"cx_destroy_remote_with_active_rq"`
	Request                        atomic.Uint64 `stat:"request"`
	RequestTwoway                  atomic.Uint64 `stat:"request_twoway"`
	RequestOneway                  atomic.Uint64 `stat:"request_oneway"`
	RequestEvent                   atomic.Uint64 `stat:"request_event"`
	RequestActive                  atomic.Int64  `stat:"request_active"`
	RequestDecodingSuccess         atomic.Uint64 `stat:"request_decoding_success"`
	RequestDecodingError           atomic.Uint64 `stat:"request_decoding_error"`
	Response                       atomic.Uint64 `stat:"response"`
	ResponseSuccess                atomic.Uint64 `stat:"response_success"`
	ResponseError                  atomic.Uint64 `stat:"response_error"`
	ResponseDecodingSuccess        atomic.Uint64 `stat:"response_decoding_success"`
	ResponseDecodingError          atomic.Uint64 `stat:"response_decoding_error"`
	ResponseUnknownID              atomic.Uint64 `stat:"response_unknown_id"`
	ResponseErrorCausedConnClose   atomic.Uint64 `stat:"response_error_caused_connection_close"`
	LocalResponseBusinessException atomic.Uint64 `stat:"local_response_business_exception"`
	LocalReplySuppressed           atomic.Uint64 `stat:"local_reply_suppressed"` // for calls a serial client no longer awaits
	IdleTimeout                    atomic.Uint64 `stat:"idle_timeout"`
	FrameReceiveTimeout            atomic.Uint64 `stat:"frame_receive_timeout"` // a client too slow to send a frame
	RequestTimeout                 atomic.Uint64 `stat:"request_timeout"`
	RequestCancelled               atomic.Uint64 `stat:"request_cancelled"` // its client closed before the answer
	RequestOverflow                atomic.Uint64 `stat:"request_overflow"`  // over a bound on requests in flight
	UpstreamCxTotal                atomic.Uint64 `stat:"upstream_cx_total"`
	UpstreamCxConnectFail          atomic.Uint64 `stat:"upstream_cx_connect_fail"`
	UpstreamRqRetry                atomic.Uint64 `stat:"upstream_rq_retry"`           // requests sent again (not sent, or under a retry policy)
	UpstreamRqRetrySuccess         atomic.Uint64 `stat:"upstream_rq_retry_success"`   // retried requests answered by a later try
	UpstreamRqRetryOverflow        atomic.Uint64 `stat:"upstream_rq_retry_overflow"`  // retries refused: the cluster's max_retries in flight
	UpstreamRqPerTryTimeout        atomic.Uint64 `stat:"upstream_rq_per_try_timeout"` // tries past the retry policy's per_try_timeout
	RequestMirror                  atomic.Uint64 `stat:"request_mirror"`              // copies sent to a mirror cluster
	RequestMirrorOverflow          atomic.Uint64 `stat:"request_mirror_overflow"`     // copies not sent: too many mirrored requests in flight
	RequestMirrorFailed            atomic.Uint64 `stat:"request_mirror_failed"`       // copies not answered (unreachable, timed out, reset)
	RequestMirrorActive            atomic.Int64  `stat:"request_mirror_active"`
	UpstreamCxConnectBackoff       atomic.Uint64 `stat:"upstream_cx_connect_backoff"` // dials not made: the host backs off
	UpstreamCxSelfConnect          atomic.Uint64 `stat:"upstream_cx_self_connect"`
	UpstreamCxLocalFail            atomic.Uint64 `stat:"upstream_cx_local_fail"` // connects failed for lack of local fds or buffers
	UpstreamCxClosedWithActiveRq   atomic.Uint64 `stat:"upstream_cx_destroy_with_active_rq"`
	BufferOverflow                 atomic.Uint64 `stat:"buffer_overflow"`
	CxSlowReader                   atomic.Uint64 `stat:"cx_slow_reader"`          // clients cut off at the write buffer bound
	UpstreamCxSlowReader           atomic.Uint64 `stat:"upstream_cx_slow_reader"` // upstreams cut off at it
	StreamTotal                    atomic.Uint64 `stat:"stream_total"`            // streams opened by clients (their INITs)
	StreamActive                   atomic.Int64  `stat:"stream_active"`           // streams routed and not ended
	StreamReset                    atomic.Uint64 `stat:"stream_reset"`            // streams the proxy ended with a reset (upstream lost, client gone, overflow)
	StreamFrameUnknown             atomic.Uint64 `stat:"stream_frame_unknown"`    // stream frames of no stream the proxy knows, dropped
	PanicsContained                atomic.Uint64 `stat:"panics_contained"`
	FilterResumeStray              atomic.Uint64 `stat:"filter_resume_stray"` // Resumes of exchanges not paused: a filter's bug, ignored
}

// Each calls f with every stat: its name, value, and whether it is a gauge
// (a level that goes up and down) rather than a counter.
func (s *Stats) Each(f func(name string, value int64, gauge bool)) {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("stat")
		switch c := v.Field(i).Addr().Interface().(type) {
		case *atomic.Uint64:
			f(name, int64(c.Load()), false)
		case *atomic.Int64:
			f(name, c.Load(), true)
		}
	}
}

// Snapshot returns every stat by name.
func (s *Stats) Snapshot() map[string]int64 {
	out := map[string]int64{}
	s.Each(func(name string, value int64, _ bool) { out[name] = value })
	return out
}
