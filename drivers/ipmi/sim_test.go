//go:build linux && !vigil_noipmilan

package ipmi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/drivers/ipmi/ipmitest"
	"github.com/vigil-ha/vigil/tools/privtest"
)

// The driver against OpenIPMI's ipmi_sim, a BMC that shares no code with
// it, cross-checked with ipmitool. Root only, as the lab tests; they fail
// instead of skipping under VIGIL_REQUIRE_PRIV=1.

func startSim(tb testing.TB, opts ipmitest.SimOptions) *ipmitest.Sim {
	tb.Helper()
	privtest.Require(tb)
	if err := ipmitest.LookSim(); err != nil {
		privtest.Unavailable(tb, err.Error())
	}
	s, err := ipmitest.StartSim(tb.TempDir(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// simOpts are LAN options for ipmi_sim on loopback.
var simOpts = ipmi.LANOptions{Timeout: 200 * time.Millisecond}

// waitPower reads the power state every 20 ms until it is want, for at
// most 5 s: ipmi_sim reads off once its start command has exited.
func waitPower(t *testing.T, l *ipmi.LAN, want bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		on, err := l.PowerStatus(ctx)
		if err == nil && on == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("power never read %v: last %v, %v", want, on, err)
		case <-tick.C:
		}
	}
}

func ipmitoolPower(t *testing.T, s *ipmitest.Sim) string {
	t.Helper()
	out, err := s.Ipmitool(context.Background(), "chassis", "power", "status")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSimFence(t *testing.T) {
	s := startSim(t, ipmitest.SimOptions{})
	ctx := context.Background()
	l, err := ipmi.DialLAN(ctx, s.Addr(), s.Credentials(), ipmi.LANOptions{}) // the defaults: 17, then 3
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// ipmi_sim lacks 17: the suites it offers are asked first, so 3 is
	// taken without a refused 17 (BenchmarkLANDial times it).
	if l.CipherSuite() != 3 {
		t.Errorf("negotiated cipher suite %d, want 3", l.CipherSuite())
	}
	info, err := l.Probe(ctx)
	want := ipmi.Info{CipherSuite: 3, DeviceID: 0, FirmwareRevision: "9.08", IPMIVersion: "2.0", ManufacturerID: 0x1291, ProductID: 0xf02}
	if err != nil || info != want {
		t.Errorf("Probe = %+v, %v; want %+v (the .emu file's mc_add)", info, err, want)
	}
	if on, err := l.PowerStatus(ctx); err != nil || !on {
		t.Fatalf("PowerStatus = %v, %v; want on", on, err)
	}
	if got := ipmitoolPower(t, s); got != "Chassis Power is on" {
		t.Fatalf("ipmitool: %q", got)
	}
	if err := l.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	waitPower(t, l, false)
	if got := ipmitoolPower(t, s); got != "Chassis Power is off" {
		t.Errorf("vigil powered off, ipmitool reads %q", got)
	}
	// And the other way: ipmitool powers on, vigil reads it.
	if _, err := s.Ipmitool(ctx, "chassis", "power", "on"); err != nil {
		t.Fatal(err)
	}
	waitPower(t, l, true)
}

func TestSimPowerOn(t *testing.T) {
	s := startSim(t, ipmitest.SimOptions{Off: true})
	ctx := context.Background()
	l, err := ipmi.DialLAN(ctx, s.Addr(), s.Credentials(), simOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if on, err := l.PowerStatus(ctx); err != nil || on {
		t.Fatalf("PowerStatus = %v, %v; want off", on, err)
	}
	if err := l.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	waitPower(t, l, true)
	if got := ipmitoolPower(t, s); got != "Chassis Power is on" {
		t.Errorf("vigil powered on, ipmitool reads %q", got)
	}
}

func TestSimRefusals(t *testing.T) {
	s := startSim(t, ipmitest.SimOptions{})
	good := s.Credentials()
	tests := []struct {
		name string
		cred ipmi.Credentials
		opts ipmi.LANOptions
		is   error
		msg  string
	}{
		{name: "wrong password", cred: ipmi.Credentials{User: good.User, Password: "wrong"}, opts: simOpts, is: ipmi.ErrAuth, msg: "does not match this user's password"},
		{name: "unknown user", cred: ipmi.Credentials{User: "nobody", Password: good.Password}, opts: simOpts, is: ipmi.ErrAuth, msg: "RMCP+ status 0x0d: Unauthorized name"},
		{name: "17 only", cred: good, opts: ipmi.LANOptions{Timeout: simOpts.Timeout, CipherSuites: []int{17}}, is: ipmi.ErrCipherSuite, msg: "the BMC offers cipher suites [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14], none of [17]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A refusal is an answer: never taken for a BMC that timed out.
			_, err := ipmi.DialLAN(context.Background(), s.Addr(), tt.cred, tt.opts)
			if !errors.Is(err, tt.is) || errors.Is(err, ipmi.ErrUnreachable) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %v, want %v saying %q", err, tt.is, tt.msg)
			}
		})
	}
}

// BenchmarkLANPowerStatus is one lanplus power-status round trip (Get
// Chassis Status, cipher suite 3) on an established session with ipmi_sim.
// BenchmarkLANDial opens a session with ipmi_sim at the default cipher
// suites (17, then 3): ipmi_sim lacks 17, and no time may go into asking
// for it.
func BenchmarkLANDial(b *testing.B) {
	s := startSim(b, ipmitest.SimOptions{})
	ctx := context.Background()
	for b.Loop() {
		l, err := ipmi.DialLAN(ctx, s.Addr(), s.Credentials(), ipmi.LANOptions{})
		if err != nil {
			b.Fatal(err)
		}
		l.Close()
	}
}

func BenchmarkLANPowerStatus(b *testing.B) {
	s := startSim(b, ipmitest.SimOptions{})
	ctx := context.Background()
	l, err := ipmi.DialLAN(ctx, s.Addr(), s.Credentials(), simOpts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.PowerStatus(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
