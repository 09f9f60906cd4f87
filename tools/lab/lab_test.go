package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/tools/privtest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

var hosts3 = []string{"h1", "h2", "h3"}

// TestLabNetwork drives the network faults of a 3-host, 2-link lab.
func TestLabNetwork(t *testing.T) {
	l := testLab(t, Options{Hosts: 3, Links: 2})
	m := newMesh(t, l, hosts3, 2)

	t.Run("every host reaches every other on both links", func(t *testing.T) {
		for _, a := range hosts3 {
			for _, b := range hosts3 {
				for link := 0; link < 2; link++ {
					if a != b && !m.works(a, b, link) {
						t.Errorf("%s -> %s on link %d: nothing arrived", a, b, link)
					}
				}
			}
		}
	})
	t.Run("bridged frames skip the IP firewall hooks", func(t *testing.T) {
		err := inNS(hubNS(l.Name()), func() error {
			data, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
			if errors.Is(err, fs.ErrNotExist) {
				return nil // no br_netfilter in this kernel
			}
			if err == nil && strings.TrimSpace(string(data)) != "0" {
				err = fmt.Errorf("bridge-nf-call-iptables is %s in the hub", strings.TrimSpace(string(data)))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("every veth receives in a NAPI thread of its own", func(t *testing.T) {
		s := mustState(t, l)
		// Set-up again: it enters the hub's namespaces and must leave them.
		if err := nicThreads(s.HubNS, nil); err != nil {
			t.Fatal(err)
		}
		threads, err := napiThreads()
		if err != nil {
			t.Fatal(err)
		}
		// Other labs (a concurrent test package, a demo) name their hub
		// veths alike, each in a hub namespace of its own: at least one.
		for _, h := range s.Hosts {
			for _, hl := range h.Links {
				if n := len(threads[hl.HubVeth]); n < 1 {
					t.Errorf("%s has no NAPI thread", hl.HubVeth)
				}
			}
		}
		// Host ends share names across hosts (eth0, eth1): count them all.
		for link := 0; link < 2; link++ {
			if n := len(threads[hostVeth(link)]); n < len(s.Hosts) {
				t.Errorf("%d NAPI threads for %s, want one per host (%d)", n, hostVeth(link), len(s.Hosts))
			}
		}
		// The set-up thread went back to where it was: this process still
		// sees its own mounts and network namespace.
		mounts, err := os.ReadFile("/proc/self/mounts")
		if err != nil || !strings.Contains(string(mounts), " cgroup2 ") {
			t.Errorf("/proc/self/mounts lost the cgroup2 mount after the set-up (err %v)", err)
		}
		self, err := netns.Get()
		if err != nil {
			t.Fatal(err)
		}
		defer self.Close()
		if init, err := netns.GetFromPid(os.Getpid()); err != nil || !self.Equal(init) {
			t.Errorf("the process's network namespace changed (err %v)", err)
		} else {
			init.Close()
		}
	})
	t.Run("every host pings its isolation addresses", func(t *testing.T) {
		for _, h := range hosts3 {
			for link := 0; link < 2; link++ {
				if err := ping(l, h, addrOf(t, h, link), isolationAddr(link).String()); err != nil {
					t.Errorf("%s ping %s: %v", h, isolationAddr(link), err)
				}
			}
		}
	})
	t.Run("agents run in their namespace and cgroup", func(t *testing.T) {
		s := mustState(t, l)
		for _, h := range s.Hosts {
			if !sameNetns(h.Agent.PID, h.NS) || !inCgroup(h.Agent.PID, h.Agent.Cgroup) {
				t.Errorf("%s's agent %d is not in %s and %s", h.Name, h.Agent.PID, h.NS, h.Agent.Cgroup)
			}
		}
		if !m.answers("h2", "h1", 0) {
			t.Error("h1's stand-in agent does not answer on 10.100.0.11")
		}
	})
	t.Run("cut", func(t *testing.T) {
		if err := l.Cut("h1", "1"); err != nil {
			t.Fatal(err)
		}
		if carrier(t, l, "h1", "eth1") {
			t.Error("h1's eth1 still has carrier after the cut")
		}
		if !m.blocked("h1", "h2", 1) || !m.blocked("h2", "h1", 1) {
			t.Error("h1 <-> h2 on link 1 still works after the cut")
		}
		if !m.works("h1", "h2", 0) {
			t.Error("h1 -> h2 on link 0 broke with link 1's cut")
		}
	})
	t.Run("heal", func(t *testing.T) {
		if err := l.Heal("h1", "l1"); err != nil {
			t.Fatal(err)
		}
		if !eventually(2*time.Second, func() bool { return carrier(t, l, "h1", "eth1") }) {
			t.Error("h1's eth1 has no carrier 2s after heal")
		}
		if !m.works("h1", "h2", 1) || !m.works("h2", "h1", 1) {
			t.Error("h1 <-> h2 on link 1 does not come back after heal")
		}
	})
	t.Run("loss", func(t *testing.T) {
		if n := m.burst("h1", "h2", 0, 1000); n < 990 {
			t.Fatalf("without loss %d of 1000 arrived, want at least 990", n)
		}
		if err := l.Loss("h2", "0", 100); err != nil {
			t.Fatal(err)
		}
		if n := m.burst("h1", "h2", 0, 100); n != 0 {
			t.Errorf("loss 100%%: %d of 100 arrived h1 -> h2", n)
		}
		if n := m.burst("h2", "h1", 0, 100); n != 0 {
			t.Errorf("loss 100%%: %d of 100 arrived h2 -> h1", n)
		}
		if !m.works("h1", "h3", 0) {
			t.Error("h2's loss broke h1 -> h3")
		}
		if err := l.Loss("h2", "l0", 30); err != nil {
			t.Fatal(err)
		}
		if n := m.burst("h1", "h2", 0, 1000); n < 600 || n > 800 {
			t.Errorf("loss 30%%: %d of 1000 arrived, want 600 to 800", n)
		}
		if err := l.Heal("h2", "0"); err != nil {
			t.Fatal(err)
		}
		if n := m.burst("h1", "h2", 0, 1000); n < 990 {
			t.Errorf("after heal %d of 1000 arrived, want at least 990", n)
		}
	})
	t.Run("partition", func(t *testing.T) {
		if err := l.Partition("h1,h2|h3"); err != nil {
			t.Fatal(err)
		}
		for link := 0; link < 2; link++ {
			for _, p := range [][2]string{{"h1", "h3"}, {"h3", "h1"}, {"h2", "h3"}, {"h3", "h2"}} {
				if !m.blocked(p[0], p[1], link) {
					t.Errorf("%s -> %s on link %d crosses the partition", p[0], p[1], link)
				}
			}
			if !m.works("h1", "h2", link) || !m.works("h2", "h1", link) {
				t.Errorf("h1 <-> h2 on link %d broke inside a group", link)
			}
		}
		if err := ping(l, "h3", addrOf(t, "h3", 0), isolationAddr(0).String()); err != nil {
			t.Errorf("h3 lost its isolation address in the partition: %v", err)
		}
		if err := l.Partition("h1|h3"); !errors.Is(err, ErrBadPartition) {
			t.Errorf("partition h1|h3: %v, want ErrBadPartition", err)
		}
		if err := l.Partition("none"); err != nil {
			t.Fatal(err)
		}
		if !m.works("h1", "h3", 0) || !m.works("h3", "h2", 1) {
			t.Error("partition none did not heal")
		}
	})
	t.Run("status", func(t *testing.T) {
		l.Cut("h3", "0")
		l.Loss("h2", "1", 25)
		st, err := l.Status()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		st.WriteTable(&b)
		for _, want := range []string{"partition none", "h3    on     ", "cut", "loss 25%", "disarmed"} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("status lacks %q:\n%s", want, b.String())
			}
		}
		if st.SupervisorPID == 0 || st.Hosts[0].AgentPID == 0 || !st.Hosts[0].AgentRunning {
			t.Errorf("status = %+v, want a supervisor and running agents", st)
		}
	})
	t.Run("unknown host and link", func(t *testing.T) {
		var uh *UnknownHostError
		if err := l.Cut("h4", "0"); !errors.As(err, &uh) || !strings.Contains(err.Error(), "[h1 h2 h3]") {
			t.Errorf("cut h4: %v, want an UnknownHostError listing the hosts", err)
		}
		var ul *UnknownLinkError
		if err := l.Loss("h1", "l2", 5); !errors.As(err, &ul) {
			t.Errorf("loss on l2: %v, want an UnknownLinkError", err)
		}
	})
}

// TestLabDown checks that down removes everything, also while a host's
// process waits on a hung datastore path, and works without state.json
// and when there is nothing to remove.
func TestLabDown(t *testing.T) {
	l := testLab(t, Options{Hosts: 2, Links: 2})
	name := l.Name()
	s := mustState(t, l)
	if err := l.DSHang("all", "all"); err != nil {
		t.Fatal(err)
	}
	// A direct read of the LUN waits in the kernel, unkillable, for the
	// loop device, which waits for the hung path.
	dd, err := l.Exec("h1", "dd", "if="+filepath.Join(s.Hosts[0].Dir, "ds1"), "of=/dev/null", "bs=4096", "count=1", "iflag=direct")
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- dd.Wait() }()
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, name, s.CgroupRoot)
	if err := <-waited; err == nil {
		t.Error("the read of a hung LUN path succeeded")
	}
	if err := Down(name); err != nil {
		t.Errorf("second down: %v", err)
	}
	if _, err := Open(name); !errors.Is(err, ErrNoLab) {
		t.Errorf("open after down: %v, want ErrNoLab", err)
	}

	l = testLab(t, Options{Name: name, Hosts: 2, Links: 1})
	os.Remove(statePath(l.Dir()))
	if err := Down(name); err != nil {
		t.Fatal(err)
	}
	assertGone(t, name, s.CgroupRoot)
}

func assertGone(t *testing.T, name, cgroup string) {
	t.Helper()
	entries, _ := os.ReadDir(netnsRoot)
	for _, e := range entries {
		if isLabNS(name, e.Name()) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
	for _, p := range []string{cgroup, pinDir(name), labDir(name)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	if m, err := mountsUnder(labDir(name) + "/"); err != nil || len(m) > 0 {
		t.Errorf("mounts left behind: %v, %v", m, err)
	}
	if devs := labLoops(t, name); len(devs) > 0 {
		t.Errorf("loop devices left behind: %v", devs)
	}
}

// TestLabUpOverStale brings a lab up over the leftovers of a crashed one.
func TestLabUpOverStale(t *testing.T) {
	l := testLab(t, Options{Hosts: 2, Links: 1})
	name := l.Name()
	s := mustState(t, l)
	// A crash after 'up' made some of the lab: a hub namespace with a
	// bridge, a host namespace file that is not mounted, a cgroup with a
	// process in it, pins and a damaged state.json; the old lab's
	// supervisor and agents are still running.
	stray, err := l.Exec("h1", "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	go stray.Wait()
	if err := deleteNamespaces(name); err != nil {
		t.Fatal(err)
	}
	ns, err := newNS(hubNS(name))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := netlink.NewHandleAt(ns)
	h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}})
	h.Close()
	ns.Close()
	os.WriteFile(filepath.Join(netnsRoot, hostNS(name, "h2")), nil, 0o444)
	os.WriteFile(statePath(l.Dir()), []byte("{"), 0o644)
	if _, err := Open(name); err == nil {
		t.Fatal("open of a damaged state worked")
	}

	l = testLab(t, Options{Name: name, Hosts: 3, Links: 1})
	if alive(stray.Process.Pid) || alive(s.Supervisor.PID) {
		t.Error("a process of the stale lab survived up")
	}
	m := newMesh(t, l, hosts3, 1)
	if !m.works("h1", "h2", 0) || !m.works("h3", "h1", 0) {
		t.Error("the new lab's hosts do not reach each other")
	}
	if err := l.Loss("h1", "0", 100); err != nil || !m.blocked("h1", "h2", 0) {
		t.Errorf("loss on the new lab: %v", err)
	}
}

// carrier reports whether dev in host's namespace has carrier.
func carrier(t *testing.T, l *Lab, host, dev string) bool {
	t.Helper()
	ns, err := netns.GetFromName(l.HostNamespace(host))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().RawFlags&unix.IFF_LOWER_UP != 0 && link.Attrs().OperState == netlink.OperUp
}

// ping sends ICMP echo requests from host (bound to src) to dst until one
// is answered, for up to 3 s.
func ping(l *Lab, host string, src net.IP, dst string) error {
	var c *icmp.PacketConn
	err := inNS(l.HostNamespace(host), func() (err error) {
		c, err = icmp.ListenPacket("ip4:icmp", src.String())
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for seq, deadline := 1, time.Now().Add(3*time.Second); time.Now().Before(deadline); seq++ {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: seq, Data: []byte("vigil")}}
		b, _ := msg.Marshal(nil)
		if _, err := c.WriteTo(b, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				break
			}
			r, err := icmp.ParseMessage(1, buf[:n])
			if err == nil && r.Type == ipv4.ICMPTypeEchoReply && from.String() == dst {
				if e, ok := r.Body.(*icmp.Echo); ok && e.Seq == seq {
					return nil
				}
			}
		}
	}
	return errors.New("no echo reply within 3s")
}

// TestUpFromKilledCgroup starts a lab from a process whose cgroup went
// through cgroup.kill: the kernel kills processes it starts into the lab's
// fresh cgroups, so the lab moves itself to the root cgroup and retries.
func TestUpFromKilledCgroup(t *testing.T) {
	privtest.Require(t)
	mount, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var orig string
	for _, line := range strings.Split(string(self), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			orig = filepath.Join(mount, p)
		}
	}
	killed := filepath.Join(mount, "vigil-lab", testName()+"-killed")
	if err := os.MkdirAll(killed, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		writeCgroup(orig, "cgroup.procs", strconv.Itoa(os.Getpid()))
		os.Remove(killed)
	})
	if err := writeCgroup(killed, "cgroup.kill", "1"); err != nil {
		t.Fatal(err)
	}
	if err := writeCgroup(killed, "cgroup.procs", strconv.Itoa(os.Getpid())); err != nil {
		t.Fatal(err)
	}

	l := testLab(t, Options{Hosts: 2, Links: 1})
	s := mustState(t, l)
	if !alive(s.Supervisor.PID) || !alive(s.Hosts[0].Agent.PID) || !alive(s.Hosts[1].Agent.PID) {
		t.Fatalf("supervisor or agents died at birth: %+v", s)
	}
	if pids, _ := cgroupPIDs(killed); len(pids) != 0 {
		t.Errorf("the test process stayed in the killed cgroup: %v", pids)
	}
}
