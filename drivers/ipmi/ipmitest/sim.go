//go:build unix

package ipmitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
)

// Sim is OpenIPMI's ipmi_sim serving one BMC on 127.0.0.1, the BMC the
// driver is checked against that shares no code with it: its chassis is on
// while its start command (a sleep) runs, and a power-off SIGTERMs that.
// It answers lanplus with cipher suites 0 to 14 (so 3, never 17).
type Sim struct {
	addr string
	port int
	cred ipmi.Credentials
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// LookSim reports whether ipmi_sim and ipmitool are installed (Debian
// package openipmi and ipmitool); the error says how to install them.
func LookSim() error {
	for _, bin := range []string{"ipmi_sim", "ipmitool"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install openipmi ipmitool): %w", bin, err)
		}
	}
	return nil
}

// simStart bounds the wait for ipmi_sim to answer.
const simStart = 5 * time.Second

// SimOptions configure StartSim. The zero value starts the chassis on.
type SimOptions struct {
	// Off starts the chassis off: the start command runs at power on.
	Off bool
}

// StartSim runs ipmi_sim with its configuration, state and log in dir
// (which must exist), user "admin" password "secret", and waits until it
// answers a session. Close stops it and its start command.
func StartSim(dir string, opts SimOptions) (*Sim, error) {
	if err := LookSim(); err != nil {
		return nil, err
	}
	port, err := freePort("udp")
	if err != nil {
		return nil, err
	}
	serial, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	s := &Sim{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port: port, dir: dir,
		cred: ipmi.Credentials{User: "admin", Password: "secret"}, done: make(chan struct{})}
	conf := fmt.Sprintf(`name "vigiltest"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 %d
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  serial 15 127.0.0.1 %d codec VM ipmb 0x20
  startcmd "sleep 100000"
  startnow %v
  poweroff_wait 1
  kill_wait 1
  user 2 true "%s" "%s" admin 10 none md2 md5 straight
`, port, serial, !opts.Off, s.cred.User, s.cred.Password)
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\nmc_enable 0x20\n"
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return nil, err
	}
	for name, text := range map[string]string{"lan.conf": conf, "host.emu": emu} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	log, err := os.Create(filepath.Join(dir, "ipmi_sim.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	s.cmd = exec.Command("ipmi_sim", "-c", "lan.conf", "-f", "host.emu", "-s", "state", "-n")
	s.cmd.Dir, s.cmd.Stdout, s.cmd.Stderr = dir, log, log
	// Its own process group, so that Close also ends the start command.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("ipmi_sim: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(); err != nil {
		s.Close()
		out, _ := os.ReadFile(log.Name())
		return nil, fmt.Errorf("ipmi_sim: %w\n%s", err, bytes.TrimSpace(out))
	}
	return s, nil
}

// waitReady polls until a session can be set up, within simStart.
func (s *Sim) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), simStart)
	defer cancel()
	for {
		l, err := ipmi.DialLAN(ctx, s.addr, s.cred, ipmi.LANOptions{Timeout: 50 * time.Millisecond, Retries: ipmi.NoRetries, CipherSuites: []int{3}})
		if err == nil {
			return l.Close()
		}
		select {
		case <-s.done:
			return errors.New("exited at start")
		case <-ctx.Done():
			return fmt.Errorf("no session within %v: %w", simStart, err)
		default:
		}
	}
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr is the BMC's host:port.
func (s *Sim) Addr() string { return s.addr }

// Credentials are the BMC user's.
func (s *Sim) Credentials() ipmi.Credentials { return s.cred }

// Ipmitool runs ipmitool against the BMC (lanplus, cipher suite 3) with
// args, as "chassis", "power", "status", and returns its trimmed output.
func (s *Sim) Ipmitool(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-U", s.cred.User, "-P", s.cred.Password, "-N", "1", "-R", "2"}, args...)
	out, err := exec.CommandContext(ctx, "ipmitool", full...).CombinedOutput()
	out = bytes.TrimSpace(out)
	if err != nil {
		return string(out), fmt.Errorf("ipmitool %v: %w: %s", args, err, out)
	}
	return string(out), nil
}

// Close kills ipmi_sim and its start command (its process group) and
// waits for ipmi_sim to exit.
func (s *Sim) Close() error {
	if s.cmd.Process == nil {
		return nil
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(simStart):
		return errors.New("ipmi_sim did not exit")
	}
	return nil
}
