//go:build cgo

package main

import (
	"os"
	"runtime"
)

// extraProcs is how many Ps the plugin's Go runtime gets beyond its
// default (the CPUs, or the container's CPU limit).
//
// In Envoy every callback runs on an Envoy worker thread that enters Go
// for the callback and leaves it between callbacks, which the runtime
// counts as a system call holding its P. With GOMAXPROCS at the CPU count
// the workers hold every P, so no P is ever idle: the runtime's monitor
// thread then takes the P back from a worker after 20 µs and hands it
// around, and keeps waking every 20 µs to do it again; the worker's next
// callback must find a P anew. Measured in the ABI host on 2 CPUs
// (bench/README.md), that churn was a third of the plugin's CPU per call.
// With a few Ps to spare an idle P always exists, the monitor leaves a
// worker its P, and the next callback takes it back at once.
const extraProcs = 2

// setProcs raises GOMAXPROCS by extraProcs unless the user set GOMAXPROCS
// for Envoy's process.
func setProcs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + extraProcs)
}
