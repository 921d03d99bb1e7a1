// Copyright The Envoy Authors and metaproxy authors. Apache License 2.0.
// Derived from Envoy v1.36.2, contrib/golang/filters/network/source/go/pkg/network.

package shim

import (
	"sync"
	"unsafe"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

// connectionCallback is the api.ConnectionCallback of one Envoy connection,
// downstream or upstream (the func fields pick which C functions).
type connectionCallback struct {
	wrapper             unsafe.Pointer
	writeFunc           func(f unsafe.Pointer, p unsafe.Pointer, n int, end int)
	closeFunc           func(f unsafe.Pointer, closeType int)
	infoFunc            func(f unsafe.Pointer, infoType int) string
	enableHalfCloseFunc func(f unsafe.Pointer, enable int) // nil downstream
	state               filterState
	sema                sync.WaitGroup
	waitingOnEnvoy      int32
	mutex               sync.Mutex
}

var (
	_ api.ConnectionCallback = (*connectionCallback)(nil)
	_ api.StreamInfo         = (*connectionCallback)(nil)
)

func newCallback(wrapper unsafe.Pointer, downstream bool) *connectionCallback {
	cb := &connectionCallback{wrapper: wrapper}
	if downstream {
		cb.writeFunc, cb.closeFunc, cb.infoFunc = downstreamWrite, downstreamClose, downstreamInfo
	} else {
		cb.writeFunc, cb.closeFunc, cb.infoFunc = upstreamWrite, upstreamClose, upstreamInfo
		cb.enableHalfCloseFunc = upstreamEnableHalfClose
	}
	if downstream {
		cb.state.cb = cb // Envoy keeps filter state for downstream connections only
	}
	return cb
}

// Write hands buffer to Envoy, which copies it. An empty write is dropped.
func (n *connectionCallback) Write(buffer []byte, endStream bool) {
	if len(buffer) == 0 && !endStream {
		return
	}
	var p unsafe.Pointer
	if len(buffer) > 0 {
		p = unsafe.Pointer(&buffer[0])
	}
	n.writeFunc(n.wrapper, p, len(buffer), boolInt(endStream))
}

func (n *connectionCallback) Close(closeType api.ConnectionCloseType) {
	n.closeFunc(n.wrapper, int(closeType))
}

func (n *connectionCallback) StreamInfo() api.StreamInfo { return n }

func (n *connectionCallback) EnableHalfClose(enabled bool) {
	if n.enableHalfCloseFunc == nil {
		panic("EnableHalfClose is not supported for downstream connection yet")
	}
	n.enableHalfCloseFunc(n.wrapper, boolInt(enabled))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// UpstreamLocalAddress is the connection's local address (on a downstream
// connection, the listener's).
func (n *connectionCallback) UpstreamLocalAddress() (string, bool) {
	return n.infoFunc(n.wrapper, int(api.ConnectionInfoLocalAddr)), true
}

// UpstreamRemoteAddress is the connection's peer (on a downstream
// connection, the client).
func (n *connectionCallback) UpstreamRemoteAddress() (string, bool) {
	return n.infoFunc(n.wrapper, int(api.ConnectionInfoRemoteAddr)), true
}

func (n *connectionCallback) FilterState() api.FilterState { return &n.state }

// The rest of api.StreamInfo: Envoy's network filter offers none of it.

func (n *connectionCallback) GetRouteName() string                 { panic(unsupported) }
func (n *connectionCallback) FilterChainName() string              { panic(unsupported) }
func (n *connectionCallback) Protocol() (string, bool)             { panic(unsupported) }
func (n *connectionCallback) ResponseCode() (uint32, bool)         { panic(unsupported) }
func (n *connectionCallback) ResponseCodeDetails() (string, bool)  { panic(unsupported) }
func (n *connectionCallback) AttemptCount() uint32                 { panic(unsupported) }
func (n *connectionCallback) DynamicMetadata() api.DynamicMetadata { panic(unsupported) }
func (n *connectionCallback) DownstreamLocalAddress() string       { panic(unsupported) }
func (n *connectionCallback) DownstreamRemoteAddress() string      { panic(unsupported) }
func (n *connectionCallback) UpstreamClusterName() (string, bool)  { panic(unsupported) }
func (n *connectionCallback) VirtualClusterName() (string, bool)   { panic(unsupported) }
func (n *connectionCallback) WorkerID() uint32                     { panic(unsupported) }

const unsupported = "not offered by Envoy's golang network filter"

// filterState is the connection's Envoy filter state; without cb (an
// upstream connection) it holds nothing.
type filterState struct{ cb *connectionCallback }

var _ api.FilterState = (*filterState)(nil)

func (f *filterState) SetString(key, value string, stateType api.StateType, lifeSpan api.LifeSpan, sharing api.StreamSharing) {
	if f.cb != nil {
		setFilterState(f.cb, key, value, stateType, lifeSpan, sharing)
	}
}

func (f *filterState) GetString(key string) string {
	if f.cb == nil {
		return ""
	}
	return getFilterState(f.cb, key)
}
