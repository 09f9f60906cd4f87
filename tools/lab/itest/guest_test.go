package itest

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/tools/lab"
	"github.com/vigil-ha/vigil/tools/lab/demo"
	"github.com/vigil-ha/vigil/tools/privtest"
	"github.com/vigil-ha/vigil/tools/qemu"
)

var (
	imageOnce sync.Once
	imageFix  *qemu.Fixture
	imageSkip string
	imageErr  error
)

// guestImage returns vigil's firmware image, built once per test binary,
// for VMs that boot it as their guest.
func guestImage(t *testing.T) *qemu.Fixture {
	t.Helper()
	privtest.Require(t)
	if _, err := exec.LookPath(qemu.DefaultBinary); err != nil {
		privtest.Unavailable(t, qemu.DefaultBinary+" is not installed (make qemu-deps installs it)")
	}
	imageOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		imageFix, imageSkip, imageErr = qemu.BuildFixture(ctx)
	})
	if imageSkip != "" {
		privtest.Unavailable(t, imageSkip)
	}
	if imageErr != nil {
		t.Fatalf("building the image: %v", imageErr)
	}
	return imageFix
}

// The guest file of TestGuestApplication's VM: an application the guest
// agent runs, which crashes every 3 s.
const crashingGuest = `heartbeat = "250ms"

[[apps]]
name = "app"
run = ["/bin/vigil", "lab-vm", "--name", "app", "--cpu", "1", "--memory-mib", "1", "--exit-after", "3s"]
`

// Its policy on the host: restarted in the guest twice in 10 minutes, then
// failed over.
const crashingPolicy = `guest_timeout = "10s"
guest_boot_grace = "90s"

[[vms.apps]]
name = "app"
max_restarts = 2
restart_window = "10m"
then = "failover"
`

// TestGuestApplication: a QEMU VM boots vigil's image as its guest, whose
// guest agent runs an application that crashes every 3 s. Its host hears
// the guest, sees each crash in the next heartbeat and has the guest
// restart the application, twice; the third crash spends the budget and
// the VM fails over to another host: stopped through its ACPI power
// button, which the guest obeys, it boots on another host and its guest
// is heard again. Its disk is never open on two hosts.
func TestGuestApplication(t *testing.T) {
	img := guestImage(t)
	t0 := time.Now()
	c := newClusterWith(t, lab.Options{Hosts: 3, Links: 2, VMs: 1, QEMUKernel: img.Kernel.Vmlinux, QEMUInitrd: img.Initrd,
		GuestConfig: crashingGuest, VMPolicy: crashingPolicy})
	first := c.vmsOn("h1")
	if !slices.Equal(first, []string{"vm1"}) {
		t.Fatalf("h1 runs %v; want vm1", first)
	}
	c.waitFor("vm1's guest heard on h1", 90*time.Second, func() bool {
		c.oneDiskHolder(0)
		return len(c.loggedOn("h1", t0, "guest", "guest agent says hello")) > 0
	})
	c.waitFor("vm1 failed over", 90*time.Second, func() bool {
		c.oneDiskHolder(0)
		return len(c.loggedOn("h1", t0, "guest", "failing the VM over")) > 0
	})
	restarts := c.loggedOn("h1", t0, "guest", "restarting a guest application")
	if len(restarts) != 2 {
		t.Errorf("%d restarts asked; want 2 before the failover", len(restarts))
	}
	// The time from the host seeing each crash to the application
	// running again in the guest.
	down := c.loggedOn("h1", t0, "guest", "guest application not running")
	up := c.loggedOn("h1", t0, "guest", "guest application running")
	var lat []time.Duration
	for _, r := range restarts {
		var seen time.Time // the crash this restart answers
		for _, d := range down {
			if !d.Time.After(r.Time) {
				seen = d.Time
			}
		}
		for _, u := range up {
			if u.Time.After(r.Time) && !seen.IsZero() {
				lat = append(lat, u.Time.Sub(seen))
				break
			}
		}
	}
	if len(lat) != 2 {
		t.Errorf("%d crashes came back (%d seen down, %d up); want 2", len(lat), len(down), len(up))
	}
	slices.Sort(lat)
	t.Logf("guest application crash to running again: %v (drivers/guest's BenchmarkAppRestart measures it)", lat)
	c.waitFor("vm1 running on another host", 60*time.Second, func() bool {
		c.oneDiskHolder(0)
		where := c.running(nil)
		return where["vm1"] != "" && where["vm1"] != "h1"
	})
	moved := c.logged(t0, "assign", "restart")
	if len(moved) == 0 || moved[0].Attrs["from"] != "h1" || !strings.Contains(toString(moved[0].Attrs["detail"]), "app-failed") {
		t.Errorf("the restart elsewhere: %+v; want from h1 after app-failed", moved)
	}
	// The VM was stopped through its ACPI power button, which the guest
	// obeyed: it powered off by itself rather than being killed.
	shut := c.loggedOn("h1", t0, "vm", "QEMU event SHUTDOWN")
	if len(shut) == 0 || !strings.Contains(toString(shut[0].Attrs["data"]), "guest-shutdown") {
		t.Errorf("h1 logged no guest shutdown of vm1: %+v", shut)
	}
	host := c.running(nil)["vm1"]
	c.waitFor("vm1's guest heard on "+host, 90*time.Second, func() bool {
		c.oneDiskHolder(0)
		return len(c.loggedOn(host, t0, "guest", "guest agent says hello")) > 0
	})
	fo := c.loggedOn("h1", t0, "guest", "failing the VM over")[0].Time
	if ran := c.loggedOn(host, fo, "vm", "vm1 running"); len(ran) > 0 {
		hello := c.loggedOn(host, fo, "guest", "guest agent says hello")[0].Time
		t.Logf("failover: the third crash to vm1's QEMU running on %s %v, to its guest heard there %v", host, ran[0].Time.Sub(fo).Round(time.Millisecond), hello.Sub(fo).Round(time.Millisecond))
	}
	c.onlyOnce(1, "h1")
}

// loggedOn is logged for one host's lines.
func (c *cluster) loggedOn(host string, since time.Time, component, sub string) []demo.Line {
	var out []demo.Line
	for _, l := range c.logged(since, component, sub) {
		if l.Host == host {
			out = append(out, l)
		}
	}
	return out
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

// TestSilentGuest: a QEMU VM whose guest never heartbeats (its kernel has
// no guest agent) is reset when its boot grace passes, through QMP, and
// when that reset spends its budget, failed over to the other host.
func TestSilentGuest(t *testing.T) {
	privtest.Require(t)
	if _, err := exec.LookPath(qemu.DefaultBinary); err != nil {
		privtest.Unavailable(t, qemu.DefaultBinary+" is not installed (make qemu-deps installs it)")
	}
	k, err := lab.QEMUKernel()
	if err != nil {
		privtest.Unavailable(t, err.Error())
	}
	t0 := time.Now()
	c := newClusterWith(t, lab.Options{Hosts: 2, Links: 1, VMs: 1, QEMUKernel: k,
		VMPolicy:   "guest_timeout = \"2s\"\nguest_boot_grace = \"4s\"\nmax_resets = 1\n",
		AgentFlags: []string{"--vm-stop-timeout", "2s"}}) // the kernel ignores the ACPI button
	c.waitFor("vm1 reset", 30*time.Second, func() bool { return len(c.loggedOn("h1", t0, "guest", "resetting the VM")) > 0 })
	reset := c.loggedOn("h1", t0, "guest", "resetting the VM")[0]
	if !strings.Contains(toString(reset.Attrs["why"]), "no guest heartbeat 4s after the VM started (reset 1 of 1") {
		t.Errorf("reset: %+v", reset.Attrs)
	}
	c.waitFor("QEMU's RESET event", 10*time.Second, func() bool { return len(c.loggedOn("h1", t0, "vm", "QEMU event RESET")) > 0 })
	c.waitFor("vm1 failed over to h2", 60*time.Second, func() bool {
		c.oneDiskHolder(0)
		return c.running(nil)["vm1"] == "h2"
	})
	fo := c.loggedOn("h1", t0, "guest", "failing the VM over")
	if len(fo) == 0 || !strings.Contains(toString(fo[0].Attrs["why"]), "1 resets in 1h0m0s are spent") {
		t.Errorf("failover: %+v", fo)
	}
	c.onlyOnce(1, "h1")
}
