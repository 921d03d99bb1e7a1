package shim

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"unsafe"
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
