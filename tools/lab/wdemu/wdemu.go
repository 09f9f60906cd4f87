// Package wdemu emulates one watchdog per lab host: a device served on a
// unix stream socket with the semantics of the Linux watchdog API, whose
// expiry runs the host's Fire function (the lab power-kills the host).
//
//	s := wdemu.New([]wdemu.Host{{Name: "h1", Socket: dir + "/h1.wd", Fire: kill1}}, wdemu.Options{})
//	go s.Serve(ctx)
//	<-s.Ready()
//	// the host's agent opens "unix:" + dir + "/h1.wd" with drivers/watchdog
//
// The device, per host:
//
//	state     event                          next
//	disarmed  connect                        armed, default timeout
//	armed     timeout N / ping / V           armed, countdown restarted
//	armed     close after V (magic close)    disarmed
//	armed     close without V                armed: "unexpected close, not stopping watchdog"
//	armed     countdown reaches zero         disarmed, Fire runs once (the host was reset)
//	any       Disarm (lab powered it off/on) disarmed, connection dropped
//
// A second connection while one is open is refused with "err busy". The wire
// protocol is documented in drivers/watchdog (lab.go).
package wdemu

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Host is one lab host's watchdog.
type Host struct {
	// Name identifies the host in logs, Disarm and State.
	Name string
	// Socket is the path of the unix socket the device is served on.
	Socket string
	// Fire runs, on its own goroutine, when the host's watchdog expires.
	Fire func()
}

// Timer is a pending call of Clock.AfterFunc.
type Timer interface {
	// Stop cancels the call; it reports whether the call was still pending.
	Stop() bool
}

// Clock is the emulator's time source; tests drive a fake one.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Options configure a Server. The zero value is ready.
type Options struct {
	// Logf logs a device event; nil discards.
	Logf func(format string, args ...any)
	// Clock is the time source; nil is the real clock.
	Clock Clock
	// DefaultTimeout arms a device on open; 0 is 60 s.
	DefaultTimeout time.Duration
}

// DefaultTimeout arms a device on open unless Options say otherwise.
const DefaultTimeout = 60 * time.Second

// MaxTimeout is the longest timeout a device accepts, in whole seconds.
const MaxTimeout = 65535

// ErrServing is returned by a second call of Serve.
var ErrServing = errors.New("wdemu: server already served")

// Server serves the emulated watchdogs of a set of hosts.
type Server struct {
	opts  Options
	ready chan struct{}

	mu      sync.Mutex
	dogs    map[string]*dog
	order   []*dog
	started bool
}

// New returns a server for hosts; it serves nothing before Serve.
func New(hosts []Host, opts Options) *Server {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = DefaultTimeout
	}
	s := &Server{opts: opts, ready: make(chan struct{}), dogs: map[string]*dog{}}
	for _, h := range hosts {
		d := &dog{host: h, timeout: opts.DefaultTimeout}
		s.dogs[h.Name] = d
		s.order = append(s.order, d)
	}
	return s
}

// Ready is closed once Serve listens on every socket.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Disarm stops the host's watchdog and drops its connection: the lab powered
// the host off or on, so its device was reset. Unknown hosts are ignored.
func (s *Server) Disarm(host string) {
	s.mu.Lock()
	d := s.dogs[host]
	if d == nil {
		s.mu.Unlock()
		return
	}
	wasArmed := d.armed
	conn := d.stop()
	s.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	if wasArmed {
		s.opts.Logf("wdemu: %s: disarmed by the lab", host)
	}
}

// State reports whether the host's watchdog is armed, its timeout, and the
// time left before it fires (0 when disarmed). Unknown hosts are disarmed.
func (s *Server) State(host string) (armed bool, timeout, left time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dogs[host]
	if d == nil {
		return false, 0, 0
	}
	return d.armed, d.timeout, s.left(d)
}

// left returns the time before d fires. Callers hold s.mu.
func (s *Server) left(d *dog) time.Duration {
	if !d.armed {
		return 0
	}
	return max(d.deadline.Sub(s.opts.Clock.Now()), 0)
}

// arm (re)starts d's countdown with its timeout. Callers hold s.mu.
func (s *Server) arm(d *dog) {
	if d.timer != nil {
		d.timer.Stop()
	}
	d.gen++
	gen := d.gen
	d.armed = true
	d.deadline = s.opts.Clock.Now().Add(d.timeout)
	d.timer = s.opts.Clock.AfterFunc(d.timeout, func() { s.expire(d, gen) })
}

// expire fires d if the countdown gen is still the current one.
func (s *Server) expire(d *dog, gen uint64) {
	s.mu.Lock()
	if !d.armed || d.gen != gen {
		s.mu.Unlock()
		return
	}
	timeout := d.timeout
	d.timer = nil // it has run
	conn := d.stop()
	s.mu.Unlock()
	s.opts.Logf("wdemu: %s: watchdog expired after %v without a ping: resetting the host", d.host.Name, timeout)
	if conn != nil {
		conn.Close() // the host's processes die with it
	}
	if d.host.Fire != nil {
		go d.host.Fire()
	}
}

// dog is one host's device.
type dog struct {
	host Host

	// Guarded by Server.mu.
	armed    bool
	timeout  time.Duration
	deadline time.Time
	timer    Timer
	gen      uint64 // the current countdown; stale timers see another
	conn     closer // the open connection, if any
	magic    bool   // V was written: a close now disarms
}

type closer interface{ Close() error }

// stop disarms d and detaches its connection, which it returns for the
// caller to close outside the lock. Callers hold Server.mu.
func (d *dog) stop() closer {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.gen++
	d.armed = false
	d.magic = false
	conn := d.conn
	d.conn = nil
	return conn
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Serve listens on every host's socket, removing a stale socket file first,
// and serves the devices until ctx ends; it then stops every countdown,
// closes every connection and removes the sockets. It returns nil when ctx
// ends, or the error that kept it from listening.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return ErrServing
	}
	s.started = true
	s.mu.Unlock()

	ls, err := s.listen()
	if err != nil {
		return err
	}
	close(s.ready)

	var wg sync.WaitGroup
	for i, l := range ls {
		d := s.order[i]
		wg.Go(func() { s.accept(l, d, &wg) })
	}
	<-ctx.Done()
	for _, l := range ls {
		l.Close()
	}
	s.mu.Lock()
	var conns []closer
	for _, d := range s.order {
		if c := d.stop(); c != nil {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	return nil
}

// errorf formats an error that names the host.
func errorf(h Host, format string, args ...any) error {
	return fmt.Errorf("wdemu: host %s: "+format, append([]any{h.Name}, args...)...)
}

func secondsDuration(n int) time.Duration { return time.Duration(n) * time.Second }
