package filter

import (
	"sync"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

type resumeRec struct{ n int }

func (r *resumeRec) Resume(*Exchange) { r.n++ }

type both struct {
	Func
	resp, done *int
}

func (b both) OnResponse(*Exchange) { *b.resp++ }
func (b both) OnComplete(*Exchange) { *b.done++ }

func TestChainInlineResumeGoesOn(t *testing.T) {
	ran := 0
	c := NewChain([]Named{
		{"inline", Func(func(x *Exchange) Status { x.Resume(); return Pause })},
		{"next", Func(func(x *Exchange) Status { ran++; return Continue })},
	}, nil)
	var x Exchange
	r := &resumeRec{}
	c.Start(&x, r)
	if st := c.Run(&x); st != Continue || ran != 1 || r.n != 0 {
		t.Fatalf("status %v, next ran %d, resumer called %d", st, ran, r.n)
	}
}

func TestChainPauseThenResume(t *testing.T) {
	var paused *Exchange
	c := NewChain([]Named{{"p", Func(func(x *Exchange) Status { paused = x; return Pause })}}, nil)
	var x Exchange
	r := &resumeRec{}
	c.Start(&x, r)
	if st := c.Run(&x); st != Pause || !x.Paused() {
		t.Fatalf("status %v paused %v", st, x.Paused())
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); paused.Resume() }()
	wg.Wait()
	paused.Resume() // a second Resume is ignored
	if r.n != 1 {
		t.Fatalf("resumer called %d times", r.n)
	}
	if st := c.Run(&x); st != Continue {
		t.Fatalf("after resume: %v", st)
	}
}

func TestChainPanicIsTheExchangesError(t *testing.T) {
	var got string
	resp, done := 0, 0
	c := NewChain([]Named{
		{"rd", both{Func(func(*Exchange) Status { return Continue }), &resp, &done}},
		{"boom", Func(func(*Exchange) Status { panic("x") })},
	}, func(name string, p any) { got = name })
	var x Exchange
	c.Start(&x, &resumeRec{})
	if st := c.Run(&x); st != Stop || x.LocalReply == nil || x.LocalReply.Type != codec.ErrInternal || got != "boom" {
		t.Fatalf("status %v reply %v panic from %q", st, x.LocalReply, got)
	}
	c.Respond(&x)
	c.Complete(&x)
	if resp != 1 || done != 1 {
		t.Fatalf("response filter ran %d, completer %d", resp, done)
	}
}

func TestChainStopWithoutReply(t *testing.T) {
	c := NewChain([]Named{{"s", Func(func(*Exchange) Status { return Stop })}}, nil)
	var x Exchange
	c.Start(&x, &resumeRec{})
	if st := c.Run(&x); st != Stop || x.LocalReply == nil {
		t.Fatalf("%v %v", st, x.LocalReply)
	}
}

type ptr struct{ v int }

var testSlot = NewSlot[*ptr]("test")

func TestSlotsDoNotAllocate(t *testing.T) {
	var x Exchange
	p := &ptr{7}
	if n := testing.AllocsPerRun(100, func() {
		testSlot.Set(&x, p)
		if v, ok := testSlot.Get(&x); !ok || v.v != 7 {
			t.Fatal("slot lost its value")
		}
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
	x.Reset()
	if _, ok := testSlot.Get(&x); ok {
		t.Fatal("Reset kept the slot")
	}
}
