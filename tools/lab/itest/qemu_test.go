package itest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/hv/qemu"
	"github.com/vigil-ha/vigil/tools/lab"
	"github.com/vigil-ha/vigil/tools/privtest"
)

// newQEMUCluster is a lab of three hosts on two links whose three VMs are
// QEMU VMs (software emulation) booting Debian's kernel, each with a disk
// on the folder datastore.
func newQEMUCluster(t *testing.T) *cluster {
	t.Helper()
	privtest.Require(t)
	if _, err := exec.LookPath(qemu.DefaultBinary); err != nil {
		privtest.Unavailable(t, qemu.DefaultBinary+" is not installed (make qemu-deps installs it)")
	}
	k, err := lab.QEMUKernel()
	if err != nil {
		privtest.Unavailable(t, err.Error())
	}
	return newClusterWith(t, lab.Options{Hosts: 3, Links: 2, VMs: 3, QEMUKernel: k})
}

// diskHolders maps each lab VM's disk to the processes that hold it open,
// with their host: S1 for QEMU is one holder at most.
func (c *cluster) diskHolders() map[string][]vmProc {
	c.t.Helper()
	out := map[string][]vmProc{}
	for vm, ps := range c.vmProcesses() {
		for _, p := range ps {
			fds, _ := os.ReadDir(filepath.Join("/proc", strconv.Itoa(p.PID), "fd"))
			for _, fd := range fds {
				target, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(p.PID), "fd", fd.Name()))
				if err == nil && strings.Contains(target, "/store/ds0/disks/") {
					disk := strings.TrimSuffix(filepath.Base(target), ".img")
					if disk != vm {
						c.t.Errorf("%s's QEMU (on %s) holds %s's disk", vm, p.Host, disk)
					}
					out[disk] = append(out[disk], p)
					break
				}
			}
		}
	}
	return out
}

// oneDiskHolder fails unless no disk is open in two processes, and, with
// want > 0, unless exactly want disks are open.
func (c *cluster) oneDiskHolder(want int) bool {
	c.t.Helper()
	held := c.diskHolders()
	for disk, ps := range held {
		if len(ps) > 1 {
			c.t.Errorf("S1: %s's disk is open in %d QEMU processes: %v", disk, len(ps), ps)
		}
	}
	return want == 0 || len(held) == want
}

// TestQEMUVMs: the lab's VMs are QEMU processes that opened their disks on
// the folder datastore, each on its owner only. A host's power loss
// restarts its VMs on the others from the datastore's definitions, fenced
// through its BMC; a QEMU killed on its host is started again. No disk is
// ever open on two hosts.
func TestQEMUVMs(t *testing.T) {
	c := newQEMUCluster(t)
	c.waitFor("every disk open", 30*time.Second, func() bool { return c.oneDiskHolder(3) })
	c.onlyOnce(3)
	for vm, ps := range c.vmProcesses() {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(ps[0].PID), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "-accel\x00tcg,tb-size=64") || !strings.Contains(string(cmdline), "cache=none") {
			t.Errorf("%s's QEMU command line %q (%v)", vm, cmdline, err)
		}
	}

	t0 := time.Now()
	lost := c.vmsOn("h1")
	if len(lost) != 1 {
		t.Fatalf("h1 runs %v; want one VM", lost)
	}
	if err := c.l.PowerOff("h1"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h1's VM running on the others", 40*time.Second, func() bool {
		c.oneDiskHolder(0)
		return len(c.running(map[string]bool{"h1": true})) == 3
	})
	c.movedWith(t0, "h1", lost, "bmc-off")
	c.waitFor("every disk open again", 30*time.Second, func() bool { return c.oneDiskHolder(3) })
	c.onlyOnce(3, "h1")

	// A QEMU killed on its host (an OOM kill, a crash) is restarted.
	victim := c.vmsOn("h2")
	if len(victim) == 0 {
		t.Fatal("h2 runs no VM")
	}
	vm := victim[0]
	old := c.vmProcesses()[vm][0]
	t1 := time.Now()
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.waitFor(vm+" running again", 30*time.Second, func() bool {
		c.oneDiskHolder(0)
		ps := c.vmProcesses()[vm]
		return len(ps) == 1 && ps[0].PID != old.PID && len(c.running(map[string]bool{"h1": true})) == 3
	})
	if len(c.logged(t1, "vm", vm+" exited")) == 0 && len(c.logged(t1, "vm", vm)) == 0 {
		t.Errorf("no log line about %s's exit", vm)
	}
	c.waitFor("every disk open again", 30*time.Second, func() bool { return c.oneDiskHolder(3) })
	c.onlyOnce(3, "h1")
}
