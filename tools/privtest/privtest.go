// Package privtest gates tests that need root (namespaces, eBPF, cgroups,
// raw sockets): they skip cleanly for an ordinary user, and fail instead of
// skipping when VIGIL_REQUIRE_PRIV=1, as CI sets it, so that a machine that
// should run them cannot pass by skipping.
//
//	func TestLab(t *testing.T) {
//		privtest.Require(t)
//		...
//	}
package privtest

import (
	"os"
	"testing"
)

// Env is the variable that turns skips into failures.
const Env = "VIGIL_REQUIRE_PRIV"

// Required reports whether privileged tests must run here.
func Required() bool { return os.Getenv(Env) == "1" }

// Require skips t unless it runs as root; under VIGIL_REQUIRE_PRIV=1 it
// fails t instead.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	Unavailable(t, "needs root")
}

// Unavailable skips t, or fails it under VIGIL_REQUIRE_PRIV=1, for a
// privileged facility that is missing: why says which.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s, and %s=1 requires privileged tests to run", why, Env)
	}
	t.Skip(why)
}
