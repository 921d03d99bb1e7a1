package shim

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

// addr is p's address as Envoy passes addresses: an integer.
func addr[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

// TestView: one slice is handed over as Envoy's memory itself, several are
// gathered into one exact copy, none is nil.
func TestView(t *testing.T) {
	a, b := []byte("hello, "), []byte("world")
	one := [1][2]uint64{{addr(&a[0]), uint64(len(a))}}
	got := view(uint64(len(a)), addr(&one), 1)
	if string(got) != "hello, " || &got[0] != &a[0] {
		t.Errorf("one slice: %q at %p, want %q at %p (no copy)", got, &got[0], a, &a[0])
	}

	two := [2][2]uint64{{addr(&a[0]), uint64(len(a))}, {addr(&b[0]), uint64(len(b))}}
	got = view(uint64(len(a)+len(b)), addr(&two), 2)
	if !bytes.Equal(got, []byte("hello, world")) || cap(got) != len(got) {
		t.Errorf("two slices: %q (cap %d), want %q in an exact buffer", got, cap(got), "hello, world")
	}
	if &got[0] == &a[0] {
		t.Error("two slices: the result aliases the first slice")
	}

	if got := view(0, 0, 0); got != nil {
		t.Errorf("no slices: %q, want nil", got)
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}

// TestViewAllocs: a single slice costs no allocation (the SDK's shim made a
// copy of every read and write).
func TestViewAllocs(t *testing.T) {
	a := make([]byte, 512)
	one := [1][2]uint64{{addr(&a[0]), uint64(len(a))}}
	if n := testing.AllocsPerRun(100, func() { _ = view(512, addr(&one), 1) }); n != 0 {
		t.Errorf("view of one slice: %v allocations, want 0", n)
	}
}

// BenchmarkView: what handing Envoy's bytes to the filter costs, against
// the SDK shim's way (append each slice to a new slice), for a typical RPC
// frame and for one of Envoy's 16 KiB read slices.
func BenchmarkView(b *testing.B) {
	for _, size := range []int{256, 16 << 10} {
		data := make([]byte, size)
		one := [1][2]uint64{{addr(&data[0]), uint64(size)}}
		b.Run(fmt.Sprintf("sdk-copy/%d", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var buf []byte
				buf = append(buf, cBytes(one[0][0], one[0][1])...)
				sink = buf
			}
		})
		b.Run(fmt.Sprintf("view/%d", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = view(uint64(size), addr(&one), 1)
			}
		})
		runtime.KeepAlive(data)
	}
}

var sink []byte

// upstreamRec is an api.UpstreamFilter that records what reaches it.
type upstreamRec struct {
	ready  api.ConnectionCallback
	data   []string
	events []api.ConnectionEvent
}

func (u *upstreamRec) OnPoolReady(cb api.ConnectionCallback)       { u.ready = cb }
func (u *upstreamRec) OnPoolFailure(api.PoolFailureReason, string) {}
func (u *upstreamRec) OnData(b []byte, _ bool)                     { u.data = append(u.data, string(b)) }
func (u *upstreamRec) OnEvent(e api.ConnectionEvent)               { u.events = append(u.events, e) }
func (u *upstreamRec) wrapper() unsafe.Pointer                     { return unsafe.Pointer(u) }
func (u *upstreamRec) String() string                              { return fmt.Sprint(u.data, u.events) }

// TestUpstreamLifecycle: a connection id's filter moves to its Envoy
// wrapper when ready, gets the wrapper's data until it closes, and a
// callback after that (or for a wrapper never seen) is ignored, where the
// SDK's shim dereferenced nil and took Envoy down.
func TestUpstreamLifecycle(t *testing.T) {
	u := &upstreamRec{}
	w := u.wrapper() // any address stands for Envoy's wrapper
	upstreamIDs.Store(uint64(1<<40), u)
	envoyGoFilterOnUpstreamConnectionReady(w, 1<<40)
	if u.ready == nil {
		t.Fatal("OnPoolReady was not called")
	}
	if _, still := upstreamIDs.Load(uint64(1 << 40)); still {
		t.Error("the connection id is still registered once connected")
	}
	if got := u.ready.StreamInfo().FilterState().GetString("k"); got != "" {
		t.Errorf("an upstream connection's filter state holds %q, want nothing", got)
	}

	b := []byte("frame")
	one := [1][2]uint64{{addr(&b[0]), uint64(len(b))}}
	envoyGoFilterOnUpstreamData(w, uint64(len(b)), addr(&one), 1, 0)
	envoyGoFilterOnUpstreamEvent(w, int(api.RemoteClose))
	envoyGoFilterOnUpstreamData(w, uint64(len(b)), addr(&one), 1, 0) // after the close
	envoyGoFilterOnUpstreamEvent(w, int(api.RemoteClose))
	if u.String() != fmt.Sprint([]string{"frame"}, []api.ConnectionEvent{api.RemoteClose}) {
		t.Errorf("the filter saw %v, want one frame then one close", u)
	}
	envoyGoFilterOnUpstreamConnectionReady(w, 1<<41) // an id never registered
	envoyGoFilterOnUpstreamConnectionFailure(w, 0, 1<<41)
	runtime.KeepAlive(b)
}

// TestUnknownDownstream: callbacks for a downstream wrapper the shim does
// not know return without reaching any filter.
func TestUnknownDownstream(t *testing.T) {
	w := unsafe.Pointer(new(int))
	b := []byte("x")
	one := [1][2]uint64{{addr(&b[0]), 1}}
	if st := envoyGoFilterOnDownstreamData(w, 1, addr(&one), 1, 0); st != uint64(api.NetworkFilterStopIteration) {
		t.Errorf("data for an unknown connection: status %d, want StopIteration", st)
	}
	if st := envoyGoFilterOnDownstreamWrite(w, 1, addr(&one), 1, 0); st != uint64(api.NetworkFilterContinue) {
		t.Errorf("a write on an unknown connection: status %d, want Continue", st)
	}
	envoyGoFilterOnDownstreamEvent(w, int(api.RemoteClose))
	envoyGoFilterOnSemaDec(w)
	if st := envoyGoFilterOnDownstreamConnection(w, addr(&b[0]), 1, 1<<40); st != uint64(api.NetworkFilterStopIteration) {
		t.Errorf("a connection for an unknown config: status %d, want StopIteration", st)
	}
	runtime.KeepAlive(b)
}
