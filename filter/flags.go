package filter

import (
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

// Flag is one of Envoy's response flags: why an exchange ended as it did,
// beyond its response. The engine derives most of them from the outcome
// (see ResponseFlags); filters add theirs to Outcome.Flags (a rate
// limiter RL, fault injection FI and DI, an authorization denial UAEX).
type Flag uint32

// Response flags, in Envoy's order of rendering.
const (
	FlagNoHealthyUpstream      Flag = 1 << iota // UH
	FlagUpstreamConnectFailure                  // UF
	FlagUpstreamOverflow                        // UO: a circuit breaker
	FlagNoRoute                                 // NR
	FlagUpstreamRequestTimeout                  // UT
	FlagDownstreamTermination                   // DC: the client went away
	FlagFaultInjected                           // FI
	FlagDelayInjected                           // DI
	FlagRateLimited                             // RL
	FlagUnauthorized                            // UAEX: denied by policy
	FlagRateLimitServiceError                   // RLSE
	FlagUpstreamProtocolError                   // UPE: a response that could not be decoded
	FlagNoClusterFound                          // NC
	FlagLocalReset                              // LR: the proxy failed the request (internal error, overload)
	numFlags                   = iota
)

var flagLetters = [numFlags]string{"UH", "UF", "UO", "NR", "UT", "DC", "FI", "DI", "RL", "UAEX", "RLSE", "UPE", "NC", "LR"}

// ResponseFlags renders the response flags of an exchange that ended, in
// Envoy's letters joined by commas ("-" for none), as Envoy's
// %RESPONSE_FLAGS% and Istio's response_flags label show them: the flags
// filters set, and those of the outcome's local error.
func ResponseFlags(x *Exchange) string {
	f := x.Outcome.Flags
	o := &x.Outcome
	if o.ClientGone {
		f |= FlagDownstreamTermination
	}
	if o.Local {
		switch o.ErrorType {
		case codec.ErrRouteNotFound:
			f |= FlagNoRoute
		case codec.ErrClusterNotFound:
			f |= FlagNoClusterFound
		case codec.ErrNoHealthyUpstream:
			f |= FlagNoHealthyUpstream
		case codec.ErrUnavailable:
			if f&(FlagRateLimitServiceError|FlagFaultInjected) == 0 {
				f |= FlagUpstreamConnectFailure
			}
		case codec.ErrTimeout:
			if f&FlagFaultInjected == 0 {
				f |= FlagUpstreamRequestTimeout
			}
		case codec.ErrOverloaded:
			if f&(FlagRateLimited|FlagFaultInjected) == 0 {
				f |= FlagUpstreamOverflow
			}
		case codec.ErrBadResponse:
			f |= FlagUpstreamProtocolError
		case codec.ErrInternal:
			if f&FlagFaultInjected == 0 {
				f |= FlagLocalReset
			}
		}
	}
	if f == 0 {
		return "-"
	}
	var b strings.Builder
	for i := range numFlags {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(flagLetters[i])
		}
	}
	return b.String()
}

// ResponseCode is Aeraki's response code of an exchange that ended: "0"
// when the upstream answered with status OK, or a oneway request was sent;
// "1" for anything else (an application error, a server failure, a local
// reply, a client gone before its answer).
func ResponseCode(x *Exchange) string {
	o := &x.Outcome
	switch {
	case o.Local || o.ClientGone:
		return "1"
	case o.Oneway, x.Response != nil && o.Status == codec.StatusOK:
		return "0"
	}
	return "1"
}
