package harness

import (
	"testing"
	"time"
)

// WaitFor polls cond every 20 ms until it holds or timeout passes, and
// reports whether it held. Tests wait for the event that produces a log
// line or a counter before asserting on it: on a loaded machine a process's
// output reaches the test some time after the process wrote it.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
