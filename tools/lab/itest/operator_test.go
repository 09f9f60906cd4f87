package itest

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/firmware/cli"
)

// vigil runs a vigil command in this process, as host's operator would
// (its API socket, its paths to the datastores).
func (c *cluster) vigil(host string, args ...string) (string, int) {
	c.t.Helper()
	dir := filepath.Join(c.l.Dir(), host)
	switch args[0] {
	case "vm":
		if args[1] == "stop" || args[1] == "start" || args[1] == "move" {
			args = append(args, "--api", filepath.Join(dir, "api.sock"))
		} else {
			args = append(args, "--config", filepath.Join(c.l.Dir(), "cluster.toml"),
				"--datastore", "ds0="+filepath.Join(dir, "store", "ds0"), "--datastore", "ds1="+filepath.Join(dir, "ds1"))
		}
	case "maintenance":
		args = append(args, "--api", filepath.Join(dir, "api.sock"))
	}
	var out bytes.Buffer
	code := cli.Run(args, &out, &out)
	return out.String(), code
}

// TestOperatorVMs: an operator stops a VM on the host that runs it (a stop
// asked elsewhere is refused, naming the way); it stays stopped, `vigil vm
// list` says so, and a start has the coordinator place it again; a move
// starts it on the host named. A host put in maintenance gives its VMs
// away and takes them again after.
func TestOperatorVMs(t *testing.T) {
	c := newCluster(t, 3, 2)
	owner := c.running(nil)["vm2"]
	other := "h1"
	if owner == "h1" {
		other = "h3"
	}
	if out, code := c.vigil(other, "vm", "stop", "vm2"); code != 1 || !strings.Contains(out, "does not run on this host") {
		t.Errorf("a stop on %s, where vm2 does not run: %d %q", other, code, out)
	}
	if out, code := c.vigil(owner, "vm", "stop", "vm2"); code != 0 || !strings.Contains(out, "vm2 is stopping") {
		t.Fatalf("vm stop: %d %q", code, out)
	}
	c.waitFor("vm2 stopped", 30*time.Second, func() bool { return c.running(nil)["vm2"] == "" })
	hold(5 * time.Second) // the coordinator restarts none of it meanwhile
	if where := c.running(nil)["vm2"]; where != "" {
		t.Fatalf("vm2 runs again on %s after an operator's stop", where)
	}
	out, code := c.vigil(other, "vm", "list")
	if code != 0 || !regexpLine(out, `vm2\s+process\s+`+owner+`\s+released\s+\d+\s+stopped`) {
		t.Errorf("vm list: %d\n%s", code, out)
	}
	if out, code := c.vigil(owner, "vm", "start", "vm2"); code != 0 || !strings.Contains(out, "start asked") {
		t.Fatalf("vm start: %d %q", code, out)
	}
	c.waitFor("vm2 running again", 30*time.Second, func() bool { return c.running(nil)["vm2"] != "" })
	out, code = c.vigil(other, "vm", "show", "vm2")
	if code != 0 || !regexpLine(out, `VM vm2: (starting|running) on h\d`) || !strings.Contains(out, "1 vCPU, 1GiB, priority medium, driver process") {
		t.Errorf("vm show: %d\n%s", code, out)
	}

	// Moved to a host the operator names: stopped where it runs, started
	// there.
	from := c.running(nil)["vm2"]
	to := "h1"
	if from == "h1" {
		to = "h2"
	}
	if out, code := c.vigil(to, "vm", "move", "vm2", to); code != 1 || !strings.Contains(out, "does not run on this host: move it on the host that runs it") {
		t.Errorf("a move asked on %s: %d %q", to, code, out)
	}
	if out, code := c.vigil(from, "vm", "move", "vm2", to); code != 0 || !strings.Contains(out, "the coordinator starts it on "+to) {
		t.Fatalf("vm move: %d %q", code, out)
	}
	c.waitFor("vm2 running on "+to, 30*time.Second, func() bool { return c.running(nil)["vm2"] == to })
	if moved := c.logged(time.Time{}, "assign", "restart"); len(moved) == 0 || !strings.Contains(toString(moved[len(moved)-1].Attrs["detail"]), "moved to "+to+" by an operator") {
		t.Errorf("the move's assignment: %+v", moved)
	}

	mine := c.vmsOn("h3")
	if out, code := c.vigil("h2", "maintenance", "enter", "h3"); code != 1 || !strings.Contains(out, "this is h2, not h3: run it on h3") {
		t.Errorf("maintenance of h3 asked on h2: %d %q", code, out)
	}
	if out, code := c.vigil("h3", "maintenance", "enter", "h3"); code != 0 || !strings.Contains(out, "entering maintenance") {
		t.Fatalf("maintenance enter: %d %q", code, out)
	}
	c.waitFor("h3's VMs moved away", 30*time.Second, func() bool {
		return len(c.vmsOn("h3")) == 0 && len(c.running(nil)) == 6
	})
	t.Logf("h3 gave away %v", mine)
	if out, code := c.vigil("h3", "maintenance", "exit"); code != 0 || !strings.Contains(out, "maintenance over") {
		t.Fatalf("maintenance exit: %d %q", code, out)
	}
	c.onlyOnce(6)
}

// regexpLine reports whether a line of out matches re.
func regexpLine(out, re string) bool {
	return regexp.MustCompile("(?m)^" + re).MatchString(out)
}
