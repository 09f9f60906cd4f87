package ipmitest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/clock"
	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/hal/mock"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/vigil-ha/vigil/drivers/ipmi"
)

// ServerOptions configure NewServer. The zero value is a BMC with user
// "admin", password "secret", cipher suites 3 and 17, and the host on.
type ServerOptions struct {
	User, Password string
	// CipherSuites are the RMCP+ suites the BMC offers; each must be one
	// go-ipmi's server implements (0, 1, 2, 3, 15, 16, 17).
	CipherSuites []int
	// Privilege is the user's highest privilege (administrator when zero).
	Privilege ipmi.Privilege
	// Off starts the host powered off.
	Off bool
}

// Server is an IPMI 2.0 (RMCP+) BMC served in-process on a UDP port of
// 127.0.0.1: github.com/bougou/go-ipmi's reference server with a chassis
// whose power the test controls and can make fail. It needs no root.
type Server struct {
	addr    string
	cred    ipmi.Credentials
	b       *bmc.BMC
	srv     *server.Server
	conn    *gate
	chassis *chassisHAL
	clock   *skewClock
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewServer starts a BMC on 127.0.0.1 and a free port; Close stops it.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.User == "" {
		opts.User, opts.Password = "admin", "secret"
	}
	if len(opts.CipherSuites) == 0 {
		opts.CipherSuites = []int{3, 17}
	}
	if opts.Privilege == 0 {
		opts.Privilege = ipmi.PrivilegeAdministrator
	}
	var suites []types.CipherSuiteID
	for _, id := range opts.CipherSuites {
		if id < 0 || id > 0xff || !bmc.SupportedCipherSuite(types.CipherSuiteID(id)) {
			return nil, fmt.Errorf("ipmitest: cipher suite %d is not one the go-ipmi server implements", id)
		}
		suites = append(suites, types.CipherSuiteID(id))
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("ipmitest: %w", err)
	}
	s := &Server{
		addr:    pc.LocalAddr().String(),
		cred:    ipmi.Credentials{User: opts.User, Password: opts.Password},
		conn:    &gate{pc: pc},
		chassis: &chassisHAL{on: !opts.Off},
		clock:   &skewClock{},
		done:    make(chan struct{}),
	}
	info := bmc.DeviceInfo{DeviceID: 0x20, DeviceRevision: 1, FirmwareMajor: 1, FirmwareMinor: 0x02, IPMIVersion: 0x02,
		ManufacturerID: 0xb2a0, ProductID: 1, AdditionalDeviceSupport: 0x80}
	var guid [16]byte
	copy(guid[:], "vigil-ipmitest")
	s.b = bmc.New(info, guid, &serverHAL{HAL: mock.New(), ch: s.chassis}, bmc.WithClock(s.clock), bmc.WithCipherSuites(suites))
	user, err := s.b.Users.Add(2, opts.User)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("ipmitest: user %q: %w", opts.User, err)
	}
	user.SetPassword([]byte(opts.Password))
	user.Enabled = true
	user.ChannelAccess[1] = bmc.UserChannelAccess{MaxPrivilege: bmc.PrivilegeLevel(opts.Privilege), Enabled: true}
	s.srv = server.NewServer(s.b, s.conn)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ctx)
	}()
	return s, nil
}

// Addr is the BMC's host:port.
func (s *Server) Addr() string { return s.addr }

// Credentials are the BMC user's.
func (s *Server) Credentials() ipmi.Credentials { return s.cred }

// Close stops the BMC and waits for its serve loop.
func (s *Server) Close() error {
	s.cancel()
	err := s.srv.Close()
	<-s.done
	return err
}

// On is the chassis power state.
func (s *Server) On() bool { return s.chassis.state() }

// SetOn switches the chassis by hand.
func (s *Server) SetOn(on bool) {
	s.chassis.mu.Lock()
	defer s.chassis.mu.Unlock()
	s.chassis.on = on
}

// SetLiar makes power off succeed without the power going off.
func (s *Server) SetLiar(liar bool) {
	s.chassis.mu.Lock()
	defer s.chassis.mu.Unlock()
	s.chassis.liar = liar
}

// FailControl makes Chassis Control answer completion code code (0: work
// again), as a BMC that refuses power control.
func (s *Server) FailControl(code uint8) {
	s.chassis.mu.Lock()
	defer s.chassis.mu.Unlock()
	s.chassis.fail = types.CompletionCode(code)
}

// Controls are the Chassis Control actions done so far, in order: "off",
// "on", "cycle", "reset".
func (s *Server) Controls() []string {
	s.chassis.mu.Lock()
	defer s.chassis.mu.Unlock()
	return append([]string(nil), s.chassis.controls...)
}

// SetUnreachable makes the BMC drop every datagram, as one that is down or
// cut off.
func (s *Server) SetUnreachable(drop bool) { s.conn.drop.Store(drop) }

// Received is the number of datagrams the BMC received, dropped ones too.
func (s *Server) Received() int { return int(s.conn.received.Load()) }

// ExpireSessions makes the BMC forget every session, as one does after its
// idle timeout (or a reboot): requests in them are then dropped unanswered.
func (s *Server) ExpireSessions() {
	s.clock.skew.Add(int64(bmc.DefaultInactivityTimeout + bmc.DefaultInactivityTimeoutTolerance + time.Second))
	s.b.Sessions.EvictExpired()
	s.b.V15Sessions.EvictExpired()
}

// SetTamper makes the BMC pass each datagram it sends through f first (nil:
// none), as an attacker on the BMC's network would: f may change it in
// place.
func (s *Server) SetTamper(f func(p []byte)) { s.conn.tamper.Store(&f) }

// gate is the server's socket, which can drop everything or tamper.
type gate struct {
	pc       *net.UDPConn
	drop     atomic.Bool
	tamper   atomic.Pointer[func([]byte)]
	received atomic.Int64
}

func (g *gate) ReadFrom(buf []byte) (int, net.Addr, error) {
	for {
		n, addr, err := g.pc.ReadFrom(buf)
		if err != nil {
			return n, addr, err
		}
		g.received.Add(1)
		if !g.drop.Load() {
			return n, addr, nil
		}
	}
}

func (g *gate) WriteTo(p []byte, addr net.Addr) (int, error) {
	if g.drop.Load() {
		return len(p), nil
	}
	if f := g.tamper.Load(); f != nil && *f != nil {
		p = append([]byte(nil), p...)
		(*f)(p)
	}
	return g.pc.WriteTo(p, addr)
}

func (g *gate) Close() error        { return g.pc.Close() }
func (g *gate) LocalAddr() net.Addr { return g.pc.LocalAddr() }

// skewClock is the real clock moved forward by ExpireSessions.
type skewClock struct{ skew atomic.Int64 }

func (c *skewClock) Now() time.Time { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *skewClock) NewTimer(d time.Duration) clock.Timer {
	return clock.Real.NewTimer(d)
}
func (c *skewClock) NewTicker(d time.Duration) clock.Ticker {
	return clock.Real.NewTicker(d)
}

// serverHAL is go-ipmi's mock hardware with the test's chassis.
type serverHAL struct {
	*mock.HAL
	ch *chassisHAL
}

func (h *serverHAL) Chassis() hal.ChassisHAL { return h.ch }

// chassisHAL is a chassis whose power the test sets, that can lie about
// powering off or refuse control.
type chassisHAL struct {
	mock.Chassis // boot flags, identify, ...
	mu           sync.Mutex
	on, liar     bool
	fail         types.CompletionCode
	controls     []string
}

func (c *chassisHAL) state() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.on
}

func (c *chassisHAL) PowerState(context.Context) (bool, error) { return c.state(), nil }

func (c *chassisHAL) control(action string, f func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != 0 {
		return c.fail
	}
	c.controls = append(c.controls, action)
	f()
	return nil
}

func (c *chassisHAL) SetPower(_ context.Context, on bool) error {
	if on {
		return c.control("on", func() { c.on = true })
	}
	return c.control("off", func() { c.on = c.on && c.liar })
}

func (c *chassisHAL) PowerCycle(context.Context) error {
	c.mu.Lock()
	off := !c.on
	c.mu.Unlock()
	if off {
		return types.CodeNotSupported // D5h: not in the present state
	}
	return c.control("cycle", func() {})
}

func (c *chassisHAL) ColdReset(context.Context) error { return c.control("reset", func() {}) }
