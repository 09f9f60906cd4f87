package itest

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/firmware/config"
)

// fenceAgent runs 'vigil fence-agent' inside host's namespace with the
// option lines on its standard input, as Pacemaker's fencer does, and
// returns its exit status and output.
func (c *cluster) fenceAgent(host string, lines ...string) (int, string) {
	c.t.Helper()
	cmd := exec.Command(exe, "fence-agent")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := c.l.Start(host, cmd); err != nil {
		c.t.Fatal(err)
	}
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return code, out.String()
}

// TestFenceAgent drives 'vigil fence-agent' the way Pacemaker's
// stonith_admin does (metadata, monitor, status, off, status, on) against
// h2's BMC from h1: off really powers h2 off, the cluster restarts its VMs
// on the BMC's proof, and on brings h2 back.
func TestFenceAgent(t *testing.T) {
	c := newCluster(t, 3, 2)
	cfg, err := config.Load(filepath.Join(c.l.Dir(), "cluster.toml"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := cfg.HostByName("h2")
	cred, _, err := ipmi.LoadCredentials(cfg.Hosts[h].BMCCredentials)
	if err != nil {
		t.Fatal(err)
	}
	addr := config.BMCAddr(cfg.Hosts[h].BMC)
	ip, port, _ := strings.Cut(addr, ":")
	opts := []string{"ip=" + ip, "ipport=" + port, "username=" + cred.User, "password=" + cred.Password, "lanplus=1"}
	agent := func(action string) (int, string) {
		return c.fenceAgent("h1", append([]string{"action=" + action}, opts...)...)
	}

	if code, out := c.fenceAgent("h1", "action=metadata"); code != 0 || !strings.Contains(out, "<resource-agent") {
		t.Fatalf("metadata: exit %d\n%s", code, out)
	}
	if code, out := agent("monitor"); code != 0 {
		t.Fatalf("monitor: exit %d\n%s", code, out)
	}
	if code, out := agent("status"); code != 0 {
		t.Fatalf("status of a running host: exit %d, want 0 (on)\n%s", code, out)
	}
	mine := c.vmsOn("h2")
	t0 := time.Now()
	if code, out := agent("off"); code != 0 {
		t.Fatalf("off: exit %d\n%s", code, out)
	}
	if _, err := c.status("h2"); err == nil {
		t.Error("h2's agent still answers after the fence agent powered it off")
	}
	for vm, ps := range c.vmProcesses() {
		for _, p := range ps {
			if p.Host == "h2" {
				t.Errorf("%s still runs on h2 (PID %d) after the fence agent's off", vm, p.PID)
			}
		}
	}
	if code, out := agent("status"); code != 2 {
		t.Errorf("status of a fenced host: exit %d, want 2 (off)\n%s", code, out)
	}
	c.waitFor("h2's VMs running on h1 and h3", 30*time.Second, func() bool {
		return len(c.running(map[string]bool{"h2": true})) == 6
	})
	c.movedWith(t0, "h2", mine, "bmc-off")
	if code, out := agent("on"); code != 0 {
		t.Fatalf("on: exit %d\n%s", code, out)
	}
	c.waitFor("h2 back and healthy", 30*time.Second, func() bool { return c.selfIs("h2", "healthy") })
	c.onlyOnce(6)
	if code, out := c.fenceAgent("h1", append([]string{"action=status", "password=wrong" + fmt.Sprint(time.Now().UnixNano())}, opts[:3]...)...); code != 1 {
		t.Errorf("status with a wrong password: exit %d, want 1\n%s", code, out)
	}
}
