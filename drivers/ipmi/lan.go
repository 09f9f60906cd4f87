//go:build !vigil_noipmilan

package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"
)

// resolve fills in the defaults and checks the options.
func (o LANOptions) resolve() (LANOptions, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = DefaultSessionIdle
	}
	switch o.Privilege {
	case 0:
		o.Privilege = PrivilegeAdministrator
	case PrivilegeAdministrator, PrivilegeOperator:
	default:
		return o, fmt.Errorf("privilege %d: ask for operator or administrator", uint8(o.Privilege))
	}
	suites, err := resolveSuites(o.CipherSuites)
	o.CipherSuites = suites
	return o, err
}

// LAN is a BMC reached over the network with IPMI 2.0 (RMCP+) sessions,
// through github.com/bougou/go-ipmi, whose answers must carry the right
// integrity code (see integrity). Its methods are safe for concurrent
// use; requests go one at a time. A session the BMC dropped (its idle
// timeout, a BMC reboot) is replaced transparently: after SessionIdle
// without use, and once after a request in an established session went
// unanswered.
type LAN struct {
	addr string // host:port
	host string
	port int
	cred Credentials
	opts LANOptions

	mu       sync.Mutex
	c        *client.Client
	conn     *countingConn // c's socket
	suite    int
	lastUsed time.Time
	closed   bool
}

var _ BMC = (*LAN)(nil)

// DialLAN sets up a session with the BMC at addr ("host", "host:port",
// "[v6addr]:port"; the port defaults to 623) and returns it; the error is
// an *OpError of op "connect". The cipher suite is negotiated: the BMC is
// asked which suites it offers, and the first of opts.CipherSuites that it
// offers is used (CipherSuite says which).
func DialLAN(ctx context.Context, addr string, cred Credentials, opts LANOptions) (*LAN, error) {
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, opError("connect", addr, err)
	}
	l := &LAN{addr: net.JoinHostPort(host, strconv.Itoa(port)), host: host, port: port, cred: cred}
	if _, err := cred.Check(); err != nil {
		return nil, opError("connect", l.addr, fmt.Errorf("%w: %w", ErrAuth, err))
	}
	if l.opts, err = opts.resolve(); err != nil {
		return nil, opError("connect", l.addr, err)
	}
	if err := l.connect(ctx); err != nil {
		return nil, opError("connect", l.addr, err)
	}
	return l, nil
}

// Addr is the BMC's host:port.
func (l *LAN) Addr() string { return l.addr }

// CipherSuite is the RMCP+ cipher suite of the current session.
func (l *LAN) CipherSuite() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.suite
}

// PowerStatus reads the chassis power state (Get Chassis Status).
func (l *LAN) PowerStatus(ctx context.Context) (bool, error) {
	var on bool
	err := l.do(ctx, "power status", func(c *client.Client) error {
		res, err := c.GetChassisStatus(ctx)
		if err != nil {
			return completion(types.CommandGetChassisStatus, err)
		}
		on = res.PowerIsOn
		return nil
	})
	return on, err
}

// PowerOff asks for a hard power-off (Chassis Control, power down).
func (l *LAN) PowerOff(ctx context.Context) error { return l.control(ctx, controlPowerDown) }

// PowerOn asks for power on (Chassis Control, power up).
func (l *LAN) PowerOn(ctx context.Context) error { return l.control(ctx, controlPowerUp) }

// PowerCycle asks for a power cycle (Chassis Control, power cycle).
func (l *LAN) PowerCycle(ctx context.Context) error { return l.control(ctx, controlCycle) }

func (l *LAN) control(ctx context.Context, action uint8) error {
	return l.do(ctx, controlName(action), func(c *client.Client) error {
		_, err := c.ChassisControl(ctx, chassis.ChassisControl(action))
		return completion(types.CommandChassisControl, err)
	})
}

// Probe reads the BMC's identity (Get Device ID) in a session, so it also
// proves the credentials; the session's cipher suite is in the Info.
func (l *LAN) Probe(ctx context.Context) (Info, error) {
	var info Info
	err := l.do(ctx, "probe", func(c *client.Client) error {
		res, err := c.GetDeviceID(ctx)
		if err != nil {
			return completion(types.CommandGetDeviceID, err)
		}
		info = deviceInfo(res)
		return nil
	})
	info.CipherSuite = l.CipherSuite()
	return info, err
}

// Close closes the session (Close Session, waiting at most Timeout for the
// BMC's answer) and the socket. Later calls fail with ErrClosed; a second
// Close returns nil.
func (l *LAN) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	n0 := l.conn.received()
	err := l.c.Close(ctx)
	err = classify(err, l.conn.received() > n0, l.waited())
	l.c, l.conn = nil, nil
	return opError("close", l.addr, err)
}

// do runs fn in the session, setting one up first if there is none or the
// current one sat idle too long, and once more in a new session if fn went
// unanswered in an established one.
func (l *LAN) do(ctx context.Context, op string, fn func(*client.Client) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return opError(op, l.addr, ErrClosed)
	}
	if l.c != nil && time.Since(l.lastUsed) > l.opts.SessionIdle {
		l.retire(false)
	}
	fresh := l.c == nil
	if fresh {
		if err := l.connect(ctx); err != nil {
			return opError(op, l.addr, err)
		}
	}
	err := l.run(fn)
	if err != nil && !fresh && errors.Is(err, ErrUnreachable) && ctx.Err() == nil {
		// A BMC silently drops requests in a session it no longer knows.
		l.retire(true)
		if cerr := l.connect(ctx); cerr != nil {
			if errors.Is(cerr, ErrUnreachable) {
				return opError(op, l.addr, err) // still no answer: say so of the request
			}
			return opError(op, l.addr, cerr)
		}
		err = l.run(fn)
	}
	if err == nil {
		l.lastUsed = time.Now()
	}
	return opError(op, l.addr, err)
}

// run calls fn in the current session and classifies its error.
func (l *LAN) run(fn func(*client.Client) error) error {
	n0 := l.conn.received()
	err := fn(l.c)
	return classify(err, l.conn.received() > n0, l.waited())
}

func (l *LAN) waited() string {
	return fmt.Sprintf("in %d attempt(s) of %v", 1+l.opts.Retries, l.opts.Timeout)
}

// retire lets go of the current session. A session presumed dead only has
// its socket closed; an idle one is closed politely in the background,
// bounded by Timeout, so that BMCs that never expire sessions do not run
// out of them.
func (l *LAN) retire(dead bool) {
	c := l.c
	l.c, l.conn = nil, nil
	if dead {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // no Close Session: only the socket is closed
		_ = c.Close(ctx)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
		defer cancel()
		_ = c.Close(ctx)
	}()
}

// connect negotiates the cipher suite and sets up a session.
func (l *LAN) connect(ctx context.Context) error {
	suites, err := l.offeredSuites(ctx)
	if err != nil {
		return err
	}
	var refused []error
	for _, s := range suites {
		err := l.session(ctx, s)
		if err == nil {
			return nil
		}
		var se *StatusError
		if errors.Is(err, ErrAuth) || errors.Is(err, ErrUnreachable) || ctx.Err() != nil ||
			errors.As(err, &se) && !errors.Is(err, ErrCipherSuite) {
			return err
		}
		// Refused (or answered with something unreadable): the next one.
		refused = append(refused, err)
	}
	return fmt.Errorf("%w: the BMC refused cipher suites %v: %w", ErrCipherSuite, suites, errors.Join(refused...))
}

// offeredSuites is the suites to try: those of opts.CipherSuites that the
// BMC offers, or all of them when it cannot say.
func (l *LAN) offeredSuites(ctx context.Context) ([]int, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "udp", l.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer conn.Close()
	offered, err := querySuites(ctx, conn, l.opts.Timeout, 1+l.opts.Retries)
	switch {
	case errors.Is(err, errNoAnswer):
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	case err != nil && ctx.Err() != nil:
		return nil, err
	case err != nil:
		// It answered, but cannot list its suites: try ours in order.
		return l.opts.CipherSuites, nil
	}
	want := pickSuites(l.opts.CipherSuites, offered)
	if len(want) == 0 {
		return nil, fmt.Errorf("%w: the BMC offers cipher suites %v, none of %v", ErrCipherSuite, offered, l.opts.CipherSuites)
	}
	return want, nil
}

// session sets up an RMCP+ session with cipher suite id: Open Session,
// RAKP 1 to 4 and Set Session Privilege Level, as go-ipmi's Connect does
// but step by step, so that each step's error keeps its code.
func (l *LAN) session(ctx context.Context, id int) error {
	c, err := client.NewClient(l.host, l.port, l.cred.User, l.cred.Password)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAuth, err)
	}
	d := &dialer{check: newIntegrity(id, l.cred.Password)}
	c.WithTimeout(l.opts.Timeout).WithRetry(l.opts.Retries).WithUDPProxy(d).
		WithCipherSuiteID(types.CipherSuiteID(id)).WithMaxPrivilegeLevel(types.PrivilegeLevel(l.opts.Privilege))
	step := func(what string, f func() error) error {
		n0 := d.conn.received()
		if err := f(); err != nil {
			return fmt.Errorf("cipher suite %d: %s: %w", id, what, classify(err, d.conn.received() > n0, l.waited()))
		}
		return nil
	}
	err = step("Open Session", func() error { _, err := c.OpenSession(ctx); return err })
	if err == nil {
		err = step("RAKP 1", func() error { _, err := c.RAKPMessage1(ctx); return err })
	}
	if err == nil {
		err = step("RAKP 3", func() error { _, err := c.RAKPMessage3(ctx); return err })
	}
	if err == nil {
		err = step("Set Session Privilege Level", func() error {
			_, err := c.SetSessionPrivilegeLevel(ctx, types.PrivilegeLevel(l.opts.Privilege))
			err = completion(types.CommandSetSessionPrivilegeLevel, err)
			var ce *CompletionError
			if errors.As(err, &ce) && (ce.Code == 0x80 || ce.Code == 0x81) {
				return fmt.Errorf("%w: the user may not have the %v privilege: %w", ErrAuth, l.opts.Privilege, ce)
			}
			return err
		})
	}
	if err != nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the session is not up: close the socket only
		_ = c.Close(ctx)
		return err
	}
	l.c, l.conn, l.suite, l.lastUsed = c, d.conn, id, time.Now()
	return nil
}
