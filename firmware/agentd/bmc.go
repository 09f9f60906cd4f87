package agentd

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

// Defaults of the agent's use of its peers' BMCs.
const (
	// DefaultBMCProbe is how often the agent checks each peer's BMC, so
	// that a broken one is reported before a fence needs it.
	DefaultBMCProbe = time.Minute
	// bmcRequestTimeout bounds one BMC request, the dial included; the
	// fence reads the power state back every bmc_poll and counts
	// fence_timeout around it all.
	bmcRequestTimeout = 3 * time.Second
)

// DialBMC opens an IPMI session with the BMC at addr.
type DialBMC func(ctx context.Context, addr string, cred ipmi.Credentials) (ipmi.BMC, error)

// agentLAN are the agent's IPMI LAN options. A fence is in a hurry: an
// answer waits 500 ms and a request is sent twice, so a session the BMC
// dropped (a BMC reset, a restarted BMC) costs 1 s before the driver
// tries a new one, within bmcRequestTimeout; the fence itself asks again
// every bmc_poll.
var agentLAN = ipmi.LANOptions{Timeout: 500 * time.Millisecond, Retries: 1}

// DialLAN is the real DialBMC: IPMI over LAN (RMCP+).
func DialLAN(ctx context.Context, addr string, cred ipmi.Credentials) (ipmi.BMC, error) {
	l, err := ipmi.DialLAN(ctx, addr, cred, agentLAN)
	if err != nil {
		return nil, err // not a nil *LAN in a non-nil interface
	}
	return l, nil
}

// BMCStatus is what the agent knows of one peer's BMC, for `vigil status`.
type BMCStatus struct {
	Host    string
	Addr    string
	Checked time.Time     // the last probe or request; zero: never
	Since   time.Duration // how long ago that was, when the status was taken (-1: never)
	OK      bool
	Err     string // why it is not OK
	Cipher  int    // the RMCP+ cipher suite of the session, when known
}

// bmcConn is one peer's BMC: a session opened on first use and again after
// an error, one request at a time, and what the last exchange found.
type bmcConn struct {
	host    int
	name    string
	addr    string
	cred    ipmi.Credentials
	credErr error // the credentials cannot be used: every request fails with it
	dial    DialBMC

	mu sync.Mutex // one request at a time
	c  ipmi.BMC
	// cancelled counts the core's BMCCancel requests: a request made
	// before the latest one, still waiting for mu, is dropped unsent.
	cancelled atomic.Uint64

	hmu    sync.Mutex
	health BMCStatus

	warmed bool // a probe went out when the host became suspect (loop only)
}

// openBMCs prepares a connection to the BMC of every peer that has one.
// A credentials file that cannot be used does not stop the agent: that
// peer is fenced through its lease proof, and the agent says why.
func (d *daemon) openBMCs(dial DialBMC) {
	d.bmcs = make([]*bmcConn, len(d.cfg.Hosts))
	for h, hc := range d.cfg.Hosts {
		if h == d.self || hc.BMC == "" {
			continue
		}
		b := &bmcConn{host: h, name: hc.Name, addr: config.BMCAddr(hc.BMC), dial: dial}
		b.health = BMCStatus{Host: hc.Name, Addr: b.addr}
		cred, warnings, err := ipmi.LoadCredentials(hc.BMCCredentials)
		for _, w := range warnings {
			d.log.Warn("BMC credentials: "+w, "component", "fence", "host", hc.Name)
		}
		if err != nil {
			b.credErr = fmt.Errorf("BMC credentials of %s: %w", hc.Name, err)
			b.health.Err = b.credErr.Error()
			d.log.Error("cannot use a peer's BMC credentials: fencing it will wait for its lease proof",
				"component", "fence", "host", hc.Name, "err", err)
		}
		b.cred = cred
		d.bmcs[h] = b
	}
}

// do runs f against the BMC within bmcRequestTimeout, dialling first when
// there is no session; after an error the session is dropped, and the
// next request dials again.
func (b *bmcConn) do(ctx context.Context, f func(context.Context, ipmi.BMC) error) error {
	_, err := b.doUnless(ctx, nil, f)
	return err
}

// doUnless is do, unless stale (nil: never) reports true once the request
// has its turn: then nothing is sent and dropped is true.
func (b *bmcConn) doUnless(ctx context.Context, stale func() bool, f func(context.Context, ipmi.BMC) error) (dropped bool, err error) {
	if b.credErr != nil {
		return false, b.credErr
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if stale != nil && stale() {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, bmcRequestTimeout)
	defer cancel()
	if b.c == nil {
		c, err := b.dial(ctx, b.addr, b.cred)
		if err != nil {
			return false, fmt.Errorf("BMC of %s (%s): %w", b.name, b.addr, err)
		}
		b.c = c
	}
	if err := f(ctx, b.c); err != nil {
		b.c.Close()
		b.c = nil
		return false, fmt.Errorf("BMC of %s (%s): %w", b.name, b.addr, err)
	}
	return false, nil
}

// close ends the session, if any.
func (b *bmcConn) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
}

// note records the outcome of an exchange and reports whether the BMC's
// health changed (and so deserves a log line).
func (b *bmcConn) note(at time.Time, err error, info *ipmi.Info) (changed bool, now BMCStatus) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	wasOK, had := b.health.OK, !b.health.Checked.IsZero()
	b.health.Checked, b.health.OK, b.health.Err = at, err == nil, ""
	if err != nil {
		b.health.Err = err.Error()
	}
	if info != nil {
		b.health.Cipher = info.CipherSuite
	}
	return !had || wasOK != b.health.OK, b.health
}

func (b *bmcConn) status() BMCStatus {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	return b.health
}

// bmcRequest carries out a BMC request of the core and answers it.
func (d *daemon) bmcRequest(host int, op cluster.BMCOp) {
	var b *bmcConn
	if host >= 0 && host < len(d.bmcs) {
		b = d.bmcs[host]
	}
	if b == nil {
		if op == cluster.BMCCancel {
			return // nothing was sent, so nothing waits
		}
		name := fmt.Sprintf("host %d", host)
		if host >= 0 && host < len(d.cfg.Hosts) {
			name = d.cfg.Hosts[host].Name
		}
		d.post(cluster.BMCReplied{Host: host, Op: op, Err: fmt.Errorf("no BMC configured for %s", name)})
		return
	}
	if op == cluster.BMCCancel {
		b.cancelled.Add(1)
		return
	}
	gen := b.cancelled.Load()
	go func() {
		var on bool
		// Dropped when its fence ended while it waited for its turn.
		stale := func() bool { return b.cancelled.Load() != gen }
		dropped, err := b.doUnless(context.Background(), stale, func(ctx context.Context, c ipmi.BMC) error {
			switch op {
			case cluster.BMCPowerOff:
				return c.PowerOff(ctx)
			case cluster.BMCStatus:
				var err error
				on, err = c.PowerStatus(ctx)
				return err
			}
			return fmt.Errorf("unknown BMC request %d", op)
		})
		if dropped {
			d.log.Info("BMC request dropped unsent: the fence that asked for it ended", "component", "fence", "host", b.name, "request", bmcOpName(op))
			return
		}
		d.noteBMC(b, err, nil)
		d.post(cluster.BMCReplied{Host: host, Op: op, On: on, Err: err})
	}()
}

// probeBMCs checks every peer's BMC now and then every interval until ctx
// ends: a session, the credentials, Get Device ID; nothing is powered.
func (d *daemon) probeBMCs(ctx context.Context, interval time.Duration) {
	for _, b := range d.bmcs {
		if b == nil || b.credErr != nil {
			continue // nothing to probe until the credentials are fixed
		}
		go func() {
			t := time.NewTimer(0)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if !d.probeBMC(ctx, b) {
					return
				}
				t.Reset(interval)
			}
		}()
	}
}

// warmBMCs probes, when this host coordinates, the BMC of every peer that
// just became suspect: a fence may follow within the grace, and a session
// the BMC dropped meanwhile (a BMC reset) is then found and replaced
// before the fence needs it rather than during it. Called by the loop
// after each tick.
func (d *daemon) warmBMCs() {
	coord := d.node.Coordinator() == d.self
	for h, b := range d.bmcs {
		if b == nil || b.credErr != nil {
			continue
		}
		switch v := d.node.Verdict(h); {
		case v == cluster.Alive:
			b.warmed = false
		case v == cluster.Suspect && coord && !b.warmed && d.probeCtx != nil:
			b.warmed = true
			go d.probeBMC(d.probeCtx, b)
		}
	}
}

// probeBMC probes b once and records what it found; false once ctx ended.
func (d *daemon) probeBMC(ctx context.Context, b *bmcConn) bool {
	var info ipmi.Info
	err := b.do(ctx, func(ctx context.Context, c ipmi.BMC) error {
		var err error
		info, err = c.Probe(ctx)
		return err
	})
	if ctx.Err() != nil {
		return false
	}
	d.noteBMC(b, err, &info)
	return true
}

// noteBMC records an exchange with b and logs when its health changes.
func (d *daemon) noteBMC(b *bmcConn, err error, info *ipmi.Info) {
	if err != nil {
		info = nil
	}
	changed, st := b.note(time.Now(), err, info)
	if !changed {
		return
	}
	if st.OK {
		args := []any{"component", "fence", "host", b.name, "bmc", b.addr}
		if st.Cipher != 0 {
			args = append(args, "cipher_suite", st.Cipher)
		}
		d.log.Info("BMC answers", args...)
		return
	}
	d.log.Warn("BMC does not answer: fencing its host would wait for its lease proof",
		"component", "fence", "host", b.name, "bmc", b.addr, "err", err)
}

// bmcStatuses lists the peers' BMCs for the status reply.
func (d *daemon) bmcStatuses() []BMCStatus {
	var out []BMCStatus
	for _, b := range d.bmcs {
		if b == nil {
			continue
		}
		st := b.status()
		st.Since = -1
		if !st.Checked.IsZero() {
			st.Since = time.Since(st.Checked).Round(time.Millisecond)
		}
		out = append(out, st)
	}
	return out
}

// closeBMCs ends every session.
func (d *daemon) closeBMCs() {
	for _, b := range d.bmcs {
		if b != nil {
			b.close()
		}
	}
}

func bmcOpName(op cluster.BMCOp) string {
	switch op {
	case cluster.BMCPowerOff:
		return "power-off"
	case cluster.BMCStatus:
		return "power-status"
	case cluster.BMCCancel:
		return "cancel"
	}
	return fmt.Sprintf("op %d", op)
}
