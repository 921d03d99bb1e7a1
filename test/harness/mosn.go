package harness

import "testing"

// MOSN (mosn.io/mosn, the Go L7 proxy from Ant Group) as a peer of the
// side-by-side benchmark: built from test/peers/mosn, its own module, so
// that MOSN's dependencies stay out of the test module (its README says
// which version and why).

// MOSNDir is the directory, relative to the test module, of the MOSN
// peer's module.
const MOSNDir = "peers/mosn"

// BuildMOSN builds test/peers/mosn once per test process and returns the
// binary's path. Unlike BuildTRPCPeer it does not fail t: a MOSN that does
// not build here (no module proxy, a Go release it does not build with)
// is a row the benchmark skips, with the error as the reason.
func BuildMOSN(t testing.TB) (string, error) {
	t.Helper()
	b := moduleDirOnce(t, MOSNDir, "mosn")
	return b.bin, b.err
}
