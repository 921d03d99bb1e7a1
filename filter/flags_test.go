package filter

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

func TestResponseFlagsAndCode(t *testing.T) {
	ok := &codec.Message{Kind: codec.KindResponse}
	for _, tc := range []struct {
		name        string
		x           *Exchange
		flags, code string
	}{
		{"answered", &Exchange{Response: ok}, "-", "0"},
		{"callee exception", &Exchange{Response: ok, Outcome: Outcome{Status: codec.StatusError}}, "-", "1"},
		{"no route", &Exchange{Outcome: Outcome{Local: true, ErrorType: codec.ErrRouteNotFound}}, "NR", "1"},
		{"upstream down", &Exchange{Outcome: Outcome{Local: true, ErrorType: codec.ErrUnavailable}}, "UF", "1"},
		{"timeout", &Exchange{Outcome: Outcome{Local: true, ErrorType: codec.ErrTimeout}}, "UT", "1"},
		{"breaker", &Exchange{Outcome: Outcome{Local: true, ErrorType: codec.ErrOverloaded}}, "UO", "1"},
		{"rate limited", &Exchange{Outcome: Outcome{Local: true, ErrorType: codec.ErrOverloaded, Flags: FlagRateLimited}}, "RL", "1"},
		{"fault abort", &Exchange{Outcome: Outcome{Local: true, ErrorType: codec.ErrUnavailable, Flags: FlagFaultInjected}}, "FI", "1"},
		{"delayed, answered", &Exchange{Response: ok, Outcome: Outcome{Flags: FlagDelayInjected}}, "DI", "0"},
		{"oneway", &Exchange{Outcome: Outcome{Oneway: true}}, "-", "0"},
		{"client gone", &Exchange{Outcome: Outcome{ClientGone: true}}, "DC", "1"},
		{"two", &Exchange{Outcome: Outcome{Local: true, ErrorType: codec.ErrNoHealthyUpstream, Flags: FlagDelayInjected}}, "UH,DI", "1"},
	} {
		if f, c := ResponseFlags(tc.x), ResponseCode(tc.x); f != tc.flags || c != tc.code {
			t.Errorf("%s: flags %q code %q, want %q %q", tc.name, f, c, tc.flags, tc.code)
		}
	}
}
