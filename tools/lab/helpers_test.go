package lab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/tools/privtest"
	"golang.org/x/sys/unix"
)

// The test binary doubles as the lab's stand-in processes: TestMain runs a
// role named by its first argument instead of the tests.
const (
	roleEcho      = "lab-test-echo"      // a stand-in agent: UDP echo on echoPort
	roleSupervise = "lab-test-supervise" // the supervisor, with a short reboot delay
	roleWatchdog  = "lab-test-watchdog"  // a stand-in agent that arms its watchdog and never pets it
	roleBMCPower  = "lab-test-bmc-power" // a BMC's power process: BMCPower, as 'vigil lab bmc-power'
	echoPort      = 7007
	meshPort      = 9000
	testReboot    = 300 * time.Millisecond
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case roleEcho:
			os.Exit(runEcho())
		case roleSupervise:
			os.Exit(runSupervise(os.Args[2]))
		case roleWatchdog:
			os.Exit(runWatchdogClient(os.Args[2]))
		case roleBMCPower:
			if err := BMCPower(os.Args[2], os.Args[3], nil); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

func runEcho() int {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: echoPort})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return 1
		}
		c.WriteToUDP(buf[:n], from)
	}
}

func runSupervise(name string) int {
	o := SuperviseOptions{Name: name, RebootDelay: testReboot}
	if fd, err := strconv.Atoi(os.Getenv(ReadyFDEnv)); err == nil {
		o.Ready = os.NewFile(uintptr(fd), "ready")
	}
	if err := Supervise(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runWatchdogClient opens the emulated watchdog at sock, sets a 1 s
// timeout and never pets it: a hung agent.
func runWatchdogClient(sock string) int {
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	fmt.Fprintf(os.Stderr, "watchdog: %s", line)
	fmt.Fprintf(c, "timeout 1\n")
	line, _ = r.ReadString('\n')
	fmt.Fprintf(os.Stderr, "watchdog: %s", line)
	select {} // hold the device open until power-killed
}

var labSeq atomic.Int32

// testName returns a lab name no other test run uses at the same time.
func testName() string { return fmt.Sprintf("t%d-%d", os.Getpid()%100000, labSeq.Add(1)) }

// benchOptions sets the test binary as agent (unless o has one), as
// supervisor and as the BMCs' power process.
func benchOptions(o Options, exe string) Options {
	o.Executable = exe
	if o.AgentCommand == nil {
		o.AgentCommand = func(string) []string { return []string{exe, roleEcho} }
	}
	o.SupervisorCommand = func(name string) []string { return []string{exe, roleSupervise, name} }
	o.BMCPowerCommand = func(name, host string) []string { return []string{exe, roleBMCPower, name, host} }
	return o
}

// testLab brings up a lab without BMCs, with stand-in agents (an echo
// server unless o says otherwise) and the test binary as supervisor, and
// downs it when the test ends.
func testLab(t testing.TB, o Options) *Lab {
	t.Helper()
	o.NoBMC = true
	return upTestLab(t, o)
}

// testLabBMC is testLab with a BMC per host (ipmi_sim, the test binary as
// power process). It needs ipmi_sim, and ipmitool to talk to them.
func testLabBMC(t testing.TB, o Options) *Lab {
	t.Helper()
	privtest.Require(t)
	for _, tool := range []string{"ipmi_sim", "ipmitool"} {
		if _, err := exec.LookPath(tool); err != nil {
			privtest.Unavailable(t, tool+" is not installed (fix: 'make test' installs it as root, or apt-get install openipmi ipmitool)")
		}
	}
	o.NoBMC = false
	return upTestLab(t, o)
}

func upTestLab(t testing.TB, o Options) *Lab {
	t.Helper()
	privtest.Require(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o = benchOptions(o, exe)
	if o.Name == "" {
		o.Name = testName()
	}
	t.Cleanup(func() {
		if err := Down(o.Name); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	l, err := Up(o)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	return l
}

// hostIndex returns N of "hN".
func hostIndex(t *testing.T, host string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(host, "h"))
	if err != nil {
		t.Fatalf("bad host %q", host)
	}
	return n
}

// listenUDP opens a UDP socket inside host's namespace bound to addr:port,
// with a receive buffer large enough for a burst of 1,000 datagrams.
func listenUDP(t *testing.T, l *Lab, host string, ip net.IP, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := inNS(l.HostNamespace(host), func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: port})
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", ip, host, err)
	}
	raw, err := c.SyscallConn()
	if err == nil {
		raw.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		})
	}
	if err != nil {
		t.Fatalf("receive buffer: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// mesh holds one UDP socket per host and link, bound to the host's
// address on that link.
type mesh struct {
	t     *testing.T
	socks map[string][]*net.UDPConn
	seq   int
}

func newMesh(t *testing.T, l *Lab, hosts []string, links int) *mesh {
	m := &mesh{t: t, socks: map[string][]*net.UDPConn{}}
	for _, h := range hosts {
		for link := 0; link < links; link++ {
			m.socks[h] = append(m.socks[h], listenUDP(t, l, h, addrOf(t, h, link), meshPort))
		}
	}
	return m
}

func addrOf(t *testing.T, host string, link int) net.IP {
	return net.IP(hostAddr(hostIndex(t, host), link).AsSlice())
}

// try sends one datagram from -> to on link and reports whether it
// arrived within d.
func (m *mesh) try(from, to string, link int, d time.Duration) bool {
	m.seq++
	token := fmt.Sprintf("%s>%s/%d#%d", from, to, link, m.seq)
	m.socks[from][link].WriteToUDP([]byte(token), &net.UDPAddr{IP: addrOf(m.t, to, link), Port: meshPort})
	return m.await(to, link, token, time.Now().Add(d))
}

// await reads on to's socket until token arrives or the deadline passes.
func (m *mesh) await(to string, link int, token string, deadline time.Time) bool {
	c := m.socks[to][link]
	buf := make([]byte, 2048)
	for {
		c.SetReadDeadline(deadline)
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == token {
			return true
		}
	}
}

// works retries until a datagram from -> to on link arrives, for up to 5 s
// (a healed veth carries traffic again within about a second).
func (m *mesh) works(from, to string, link int) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if m.try(from, to, link, 200*time.Millisecond) {
			return true
		}
	}
	return false
}

// blocked reports whether three datagrams from -> to on link all get lost.
func (m *mesh) blocked(from, to string, link int) bool {
	for range 3 {
		if m.try(from, to, link, 150*time.Millisecond) {
			return false
		}
	}
	return true
}

// burst sends n datagrams from -> to on link and counts those that arrive
// at to's mesh socket. It sends in windows of burstWindow and takes what
// arrived before sending the next: each veth receives through a NAPI ring
// of 256 frames, which a faster sender overruns as it would a NIC's.
func (m *mesh) burst(from, to string, link, n int) int {
	m.seq++
	prefix := fmt.Sprintf("burst%d#", m.seq)
	dst := &net.UDPAddr{IP: addrOf(m.t, to, link), Port: meshPort}
	seen := map[string]bool{}
	c := m.socks[to][link]
	buf := make([]byte, 2048)
	for first := 0; first < n; first += burstWindow {
		last := min(first+burstWindow, n)
		for i := first; i < last; i++ {
			if _, err := m.socks[from][link].WriteToUDP([]byte(prefix+strconv.Itoa(i)), dst); err != nil {
				m.t.Fatalf("send %d: %v", i, err)
			}
		}
		// Read until the window is in or the link has been quiet a while
		// (the rest of the window was dropped).
		for len(seen) < last {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			k, _, err := c.ReadFromUDP(buf)
			if err != nil {
				break
			}
			if s := string(buf[:k]); strings.HasPrefix(s, prefix) {
				seen[s] = true
			}
		}
	}
	return len(seen)
}

const burstWindow = 50

// echoes reports whether host's stand-in agent answers a datagram from
// the mesh socket of from on link within d.
func (m *mesh) echoes(from, host string, link int, d time.Duration) bool {
	m.seq++
	token := fmt.Sprintf("echo#%d", m.seq)
	c := m.socks[from][link]
	c.WriteToUDP([]byte(token), &net.UDPAddr{IP: addrOf(m.t, host, link), Port: echoPort})
	return m.await(from, link, token, time.Now().Add(d))
}

// answers retries echoes for up to 5 s: the agent may still be starting.
func (m *mesh) answers(from, host string, link int) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if m.echoes(from, host, link, 200*time.Millisecond) {
			return true
		}
	}
	return false
}

// eventually polls cond until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustState reads the lab's state.
func mustState(t *testing.T, l *Lab) *state {
	t.Helper()
	s, err := readState(l.name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// inCgroup reports whether pid is in the cgroup folder dir.
func inCgroup(pid int, dir string) bool { return inCgroupDir(pid, dir) }

// sameNetns reports whether pid's network namespace is the named one.
func sameNetns(pid int, ns string) bool {
	var a, b syscall.Stat_t
	return syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &a) == nil &&
		syscall.Stat(netnsRoot+"/"+ns, &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev
}
