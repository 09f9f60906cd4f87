//go:build !vigil_noipmilan

package cli

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/drivers/ipmi/ipmitest"
)

// faWorld is a test world for the fence agent: a fake BMC, a fake clock
// that sleeping moves, and a record of what was dialled.
type faWorld struct {
	bmc     *ipmitest.Fake
	dialErr error
	now     time.Time
	slept   []time.Duration
	addr    string
	cred    ipmi.Credentials
	opts    ipmi.LANOptions
	dials   int
}

func newFAWorld() *faWorld {
	w := &faWorld{bmc: ipmitest.New(), now: time.Unix(1_000_000, 0)}
	w.bmc.SetClock(func() time.Time { return w.now })
	return w
}

func (w *faWorld) env(stdin string) faEnv {
	return faEnv{
		stdin: strings.NewReader(stdin),
		dial: func(_ context.Context, addr string, cred ipmi.Credentials, opts ipmi.LANOptions) (ipmi.BMC, error) {
			w.dials++
			w.addr, w.cred, w.opts = addr, cred, opts
			if w.dialErr != nil {
				return nil, w.dialErr
			}
			return w.bmc, nil
		},
		loadCreds: ipmi.LoadCredentials,
		runScript: func(_ context.Context, script string) (string, error) {
			if script == "fail" {
				return "", errors.New("password_script: exit status 1")
			}
			return "from-" + script, nil
		},
		now: func() time.Time { return w.now },
		sleep: func(_ context.Context, d time.Duration) error {
			w.slept = append(w.slept, d)
			w.now = w.now.Add(d)
			return nil
		},
	}
}

const faBase = "ip=10.9.0.2\nusername=fence\npassword=pw-9Vq\n"

func TestFenceAgentActions(t *testing.T) {
	tests := []struct {
		name   string
		stdin  string
		args   []string
		setup  func(*faWorld)
		code   int
		stdout string
		stderr string // a part of stderr
		calls  []string
		on     bool // the power afterwards
	}{
		{name: "status on", stdin: faBase + "action=status\n", code: 0, stdout: "Status: ON\n", calls: []string{"status", "close"}, on: true},
		{name: "status off", stdin: faBase + "action=status\n", setup: func(w *faWorld) { w.bmc.SetOn(false) }, code: 2, stdout: "Status: OFF\n", calls: []string{"status", "close"}},
		{name: "status unreadable", stdin: faBase + "action=status\n", setup: func(w *faWorld) { w.bmc.Fail(ipmitest.OpStatus, errors.New("boom")) },
			code: 1, stderr: "ERROR: Failed: Unable to obtain correct plug status or plug is not available: ipmi: power status ipmitest: boom", on: true},
		{name: "monitor", stdin: faBase + "action=monitor\n", code: 0, calls: []string{"status", "close"}, on: true},
		{name: "old option= spelling", stdin: faBase + "option=off\n", code: 0, stdout: "Success: Powered OFF\n", calls: []string{"status", "off", "status", "close"}},
		{name: "off", stdin: faBase + "action=off\n", code: 0, stdout: "Success: Powered OFF\n", calls: []string{"status", "off", "status", "close"}},
		{name: "off already off", stdin: faBase + "action=off\n", setup: func(w *faWorld) { w.bmc.SetOn(false) }, code: 0, stdout: "Success: Already OFF\n", calls: []string{"status", "close"}},
		{name: "off slowly", stdin: faBase + "action=off\npower_timeout=10\n", setup: func(w *faWorld) { w.bmc.SetOffDelay(2500 * time.Millisecond) },
			code: 0, stdout: "Success: Powered OFF\n", calls: []string{"status", "off", "status", "status", "status", "status", "close"}},
		{name: "off liar", stdin: faBase + "action=off\npower_timeout=3\n", setup: func(w *faWorld) { w.bmc.SetLiar(true) },
			code: 1, stderr: "ERROR: Failed: Timed out waiting to power OFF: 4 reads in 3s, it still reads on", on: true,
			calls: []string{"status", "off", "status", "status", "status", "status", "close"}},
		{name: "off refused", stdin: faBase + "action=off\n", setup: func(w *faWorld) {
			w.bmc.Fail(ipmitest.OpOff, &ipmi.CompletionError{Command: "Chassis Control", Code: 0xd4, Text: "insufficient privilege"})
		}, code: 1, stderr: "ERROR: Failed: power off: ipmi: power off ipmitest: Chassis Control answered completion code 0xd4", on: true},
		{name: "off unreachable", stdin: faBase + "action=off\n", setup: func(w *faWorld) {
			w.dialErr = &ipmi.OpError{Op: "connect", BMC: "10.9.0.2:623", Err: ipmi.ErrUnreachable}
		}, code: 1, stderr: "ERROR: Unable to connect/login to fencing device: ipmi: connect 10.9.0.2:623: BMC unreachable", on: true},
		{name: "off refused credentials", stdin: faBase + "action=off\n", setup: func(w *faWorld) {
			w.dialErr = &ipmi.OpError{Op: "connect", BMC: "10.9.0.2:623", Err: ipmi.ErrAuth}
		}, code: 1, stderr: "Unable to connect/login to fencing device", on: true},
		{name: "on", stdin: faBase + "action=on\n", setup: func(w *faWorld) { w.bmc.SetOn(false) }, code: 0, stdout: "Success: Powered ON\n", calls: []string{"status", "on", "status", "close"}, on: true},
		{name: "on already on", stdin: faBase + "action=on\n", code: 0, stdout: "Success: Already ON\n", calls: []string{"status", "close"}, on: true},
		{name: "reboot", stdin: faBase, code: 0, stdout: "Success: Rebooted\n", calls: []string{"status", "off", "status", "on", "status", "close"}, on: true},
		{name: "reboot of a host that is off", stdin: faBase + "action=reboot\n", setup: func(w *faWorld) { w.bmc.SetOn(false) },
			code: 0, stdout: "Success: Rebooted\n", calls: []string{"status", "on", "status", "close"}, on: true},
		{name: "reboot that does not come back", stdin: faBase + "action=reboot\n", setup: func(w *faWorld) { w.bmc.Fail(ipmitest.OpOn, errors.New("boom")) },
			code: 0, stdout: "Success: Rebooted\n", stderr: "ERROR: the host was fenced (it read off) but did not come back on: Failed: power on: ipmi: power on ipmitest: boom"},
		{name: "reboot liar", stdin: faBase + "action=reboot\npower_timeout=1\n", setup: func(w *faWorld) { w.bmc.SetLiar(true) },
			code: 1, stderr: "Timed out waiting to power OFF", on: true, calls: []string{"status", "off", "status", "status", "close"}},
		{name: "list", stdin: faBase + "action=list\n", code: 0, on: true},
		{name: "validate-all", stdin: faBase + "action=validate-all\n", code: 0, on: true},
		{name: "validate-all without a password", stdin: "ip=a\nusername=b\naction=validate-all\n", code: 1, stderr: "You have to enter password or password script", on: true},
		{name: "command line", args: []string{"-a", "10.9.0.2", "--username=fence", "-ppw-9Vq", "--action", "off", "-P", "-C", "3"},
			code: 0, stdout: "Success: Powered OFF\n", calls: []string{"status", "off", "status", "close"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newFAWorld()
			if tt.setup != nil {
				tt.setup(w)
			}
			var stdout, stderr bytes.Buffer
			code := w.env(tt.stdin).run(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, &stdout, &stderr)
			}
			if stdout.String() != tt.stdout {
				t.Errorf("stdout %q, want %q", &stdout, tt.stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderr) || (tt.stderr == "" && stderr.Len() > 0) {
				t.Errorf("stderr %q, want %q", &stderr, tt.stderr)
			}
			if tt.calls != nil && !slices.Equal(w.bmc.Calls(), tt.calls) {
				t.Errorf("BMC calls %v, want %v", w.bmc.Calls(), tt.calls)
			}
			if w.bmc.On() != tt.on {
				t.Errorf("power on = %v, want %v", w.bmc.On(), tt.on)
			}
			if strings.Contains(stdout.String()+stderr.String(), "pw-9Vq") {
				t.Error("the password was printed")
			}
		})
	}
}
