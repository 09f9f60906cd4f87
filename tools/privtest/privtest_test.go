package privtest

import (
	"os"
	"os/exec"
	"testing"
)

// TestUnavailable runs Unavailable in a child test process with and
// without the variable and checks that it skips, then fails.
func TestUnavailable(t *testing.T) {
	if os.Getenv("PRIVTEST_CHILD") == "1" {
		Unavailable(t, "the facility is missing")
		return
	}
	for _, c := range []struct {
		req  string
		fail bool
	}{{"", false}, {"1", true}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestUnavailable$", "-test.v")
		cmd.Env = append(os.Environ(), "PRIVTEST_CHILD=1", Env+"="+c.req)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != c.fail {
			t.Errorf("%s=%q: failed=%v, want %v\n%s", Env, c.req, failed, c.fail, out)
		}
	}
}
