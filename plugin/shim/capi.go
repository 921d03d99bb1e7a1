// Copyright The Envoy Authors and metaproxy authors. Apache License 2.0.
// Derived from Envoy v1.36.2, contrib/golang/filters/network/source/go/pkg/network.

package shim

/*
#cgo linux LDFLAGS: -Wl,-unresolved-symbols=ignore-all
#cgo darwin LDFLAGS: -Wl,-undefined,dynamic_lookup

#include "capi.h"
*/
import "C"

import (
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

// The calls into Envoy. Each copies what it is given before it returns.

func downstreamWrite(f unsafe.Pointer, p unsafe.Pointer, n int, end int) {
	C.envoyGoFilterDownstreamWrite(f, p, C.int(n), C.int(end))
}

func downstreamClose(f unsafe.Pointer, closeType int) {
	C.envoyGoFilterDownstreamClose(f, C.int(closeType))
}

func downstreamFinalize(f unsafe.Pointer, reason int) {
	C.envoyGoFilterDownstreamFinalize(f, C.int(reason))
}

func downstreamInfo(f unsafe.Pointer, infoType int) string {
	var info string
	C.envoyGoFilterDownstreamInfo(f, C.int(infoType), unsafe.Pointer(&info))
	return strings.Clone(info)
}

func upstreamConnect(libraryID string, addr string, connID uint64) unsafe.Pointer {
	return unsafe.Pointer(C.envoyGoFilterUpstreamConnect(unsafe.Pointer(&libraryID), unsafe.Pointer(&addr), C.uint64_t(connID)))
}

func upstreamEnableHalfClose(f unsafe.Pointer, enable int) {
	C.envoyGoFilterUpstreamConnEnableHalfClose(f, C.int(enable))
}

func upstreamWrite(f unsafe.Pointer, p unsafe.Pointer, n int, end int) {
	C.envoyGoFilterUpstreamWrite(f, p, C.int(n), C.int(end))
}

func upstreamClose(f unsafe.Pointer, closeType int) {
	C.envoyGoFilterUpstreamClose(f, C.int(closeType))
}

func upstreamFinalize(f unsafe.Pointer, reason int) {
	C.envoyGoFilterUpstreamFinalize(f, C.int(reason))
}

func upstreamInfo(f unsafe.Pointer, infoType int) string {
	var info string
	C.envoyGoFilterUpstreamInfo(f, C.int(infoType), unsafe.Pointer(&info))
	return strings.Clone(info)
}

// getFilterState may have to wait for Envoy's worker: Envoy then answers
// through envoyGoFilterOnSemaDec.
func getFilterState(cb *connectionCallback, key string) string {
	var value string
	cb.mutex.Lock()
	defer cb.mutex.Unlock()
	cb.sema.Add(1)
	if C.envoyGoFilterGetFilterState(cb.wrapper, unsafe.Pointer(&key), unsafe.Pointer(&value)) == C.CAPIYield {
		atomic.AddInt32(&cb.waitingOnEnvoy, 1)
		cb.sema.Wait()
	} else {
		cb.sema.Done()
	}
	return strings.Clone(value)
}

func setFilterState(cb *connectionCallback, key, value string, stateType api.StateType, lifeSpan api.LifeSpan, sharing api.StreamSharing) {
	C.envoyGoFilterSetFilterState(cb.wrapper, unsafe.Pointer(&key), unsafe.Pointer(&value), C.int(stateType), C.int(lifeSpan), C.int(sharing))
}
