package filter

import (
	"fmt"
	"sync"
)

// MaxSlots is the number of per-request state slots every Exchange has.
const MaxSlots = 16

// Slot is a typed place in every Exchange for one kind of per-request state
// that filters share or keep between the request and response paths: a
// trace span, the caller's principal, a rate-limit descriptor. Slots are
// made once (in a package's var block or init) and cost nothing per
// request: the state lives in the Exchange, and a pointer-shaped T (a
// pointer, map or chan) is stored without allocating.
type Slot[T any] struct {
	i    int
	name string
}

var (
	slotMu    sync.Mutex
	slotNames []string
)

// NewSlot reserves a slot. name says what it holds, for errors; making more
// than MaxSlots slots panics.
func NewSlot[T any](name string) Slot[T] {
	slotMu.Lock()
	defer slotMu.Unlock()
	if len(slotNames) == MaxSlots {
		panic(fmt.Sprintf("filter: slot %q: all %d exchange slots are taken (%v)", name, MaxSlots, slotNames))
	}
	slotNames = append(slotNames, name)
	return Slot[T]{i: len(slotNames) - 1, name: name}
}

// Get returns the value stored in x, and whether one is.
func (s Slot[T]) Get(x *Exchange) (v T, ok bool) {
	v, ok = x.slots[s.i].(T)
	return v, ok
}

// Set stores v in x.
func (s Slot[T]) Set(x *Exchange, v T) { x.slots[s.i] = v }

// Name returns the slot's name.
func (s Slot[T]) Name() string { return s.name }
