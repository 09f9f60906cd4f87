// Package itest runs real vigil agents as lab clusters (network namespaces,
// veth links, cgroups, the emulated watchdog) through faults, and checks
// what the agents do. Root only: the tests skip without root, and fail
// instead when VIGIL_REQUIRE_PRIV=1.
package itest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/firmware/agentd"
	"github.com/vigil-ha/vigil/tools/lab"
	"github.com/vigil-ha/vigil/tools/lab/demo"
	"github.com/vigil-ha/vigil/tools/privtest"
)

// exe is the vigil binary built for these tests.
var exe string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // every test skips (or fails under VIGIL_REQUIRE_PRIV=1)
	}
	dir, err := os.MkdirTemp("", "vigil-itest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	exe = filepath.Join(dir, "vigil")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	cmd := exec.Command("go", "build", "-o", exe, "./firmware/vigil")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building vigil: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if imageFix != nil {
		os.RemoveAll(imageFix.Dir)
	}
	return code
}

// cluster is one lab under test.
type cluster struct {
	t     testing.TB
	l     *lab.Lab
	hosts []string
}

// newCluster brings up a lab of hosts hosts, links links and two VMs per
// host, and waits until every VM runs. The lab goes down with the test.
func newCluster(t testing.TB, hosts, links int) *cluster {
	t.Helper()
	return newClusterWith(t, lab.Options{Hosts: hosts, Links: links})
}

// newClusterWith is newCluster for the lab o describes (its name and
// executable are the test's).
func newClusterWith(t testing.TB, o lab.Options) *cluster {
	t.Helper()
	privtest.Require(t)
	tag := make([]byte, 3)
	rand.Read(tag)
	o.Name, o.Executable = "it-"+hex.EncodeToString(tag), exe
	if o.VMs == 0 {
		o.VMs = 2 * o.Hosts
	}
	l, err := lab.Up(o)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	c := &cluster{t: t, l: l}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	c.hosts, err = l.Hosts()
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor("every VM running", 30*time.Second, func() bool { return len(c.running(nil)) == o.VMs })
	return c
}

func (c *cluster) dumpLogs() {
	c.dumpStuckAgents()
	for _, h := range c.hosts {
		data, _ := os.ReadFile(filepath.Join(c.l.Dir(), h, "agent.log"))
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		c.t.Logf("--- %s agent.log (tail)\n%s", h, strings.Join(lines, "\n"))
	}
	if data, err := os.ReadFile(filepath.Join(c.l.Dir(), "supervisor.log")); err == nil {
		c.t.Logf("--- supervisor.log\n%s", data)
	}
}

// dumpStuckAgents says which hosts are off and who switched them off, and
// has every running agent that does not answer its API print its
// goroutines into its log (SIGQUIT), so that a failed test shows where
// such an agent waits.
func (c *cluster) dumpStuckAgents() {
	st, err := c.l.Status()
	if err != nil {
		c.t.Logf("lab status: %v", err)
		return
	}
	var quit []int // pidfds of the agents told to dump
	for _, h := range st.Hosts {
		if !h.AgentRunning || h.AgentPID <= 0 {
			c.t.Logf("%s: power %s (off by %q), agent PID %d not running", h.Name, h.Power, h.OffBy, h.AgentPID)
			continue
		}
		if _, err := c.status(h.Name); err != nil {
			c.t.Logf("%s's agent (PID %d) does not answer its API (%v): dumping its goroutines into its log", h.Name, h.AgentPID, err)
			fd, err := unix.PidfdOpen(h.AgentPID, 0)
			if err == nil && unix.PidfdSendSignal(fd, unix.SIGQUIT, nil, 0) == nil {
				quit = append(quit, fd)
			}
		}
	}
	for _, fd := range quit {
		// A pidfd polls readable once its process exited: the runtime has
		// written its dump by then.
		_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 2000)
		unix.Close(fd)
	}
}

func (c *cluster) status(host string) (*agentd.StatusReply, error) {
	var rep agentd.StatusReply
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := agentd.NewClient(filepath.Join(c.l.Dir(), host, "api.sock")).Get(ctx, "/v1/status", &rep)
	return &rep, err
}

// running maps every VM a host's agent reports running to that host,
// asking every host but those in skip; it fails the test when a VM is
// reported running on two hosts at once (S1).
func (c *cluster) running(skip map[string]bool) map[string]string {
	c.t.Helper()
	where := map[string]string{}
	for _, h := range c.hosts {
		if skip[h] {
			continue
		}
		rep, err := c.status(h)
		if err != nil {
			continue
		}
		for _, v := range rep.Status.VMs {
			if v.State != "running" {
				continue
			}
			if other, dup := where[v.Name]; dup {
				c.t.Fatalf("S1 broken: %s runs on %s and %s", v.Name, other, h)
			}
			where[v.Name] = h
		}
	}
	return where
}

// vmProc is a lab VM process: its host and PID.
type vmProc struct {
	Host string
	PID  int
}

// vmProcesses maps every lab VM process alive in a host's cgroup to its
// host and PID: what really runs, whatever the agents say.
func (c *cluster) vmProcesses() map[string][]vmProc {
	c.t.Helper()
	out := map[string][]vmProc{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		flag := "--name" // vigil lab-vm --name VM, or qemu-system-x86_64 -name VM
		switch {
		case strings.Contains(string(cmdline), "lab-vm") && (strings.HasSuffix(args[0], "vigil") || args[0] == exe):
		case strings.HasSuffix(args[0], "/qemu-system-x86_64"):
			flag = "-name"
		default:
			continue
		}
		var vm string
		for i, a := range args {
			if a == flag && i+1 < len(args) {
				vm = args[i+1]
			}
		}
		cg, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		pid, _ := strconv.Atoi(e.Name())
		for _, h := range c.hosts {
			if strings.Contains(string(cg), "/vigil-lab/"+c.l.Name()+"/"+h+"\n") {
				out[vm] = append(out[vm], vmProc{h, pid})
			}
		}
	}
	return out
}

// waitFor waits until cond holds, failing the test after limit. cond is
// checked at once, whenever an agent or the supervisor logs something
// (every change of a VM, a verdict or a lease is logged), and every 250 ms
// for what is not logged (a single link's detector state). The agents run
// on the real clock: there is no virtual time to advance here.
func (c *cluster) waitFor(what string, limit time.Duration, cond func() bool) {
	c.t.Helper()
	if cond() {
		return
	}
	f, err := newFollower(c.l.Dir(), c.hosts)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	deadline := time.After(limit)
	every := time.NewTicker(250 * time.Millisecond)
	defer every.Stop()
	for {
		select {
		case <-f.C:
			if cond() {
				return
			}
		case <-every.C:
			if cond() {
				return
			}
		case <-deadline:
			if cond() {
				return
			}
			c.t.Fatalf("%s: not within %s", what, limit)
		}
	}
}

// hold keeps a fault in place for d: the test then looks at what the
// agents did meanwhile.
func hold(d time.Duration) { <-time.After(d) }

func (c *cluster) logs() []demo.Line {
	c.t.Helper()
	files := map[string]string{}
	for _, h := range c.hosts {
		files[h] = filepath.Join(c.l.Dir(), h, "agent.log")
	}
	lines, err := demo.ReadLogs(files)
	if err != nil {
		c.t.Fatal(err)
	}
	return lines
}

// logged returns the lines since t of component whose message contains sub.
func (c *cluster) logged(since time.Time, component, sub string) []demo.Line {
	var out []demo.Line
	for _, l := range c.logs() {
		if !l.Time.Before(since) && l.Component == component && strings.Contains(l.Msg, sub) {
			out = append(out, l)
		}
	}
	return out
}

// vmsOn lists the VMs host runs now.
func (c *cluster) vmsOn(host string) []string {
	var vms []string
	for vm, h := range c.running(nil) {
		if h == host {
			vms = append(vms, vm)
		}
	}
	return vms
}

// allAlive fails unless every host but skip answers and takes every peer
// but skip for alive.
func (c *cluster) allAlive(skip string) error {
	for _, h := range c.hosts {
		if h == skip {
			continue
		}
		rep, err := c.status(h)
		if err != nil {
			return fmt.Errorf("%s does not answer: %v", h, err)
		}
		for _, p := range rep.Status.Peers {
			if p.Name != skip && p.Verdict != "alive" {
				return fmt.Errorf("%s takes %s for %s", h, p.Name, p.Verdict)
			}
		}
	}
	return nil
}
