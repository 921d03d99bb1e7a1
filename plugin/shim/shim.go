// Copyright The Envoy Authors and metaproxy authors. Apache License 2.0.
// Derived from Envoy v1.36.2, contrib/golang/filters/network/source/go/pkg/network.

// Package shim is the plugin's side of the C ABI of Envoy's golang network
// filter: the ten functions Envoy calls (envoyGoFilterOn*), and the Go
// objects behind the api.ConnectionCallback they hand to filters.
//
// It is Envoy's own shim (the SDK package network) with one change: data
// reaches the filter without a copy. The SDK's shim appends every read, and
// every write that passes the write filter, to a new Go slice, so each
// call allocated and copied three buffers; here a read or write that
// Envoy holds in one slice is handed over as a view of Envoy's memory,
// valid during the callback only (all the plugin's filters need: the
// engine's OnData keeps nothing of b past the call), and only one made of
// several slices is gathered into one exact allocation. Filter and
// connection semantics are the SDK's, except that a callback for a
// connection the shim does not know is ignored (the SDK dereferenced nil,
// which kills Envoy).
package shim

import "C" // for the //export lines below

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

// FilterFactory makes the filter of each new downstream connection.
type FilterFactory interface {
	CreateFilter(cb api.ConnectionCallback) api.DownstreamFilter
}

// ConfigFactory turns a parsed config into the FilterFactory of the
// connections that use it.
type ConfigFactory interface {
	CreateFactoryFromConfig(config any) FilterFactory
}

// ConfigParser parses the filter's plugin_config.
type ConfigParser interface {
	ParseConfig(any *anypb.Any) any
}

var (
	factories sync.Map // plugin name -> ConfigFactory
	parser    ConfigParser
	configs   sync.Map // config id -> parsed config
	configIDs atomic.Uint64
	libraryID string

	downstreams sync.Map // wrapper -> *downstreamFilter
	upstreamIDs sync.Map // connection id -> api.UpstreamFilter, until connected
	upstreams   sync.Map // wrapper -> api.UpstreamFilter
	upstreamSeq atomic.Uint64
)

// RegisterConfigFactory registers the factory of the plugin called name.
func RegisterConfigFactory(name string, f ConfigFactory) { factories.Store(name, f) }

// RegisterConfigParser sets the parser of every plugin_config.
func RegisterConfigParser(p ConfigParser) { parser = p }

type downstreamFilter struct {
	filter api.DownstreamFilter
	cb     *connectionCallback
}

// upstreamConn keeps the filter of an upstream connection; its finalizer
// tells Envoy to free its side once Go lets go of it, whatever cycles the
// filter is part of.
type upstreamConn struct {
	api.UpstreamFilter
	finalizer *int
}

// CreateUpstreamConn asks Envoy to connect to addr (a literal ip:port)
// through the plainText cluster; the outcome reaches filter.
func CreateUpstreamConn(addr string, filter api.UpstreamFilter) {
	conn := &upstreamConn{UpstreamFilter: filter, finalizer: new(int)}
	id := upstreamSeq.Add(1)
	upstreamIDs.Store(id, conn)
	h := upstreamConnect(libraryID, addr, id)
	runtime.SetFinalizer(conn.finalizer, func(*int) { upstreamFinalize(h, int(api.NormalFinalize)) })
}

// view returns the n slices at ptr (pairs of address and length) as one
// byte slice: Envoy's own memory when n is 1, else a copy.
func view(size, ptr uint64, n int) []byte {
	slice := func(i int) []byte {
		p := (*[2]uint64)(unsafe.Add(cptr(ptr), i*16))
		return cBytes(p[0], p[1])
	}
	switch n {
	case 0:
		return nil
	case 1:
		return slice(0)
	}
	buf := make([]byte, 0, size)
	for i := range n {
		buf = append(buf, slice(i)...)
	}
	return buf
}

// cptr is the C address p as a pointer (its bits reinterpreted, which
// is what a C address handed over as an integer needs).
func cptr(p uint64) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// cBytes is the n bytes at p in C memory, not copied.
func cBytes(p, n uint64) []byte { return unsafe.Slice((*byte)(cptr(p)), n) }

//export envoyGoFilterOnNetworkFilterConfig
func envoyGoFilterOnNetworkFilterConfig(libraryIDPtr uint64, libraryIDLen uint64, configPtr uint64, configLen uint64) uint64 {
	var raw anypb.Any
	_ = proto.Unmarshal(cBytes(configPtr, configLen), &raw) // as the SDK: the parser sees what decoded
	libraryID = strings.Clone(string(cBytes(libraryIDPtr, libraryIDLen)))
	var cfg any = &raw
	if parser != nil {
		cfg = parser.ParseConfig(&raw)
	}
	id := configIDs.Add(1)
	configs.Store(id, cfg)
	return id
}

//export envoyGoFilterOnDownstreamConnection
func envoyGoFilterOnDownstreamConnection(wrapper unsafe.Pointer, pluginNamePtr uint64, pluginNameLen uint64, configID uint64) uint64 {
	cfg, ok := configs.Load(configID)
	if !ok {
		return uint64(api.NetworkFilterStopIteration)
	}
	f, ok := factories.Load(string(cBytes(pluginNamePtr, pluginNameLen)))
	if !ok {
		return uint64(api.NetworkFilterStopIteration)
	}
	cb := newCallback(wrapper, true)
	filter := f.(ConfigFactory).CreateFactoryFromConfig(cfg).CreateFilter(cb)
	runtime.SetFinalizer(filter, func(api.DownstreamFilter) { downstreamFinalize(wrapper, int(api.NormalFinalize)) })
	downstreams.Store(uintptr(wrapper), &downstreamFilter{filter: filter, cb: cb})
	return uint64(filter.OnNewConnection())
}

func downstream(wrapper unsafe.Pointer) *downstreamFilter {
	if v, ok := downstreams.Load(uintptr(wrapper)); ok {
		return v.(*downstreamFilter)
	}
	return nil
}

//export envoyGoFilterOnDownstreamData
func envoyGoFilterOnDownstreamData(wrapper unsafe.Pointer, dataSize uint64, dataPtr uint64, sliceNum int, endOfStream int) uint64 {
	d := downstream(wrapper)
	if d == nil {
		return uint64(api.NetworkFilterStopIteration)
	}
	return uint64(d.filter.OnData(view(dataSize, dataPtr, sliceNum), endOfStream == 1))
}

//export envoyGoFilterOnDownstreamEvent
func envoyGoFilterOnDownstreamEvent(wrapper unsafe.Pointer, event int) {
	d := downstream(wrapper)
	if d == nil {
		return
	}
	e := api.ConnectionEvent(event)
	d.filter.OnEvent(e)
	if e == api.LocalClose || e == api.RemoteClose {
		downstreams.Delete(uintptr(wrapper))
	}
}

//export envoyGoFilterOnDownstreamWrite
func envoyGoFilterOnDownstreamWrite(wrapper unsafe.Pointer, dataSize uint64, dataPtr uint64, sliceNum int, endOfStream int) uint64 {
	d := downstream(wrapper)
	if d == nil {
		return uint64(api.NetworkFilterContinue)
	}
	return uint64(d.filter.OnWrite(view(dataSize, dataPtr, sliceNum), endOfStream == 1))
}

//export envoyGoFilterOnSemaDec
func envoyGoFilterOnSemaDec(wrapper unsafe.Pointer) {
	if d := downstream(wrapper); d != nil && atomic.CompareAndSwapInt32(&d.cb.waitingOnEnvoy, 1, 0) {
		d.cb.sema.Done()
	}
}

//export envoyGoFilterOnUpstreamConnectionReady
func envoyGoFilterOnUpstreamConnectionReady(wrapper unsafe.Pointer, connID uint64) {
	v, ok := upstreamIDs.LoadAndDelete(connID)
	if !ok {
		return
	}
	filter := v.(api.UpstreamFilter)
	upstreams.Store(uintptr(wrapper), filter)
	filter.OnPoolReady(newCallback(wrapper, false))
}

//export envoyGoFilterOnUpstreamConnectionFailure
func envoyGoFilterOnUpstreamConnectionFailure(wrapper unsafe.Pointer, reason int, connID uint64) {
	if v, ok := upstreamIDs.LoadAndDelete(connID); ok {
		v.(api.UpstreamFilter).OnPoolFailure(api.PoolFailureReason(reason), "")
	}
}

func upstream(wrapper unsafe.Pointer) api.UpstreamFilter {
	if v, ok := upstreams.Load(uintptr(wrapper)); ok {
		return v.(api.UpstreamFilter)
	}
	return nil
}

//export envoyGoFilterOnUpstreamData
func envoyGoFilterOnUpstreamData(wrapper unsafe.Pointer, dataSize uint64, dataPtr uint64, sliceNum int, endOfStream int) {
	if u := upstream(wrapper); u != nil {
		u.OnData(view(dataSize, dataPtr, sliceNum), endOfStream == 1)
	}
}

//export envoyGoFilterOnUpstreamEvent
func envoyGoFilterOnUpstreamEvent(wrapper unsafe.Pointer, event int) {
	u := upstream(wrapper)
	if u == nil {
		return
	}
	e := api.ConnectionEvent(event)
	u.OnEvent(e)
	if e == api.LocalClose || e == api.RemoteClose {
		upstreams.Delete(uintptr(wrapper))
	}
}
