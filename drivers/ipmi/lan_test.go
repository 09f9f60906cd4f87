//go:build !vigil_noipmilan

package ipmi_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/drivers/ipmi/ipmitest"
)

// fast are LAN options for tests against the in-process BMC: an answer
// comes in well under a millisecond, a lost one costs 2 x 50 ms.
var fast = ipmi.LANOptions{Timeout: 50 * time.Millisecond, Retries: 1}

func newServer(t *testing.T, opts ipmitest.ServerOptions) *ipmitest.Server {
	t.Helper()
	s, err := ipmitest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t *testing.T, s *ipmitest.Server, opts ipmi.LANOptions) *ipmi.LAN {
	t.Helper()
	l, err := ipmi.DialLAN(context.Background(), s.Addr(), s.Credentials(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestLANPower(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, ipmitest.ServerOptions{})
	l := dial(t, s, fast)
	if on, err := l.PowerStatus(ctx); err != nil || !on {
		t.Fatalf("PowerStatus = %v, %v; want on", on, err)
	}
	if err := l.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	if s.On() {
		t.Error("the BMC's chassis is still on after PowerOff")
	}
	if on, err := l.PowerStatus(ctx); err != nil || on {
		t.Fatalf("PowerStatus after PowerOff = %v, %v; want off", on, err)
	}
	if err := l.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.PowerCycle(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Controls(), []string{"off", "on", "cycle"}; !slices.Equal(got, want) {
		t.Errorf("chassis controls = %v, want %v", got, want)
	}
	info, err := l.Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := ipmi.Info{CipherSuite: 17, DeviceID: 0x20, FirmwareRevision: "1.02", IPMIVersion: "2.0", ManufacturerID: 0xb2a0, ProductID: 1}
	if info != want {
		t.Errorf("Probe = %+v, want %+v", info, want)
	}
}

func TestLANLiar(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, ipmitest.ServerOptions{})
	s.SetLiar(true)
	l := dial(t, s, fast)
	if err := l.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	if on, err := l.PowerStatus(ctx); err != nil || !on {
		t.Errorf("PowerStatus after a power-off the BMC ignored = %v, %v; want on: the read-back is the only proof", on, err)
	}
}

func TestLANCipherSuite(t *testing.T) {
	tests := []struct {
		name   string
		offer  []int // the BMC's suites
		accept []int // LANOptions.CipherSuites
		want   int
		err    error
		msg    string
	}{
		{name: "17 preferred", offer: []int{3, 17}, want: 17},
		{name: "3 when 17 is missing", offer: []int{3}, want: 3},
		{name: "17 only", offer: []int{17}, want: 17},
		{name: "own order", offer: []int{3, 17}, accept: []int{3, 17}, want: 3},
		{name: "3 asked", offer: []int{3, 17}, accept: []int{3}, want: 3},
		{name: "none acceptable", offer: []int{1, 2}, err: ipmi.ErrCipherSuite, msg: "the BMC offers cipher suites [1 2], none of [17 3]"},
		{name: "unsafe suite 0 asked", offer: []int{3}, accept: []int{0}, msg: "cipher suite 0 has no authentication, no integrity check, no encryption"},
		{name: "unsafe suite 2 asked", offer: []int{3}, accept: []int{3, 2}, msg: "cipher suite 2 has no encryption"},
		{name: "RC4 asked", offer: []int{3}, accept: []int{4}, msg: "cipher suite 4 has no AES encryption"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, ipmitest.ServerOptions{CipherSuites: tt.offer})
			opts := fast
			opts.CipherSuites = tt.accept
			l, err := ipmi.DialLAN(context.Background(), s.Addr(), s.Credentials(), opts)
			if tt.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				if got := l.CipherSuite(); got != tt.want {
					t.Errorf("CipherSuite = %d, want %d", got, tt.want)
				}
				return
			}
			if err == nil {
				l.Close()
				t.Fatalf("DialLAN succeeded with suite %d, want an error", l.CipherSuite())
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("error %v does not match %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "17 or 3") {
				t.Errorf("error %q does not say %q and the fix", err, tt.msg)
			}
			if tt.err == nil && s.Received() != 0 {
				t.Errorf("the BMC got %d datagrams for a refused option, want none", s.Received())
			}
		})
	}
}

func TestLANAuth(t *testing.T) {
	s := newServer(t, ipmitest.ServerOptions{User: "fence", Password: "right-password"})
	op := newServer(t, ipmitest.ServerOptions{User: "op", Password: "pw", Privilege: ipmi.PrivilegeOperator})
	tests := []struct {
		name string
		s    *ipmitest.Server
		cred ipmi.Credentials
		priv ipmi.Privilege
		msg  string
	}{
		{name: "wrong password", s: s, cred: ipmi.Credentials{User: "fence", Password: "wrong"}, msg: "does not match this user's password"},
		// This BMC answers an unknown name as a wrong password, so that
		// names cannot be guessed; ipmi_sim says 0Dh (see sim_test.go).
		{name: "unknown user", s: s, cred: ipmi.Credentials{User: "nobody", Password: "right-password"}, msg: "does not match"},
		{name: "privilege above the user's", s: op, cred: op.Credentials(), msg: "0x0a"},
		{name: "no password", s: s, cred: ipmi.Credentials{User: "fence"}, msg: "no password"},
		{name: "long user", s: s, cred: ipmi.Credentials{User: strings.Repeat("u", 17), Password: "x"}, msg: "user name is 17 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fast
			opts.Privilege = tt.priv
			_, err := ipmi.DialLAN(context.Background(), tt.s.Addr(), tt.cred, opts)
			if !errors.Is(err, ipmi.ErrAuth) || errors.Is(err, ipmi.ErrUnreachable) {
				t.Fatalf("error %v: want ErrAuth only", err)
			}
			var oe *ipmi.OpError
			if !errors.As(err, &oe) || oe.Op != "connect" || oe.Fix == "" {
				t.Errorf("error %#v: want an *OpError of connect with a fix", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "right-password") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
	// The operator privilege is enough for power control.
	opts := fast
	opts.Privilege = ipmi.PrivilegeOperator
	l := dial(t, op, opts)
	if err := l.PowerOff(context.Background()); err != nil || op.On() {
		t.Errorf("PowerOff as operator: %v (on %v)", err, op.On())
	}
}

func TestLANUnreachable(t *testing.T) {
	s := newServer(t, ipmitest.ServerOptions{})
	s.SetUnreachable(true)
	closed, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	nobody := closed.LocalAddr().String()
	closed.Close()
	for _, addr := range []string{s.Addr(), nobody} {
		_, err := ipmi.DialLAN(context.Background(), addr, s.Credentials(), fast)
		if !errors.Is(err, ipmi.ErrUnreachable) || errors.Is(err, ipmi.ErrAuth) {
			t.Errorf("%s: error %v, want ErrUnreachable", addr, err)
		}
		if !strings.Contains(err.Error(), "UDP port") {
			t.Errorf("%s: error %q gives no fix", addr, err)
		}
		// Bounded by its retries, not by luck: each attempt of the
		// pre-session query goes out in both framings, then it gives up,
		// so it waited (1+Retries) x Timeout at most.
		if addr == s.Addr() {
			if got, want := s.Received(), 2*(1+fast.Retries); got != want {
				t.Errorf("%s: the BMC got %d datagrams, want %d: the retries are not bounded as set", addr, got, want)
			}
		}
	}
	// A context deadline bounds it too.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = ipmi.DialLAN(ctx, s.Addr(), s.Credentials(), ipmi.LANOptions{Timeout: time.Hour})
	if !errors.Is(err, ipmi.ErrUnreachable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want ErrUnreachable or the deadline", err)
	}
}

// TestLANSessionLost checks that a session the BMC forgot (its idle
// timeout, a reboot) is replaced without the caller noticing, and that a
// BMC that went away is reported once the new session fails too.
func TestLANSessionLost(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, ipmitest.ServerOptions{})
	l := dial(t, s, fast)
	if err := l.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	s.ExpireSessions()
	if on, err := l.PowerStatus(ctx); err != nil || on {
		t.Fatalf("PowerStatus in a session the BMC forgot = %v, %v; want off, in a new session", on, err)
	}

	s.SetUnreachable(true)
	err := l.PowerOn(ctx)
	if !errors.Is(err, ipmi.ErrUnreachable) {
		t.Fatalf("PowerOn of a BMC gone away: %v, want ErrUnreachable", err)
	}
	var oe *ipmi.OpError
	if !errors.As(err, &oe) || oe.Op != "power on" || oe.BMC != s.Addr() {
		t.Errorf("error %#v: want the *OpError of power on at %s", err, s.Addr())
	}
	s.SetUnreachable(false)
	if err := l.PowerOn(ctx); err != nil || !s.On() {
		t.Fatalf("PowerOn once the BMC is back: %v (on %v)", err, s.On())
	}
}

func TestLANSessionIdle(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, ipmitest.ServerOptions{})
	opts := fast
	opts.SessionIdle = time.Nanosecond // every request in a new session
	l := dial(t, s, opts)
	for range 3 {
		n := s.Received()
		if _, err := l.PowerStatus(ctx); err != nil {
			t.Fatal(err)
		}
		// Cipher suites (1 page, 2 framings), Open Session, RAKP 1 and 3,
		// Set Session Privilege Level, and the request: 7 datagrams, more
		// with the previous session's Close Session.
		if got := s.Received() - n; got < 7 {
			t.Errorf("%d datagrams for a request after the idle time, want a new session (7 or more)", got)
		}
	}
}

func TestLANCompletionCode(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, ipmitest.ServerOptions{})
	l := dial(t, s, fast)
	s.FailControl(0xd4)
	err := l.PowerOff(ctx)
	var ce *ipmi.CompletionError
	if !errors.As(err, &ce) || ce.Code != 0xd4 || ce.Command != "Chassis Control" {
		t.Fatalf("error %v: want a *CompletionError D4h of Chassis Control", err)
	}
	if !errors.Is(err, ipmi.ErrAuth) || !strings.Contains(err.Error(), "insufficient privilege") || !strings.Contains(err.Error(), "privilege on the LAN channel") {
		t.Errorf("error %q: want ErrAuth, the code's text and the fix", err)
	}
	s.FailControl(0xc0)
	err = l.PowerOn(ctx)
	if !errors.As(err, &ce) || ce.Code != 0xc0 || !ce.Busy() || errors.Is(err, ipmi.ErrAuth) || !strings.Contains(err.Error(), "Node busy") {
		t.Errorf("error %v: want a busy *CompletionError C0h", err)
	}
	s.FailControl(0)
	if err := l.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	// Power cycle of a host that is off: D5h.
	err = l.PowerCycle(ctx)
	if !errors.As(err, &ce) || ce.Code != 0xd5 || !strings.Contains(err.Error(), "ipmi: power cycle "+s.Addr()) {
		t.Errorf("error %v: want D5h from power cycle", err)
	}
}

func TestLANClose(t *testing.T) {
	s := newServer(t, ipmitest.ServerOptions{})
	l := dial(t, s, fast)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.PowerStatus(context.Background()); !errors.Is(err, ipmi.ErrClosed) {
		t.Errorf("PowerStatus after Close: %v, want ErrClosed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l = dial(t, s, fast)
	if _, err := l.PowerStatus(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("PowerStatus with a canceled context: %v", err)
	}
}

// flipPowerBit changes an in-session answer to Get Chassis Status as an
// attacker who cannot decrypt it can: flipping a bit of the AES-CBC IV
// flips the same bit of the first plaintext block, here the power state
// (byte 7 of the IPMI message: after the addresses, sequence, command and
// completion code). go-ipmi checks neither the integrity code nor the
// message's checksum: without vigil's check it reads this answer as off.
func flipPowerBit(p []byte) {
	const payload = 16 // RMCP and RMCP+ session headers
	if len(p) < payload+16 || p[4] != 0x06 || p[5]&0x3f != 0 || p[5]&0x80 == 0 {
		return // not an encrypted in-session IPMI answer
	}
	iv := p[payload : payload+16]
	iv[7] ^= 0x01
}

// TestLANForgedAnswer checks that an answer whose integrity code does not
// match is never taken, so that nobody on the BMC's network can forge the
// "off" that proves a fence.
func TestLANForgedAnswer(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, ipmitest.ServerOptions{})
	l := dial(t, s, fast)
	s.SetTamper(flipPowerBit)
	on, err := l.PowerStatus(ctx)
	if err == nil {
		t.Fatalf("PowerStatus took a forged answer: on = %v", on)
	}
	if !errors.Is(err, ipmi.ErrUnreachable) {
		t.Errorf("error %v, want ErrUnreachable: forged answers are dropped", err)
	}
	s.SetTamper(nil)
	if on, err := l.PowerStatus(ctx); err != nil || !on {
		t.Errorf("PowerStatus once the answers are genuine = %v, %v", on, err)
	}
}
