package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The lab's BMCs. Every host hN has one: an OpenIPMI ipmi_sim in the hub
// namespace, in the lab's cgroup "bmc" (outside every host's, so that a
// host's power loss leaves its BMC up), answering IPMI over LAN (lanplus,
// cipher suite 3) on link 0's bridge address, port BMCBasePort+N: link 0
// plays the management network. Its chassis power is its startcmd, the
// power process (BMCPower, 'vigil lab bmc-power'): ipmi_sim reads the
// chassis on while that process runs, and "chassis power off" sends it
// SIGTERM, on which it power-kills the host and exits once the host's
// cgroup is empty. kill_wait 0 tells ipmi_sim never to SIGKILL it: a power
// process killed before its host is dead would make the BMC read off while
// the host still runs something, and vigil takes "off" as proof.
const (
	// BMCBasePort + N is the LAN port of host hN's BMC.
	BMCBasePort = 6230
	// BMCUser is the user of every BMC; each has its own random password.
	BMCUser = "admin"
	// bmcSerialBase + N is the port of hN's BMC's VM serial interface on
	// the hub's 127.0.0.1: ipmi_sim refuses chassis control without one.
	bmcSerialBase = 6300
	// bmcWait bounds every wait for a BMC or its power process.
	bmcWait = 5 * time.Second
)

// ErrNoIPMISim is wrapped by Up's error when ipmi_sim is not installed.
var ErrNoIPMISim = errors.New("ipmi_sim (package openipmi) is not installed")

// ErrNoBMC is wrapped by the errors of BMC commands on a lab brought up
// without BMCs.
var ErrNoBMC = errors.New("the lab has no BMCs")

// bmcState is a host's BMC.
type bmcState struct {
	Port        int    `json:"port"`        // LAN port on link 0's bridge address
	SerialPort  int    `json:"serial_port"` // VM serial interface on the hub's 127.0.0.1
	Dir         string `json:"dir"`         // lan.conf, HOST.emu, state/, power.ready
	Credentials string `json:"credentials"` // HOST/bmc.cred: "user NAME", "password SECRET"
	Log         string `json:"log"`         // ipmi_sim's and the power process's output
	PID         int    `json:"pid"`         // ipmi_sim
	// PowerPID is the power process, ipmi_sim's child, while the BMC
	// reads on; 0 once it decided to exit.
	PowerPID int `json:"power_pid"`
	// Failed is set by BMCFail: ipmi_sim is stopped and answers nothing.
	Failed bool `json:"failed"`
}

// bmcAddr is host hN's BMC as the cluster file names it.
func bmcAddr(n int) string {
	return netip.AddrPortFrom(isolationAddr(0), uint16(BMCBasePort+n)).String()
}

// bmcCredentials is the credentials file of the host whose folder is
// hostDir.
func bmcCredentials(hostDir string) string { return filepath.Join(hostDir, "bmc.cred") }

// newBMC lays out host hN's BMC in its folder hostDir.
func newBMC(n int, hostDir string) *bmcState {
	return &bmcState{
		Port:        BMCBasePort + n,
		SerialPort:  bmcSerialBase + n,
		Dir:         filepath.Join(hostDir, "bmc"),
		Credentials: bmcCredentials(hostDir),
		Log:         filepath.Join(hostDir, "bmc.log"),
	}
}

// findIPMISim returns the path of ipmi_sim.
func findIPMISim() (string, error) {
	p, err := exec.LookPath("ipmi_sim")
	if err != nil {
		return "", fmt.Errorf("lab: %w (fix: apt-get install openipmi, or bring the lab up without BMCs: --no-bmc)", ErrNoIPMISim)
	}
	return p, nil
}

// BMCPowerArgs is the command line of host's power process in the lab
// called name, started from the binary exe.
func BMCPowerArgs(exe, name, host string) []string {
	return []string{exe, "lab", "bmc-power", "--name", name, "--host", host}
}

// lanConf is the lan.conf of host's BMC: its LAN channel, the user admin
// with password, the serial interface chassis control needs, and the power
// process as startcmd, started at once (the host is on when its BMC
// starts) and never SIGKILLed.
func lanConf(host string, b *bmcState, password, startcmd string) string {
	auths := "none md2 md5 straight"
	var w strings.Builder
	fmt.Fprintf(&w, "# The BMC of %s, written by 'vigil lab up'.\nname %q\nset_working_mc 0x20\n\n", host, host)
	fmt.Fprintf(&w, "startlan 1\n  addr %s %d\n  priv_limit admin\n", isolationAddr(0), b.Port)
	for _, p := range []string{"callback", "user", "operator", "admin"} {
		fmt.Fprintf(&w, "  allowed_auths_%s %s\n", p, auths)
	}
	w.WriteString("  guid a123456789abcdefa123456789abcdef\nendlan\n\n")
	fmt.Fprintf(&w, "serial 15 127.0.0.1 %d codec VM ipmb 0x20\n\n", b.SerialPort)
	fmt.Fprintf(&w, "startcmd \"%s\"\nstartnow true\npoweroff_wait 0\nkill_wait 0\n\n", startcmd)
	fmt.Fprintf(&w, "user 2 true %q %q admin 10 %s\n", BMCUser, password, auths)
	return w.String()
}

// bmcEmu is the BMC's command file: one management controller at 0x20.
const bmcEmu = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
`

// shellCommand quotes argv for /bin/sh inside lan.conf's double-quoted
// startcmd, which knows no escapes.
func shellCommand(argv []string) (string, error) {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, "\"'\n") {
			return "", fmt.Errorf("lab: %q cannot be part of a BMC's startcmd (fix: move the vigil binary to a path without quotes)", a)
		}
		q[i] = "'" + a + "'"
	}
	return strings.Join(q, " "), nil
}

// writeBMCFiles writes host h's lan.conf, .emu file, state folder and
// credentials file, with a new random password.
func writeBMCFiles(h *hostState, powerArgv []string) error {
	b := h.BMC
	startcmd, err := shellCommand(powerArgv)
	if err != nil {
		return err
	}
	secret := make([]byte, 8)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("lab: make the BMC password of %s: %w", h.Name, err)
	}
	password := hex.EncodeToString(secret)
	if err := os.MkdirAll(filepath.Join(b.Dir, "state"), 0o700); err != nil {
		return fmt.Errorf("lab: make the BMC folder of %s: %w", h.Name, err)
	}
	for _, f := range []struct {
		path, text string
	}{
		{filepath.Join(b.Dir, "lan.conf"), lanConf(h.Name, b, password, startcmd)},
		{filepath.Join(b.Dir, h.Name+".emu"), bmcEmu},
		{b.Credentials, fmt.Sprintf("user %s\npassword %s\n", BMCUser, password)},
	} {
		if err := os.WriteFile(f.path, []byte(f.text), 0o600); err != nil {
			return fmt.Errorf("lab: write the BMC of %s: %w", h.Name, err)
		}
	}
	return nil
}

// startBMC starts h's ipmi_sim and waits until its power process is ready
// to handle a power-off; a failed BMC is stopped again at once.
func startBMC(s *state, h *hostState) error {
	b := h.BMC
	ready := filepath.Join(b.Dir, "power.ready")
	os.Remove(ready)
	argv := []string{s.IPMISim, "-c", filepath.Join(b.Dir, "lan.conf"), "-f", filepath.Join(b.Dir, h.Name+".emu"),
		"-s", filepath.Join(b.Dir, "state"), "-n"}
	pid, err := startDaemon(s.HubNS, s.BMCCgroup, argv, b.Log, nil, nil)
	if err != nil {
		return fmt.Errorf("lab: start the BMC of %s: %w", h.Name, err)
	}
	b.PID, b.PowerPID = pid, 0
	deadline := time.Now().Add(bmcWait)
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		if !alive(pid) {
			return fmt.Errorf("lab: the BMC of %s exited at start (see %s)", h.Name, b.Log)
		}
		if kids := children(pid); len(kids) > 0 {
			if data, err := os.ReadFile(ready); err == nil && strings.TrimSpace(string(data)) == strconv.Itoa(kids[0]) {
				b.PowerPID = kids[0]
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: the BMC of %s has no ready power process after %v (see %s)", h.Name, bmcWait, b.Log)
		}
		time.Sleep(delay)
	}
	if b.Failed {
		return signalBMC(s, h, syscall.SIGSTOP)
	}
	return nil
}

// restartBMC replaces h's ipmi_sim by a new one, whose power process
// starts at once: how the lab tells a BMC that reads off that its host is
// on again. The old one is killed first, so that no BMC that reads off
// answers once the host runs. The state is written at once, so that it
// names the running BMC whatever happens next.
func restartBMC(s *state, h *hostState) error {
	if err := killBMC(s, h); err != nil {
		return err
	}
	if err := startBMC(s, h); err != nil {
		return err
	}
	return s.write()
}

// killBMC SIGKILLs h's ipmi_sim, if it runs, and waits until it is dead.
func killBMC(s *state, h *hostState) error {
	pid := h.BMC.PID
	if !isBMCProcess(s, pid) {
		return nil
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(bmcWait); alive(pid); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: the BMC of %s (PID %d) survived SIGKILL for %v", h.Name, pid, bmcWait)
		}
	}
	return nil
}

// isBMCProcess reports whether pid is a live process in the lab's BMC
// cgroup: a recorded PID may have been reused.
func isBMCProcess(s *state, pid int) bool {
	return alive(pid) && inCgroupDir(pid, s.BMCCgroup)
}

// powerRunning reports whether h's BMC reads on and will go on doing so
// until its host is off: its power process runs, is not exiting, and is a
// child of the BMC's ipmi_sim.
func powerRunning(s *state, h *hostState) bool {
	b := h.BMC
	return b.PowerPID != 0 && isBMCProcess(s, b.PID) && !exiting(b.PowerPID) && parentOf(b.PowerPID) == b.PID
}

// notifyPower tells h's power process that its host went off by other
// means (SIGUSR1), so that it checks and exits; the BMC then reads off.
// Only for a host that is off: SIGUSR1 kills a power process that has not
// set up its handlers yet.
func notifyPower(b bmcState) {
	if b.PowerPID != 0 && parentOf(b.PowerPID) == b.PID {
		syscall.Kill(b.PowerPID, syscall.SIGUSR1)
	}
}

// awaitBMCOff waits until h's power process exited and, unless the BMC is
// stopped, until ipmi_sim noticed: the BMC reads off.
func awaitBMCOff(host string, b bmcState) error {
	notifyPower(b)
	deadline := time.Now().Add(bmcWait)
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		done := !alive(b.PowerPID) || parentOf(b.PowerPID) != b.PID
		if done && !b.Failed {
			done = !alive(b.PID) || len(children(b.PID)) == 0
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: %s is off but its BMC still reads on after %v (see %s)", host, bmcWait, b.Log)
		}
		time.Sleep(delay)
	}
}

// signalBMC sends sig to h's ipmi_sim and waits until it is stopped
// (SIGSTOP) or running (SIGCONT).
func signalBMC(s *state, h *hostState, sig syscall.Signal) error {
	pid := h.BMC.PID
	if !isBMCProcess(s, pid) {
		return fmt.Errorf("the BMC of %s is not running (see %s; fix: vigil lab up again)", h.Name, h.BMC.Log)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("lab: %v to the BMC of %s: %w", sig, h.Name, err)
	}
	want, state := sig == syscall.SIGSTOP, "running"
	if want {
		state = "stopped"
	}
	for deadline := time.Now().Add(bmcWait); stopped(pid) != want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: the BMC of %s is not %s after %v", h.Name, state, bmcWait)
		}
	}
	return nil
}

// BMCFail makes host's BMC stop answering, as a hung BMC: its ipmi_sim is
// stopped (SIGSTOP), so every request times out. The host's power does not
// change.
func (l *Lab) BMCFail(host string) error { return l.bmcFault("bmc-fail", host, true) }

// BMCHeal lets host's failed BMC answer again (SIGCONT).
func (l *Lab) BMCHeal(host string) error { return l.bmcFault("bmc-heal", host, false) }

func (l *Lab) bmcFault(op, host string, fail bool) error {
	return l.wrap(op, update(l.name, func(s *state) error {
		h, err := s.host(host)
		if err != nil {
			return err
		}
		if h.BMC == nil {
			return fmt.Errorf("%w (fix: vigil lab up without --no-bmc)", ErrNoBMC)
		}
		sig := syscall.SIGCONT
		if fail {
			sig = syscall.SIGSTOP
		}
		if err := signalBMC(s, h, sig); err != nil {
			return err
		}
		h.BMC.Failed = fail
		return nil
	}))
}

// BMCStatus is a host's BMC in a Status.
type BMCStatus struct {
	// Addr is the BMC's address for IPMI over LAN.
	Addr string
	// Running is false once ipmi_sim exited.
	Running bool
	// Failed: stopped by BMCFail, it answers nothing.
	Failed bool
	// Power is what the BMC reads (or would read, when failed): on while
	// its power process runs.
	Power Power
}

// String writes the BMC as "10.100.0.1:6231 ok on", "... failed on" or
// "... not running".
func (b *BMCStatus) String() string {
	switch {
	case b == nil:
		return "-"
	case !b.Running:
		return b.Addr + " not running"
	case b.Failed:
		return b.Addr + " failed " + string(b.Power)
	}
	return b.Addr + " ok " + string(b.Power)
}

// bmcStatus reads h's BMC from /proc: ipmi_sim reads on while it has a
// child, its power process.
func bmcStatus(s *state, h *hostState) *BMCStatus {
	b := h.BMC
	st := &BMCStatus{Addr: netip.AddrPortFrom(isolationAddr(0), uint16(b.Port)).String(), Failed: b.Failed, Power: PowerOff}
	st.Running = isBMCProcess(s, b.PID)
	if st.Running && len(children(b.PID)) > 0 {
		st.Power = PowerOn
	}
	return st
}
