package agentd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/drivers/ipmi/ipmitest"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

// bmcRig is a daemon of host h1 in a cluster of h1..h4 whose peers' BMCs
// are fakes: h2's and h4's credentials are usable, h3's file is readable
// by others.
type bmcRig struct {
	d     *daemon
	fakes map[string]*ipmitest.Fake
	mu    sync.Mutex
	dials map[string]int
	down  map[string]bool // dials to these addresses fail
	logs  *strings.Builder
}

func newBMCRig(t *testing.T) *bmcRig {
	t.Helper()
	dir := t.TempDir()
	cred := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("user admin\npassword secret\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := &config.Config{Hosts: []config.Host{
		{Name: "h1", BMC: "10.9.0.1", BMCCredentials: cred("h1", 0o600)},
		{Name: "h2", BMC: "10.9.0.2", BMCCredentials: cred("h2", 0o600)},
		{Name: "h3", BMC: "10.9.0.3:6233", BMCCredentials: cred("h3", 0o644)},
		{Name: "h4", BMC: "10.9.0.4", BMCCredentials: cred("h4", 0o600)},
		{Name: "h5"},
	}}
	r := &bmcRig{fakes: map[string]*ipmitest.Fake{}, dials: map[string]int{}, down: map[string]bool{}, logs: &strings.Builder{}}
	var logMu sync.Mutex
	r.d = &daemon{cfg: cfg, self: 0, events: make(chan cluster.Event, 16),
		log: slog.New(slog.NewTextHandler(lockedWriter{&logMu, r.logs}, nil))}
	r.d.openBMCs(func(ctx context.Context, addr string, cred ipmi.Credentials) (ipmi.BMC, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.dials[addr]++
		if cred.User != "admin" || cred.Password != "secret" {
			return nil, errors.New("credentials not passed on")
		}
		if r.down[addr] {
			return nil, ipmi.ErrUnreachable
		}
		// A new session to the same BMC, whose power it keeps.
		f := ipmitest.New()
		if old := r.fakes[addr]; old != nil {
			f.SetOn(old.On())
		}
		r.fakes[addr] = f
		return f, nil
	})
	return r
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (r *bmcRig) reply(t *testing.T) cluster.BMCReplied {
	t.Helper()
	ev := <-r.d.events
	rep, ok := ev.(cluster.BMCReplied)
	if !ok {
		t.Fatalf("event %T; want a BMCReplied", ev)
	}
	return rep
}

// TestBMCRequests: the core's power-off and status requests reach the
// peer's BMC and are answered; a host without a BMC or with unusable
// credentials gets an error, and nothing is asked of any BMC for it.
func TestBMCRequests(t *testing.T) {
	r := newBMCRig(t)
	if r.d.bmcs[0] != nil || r.d.bmcs[4] != nil {
		t.Fatal("a BMC connection for this host itself or for a host without a BMC")
	}
	r.d.bmcRequest(1, cluster.BMCPowerOff)
	if rep := r.reply(t); rep.Err != nil || rep.Host != 1 || rep.Op != cluster.BMCPowerOff {
		t.Fatalf("power off: %+v", rep)
	}
	r.d.bmcRequest(1, cluster.BMCStatus)
	if rep := r.reply(t); rep.Err != nil || rep.On {
		t.Fatalf("status after the power-off: %+v; want off", rep)
	}
	if r.dials["10.9.0.2:623"] != 1 {
		t.Errorf("%d dials for two requests; want one session", r.dials["10.9.0.2:623"])
	}
	if r.dials["10.9.0.4:623"] != 0 {
		t.Error("h4's BMC was dialled")
	}

	r.d.bmcRequest(2, cluster.BMCPowerOff)
	rep := r.reply(t)
	if rep.Err == nil || !errors.Is(rep.Err, ipmi.ErrCredentialsPerm) || !strings.Contains(rep.Err.Error(), "h3") {
		t.Errorf("power off of h3 with a readable credentials file: %v; want the permissions error", rep.Err)
	}
	if r.dials["10.9.0.3:6233"] != 0 {
		t.Error("h3's BMC was dialled with credentials the agent refused")
	}
	r.d.bmcRequest(4, cluster.BMCPowerOff)
	if rep := r.reply(t); rep.Err == nil || !strings.Contains(rep.Err.Error(), "no BMC configured for h5") {
		t.Errorf("power off of h5: %v; want no BMC configured", rep.Err)
	}
	if !strings.Contains(r.logs.String(), "cannot use a peer's BMC credentials") {
		t.Errorf("h3's credentials were not reported at start:\n%s", r.logs)
	}
}

// TestBMCRedial: a failed request drops the session and the next one
// dials again; a BMC that cannot be dialled answers with an error that
// names it.
func TestBMCRedial(t *testing.T) {
	r := newBMCRig(t)
	r.d.bmcRequest(1, cluster.BMCStatus)
	if rep := r.reply(t); rep.Err != nil || !rep.On {
		t.Fatalf("status: %+v", rep)
	}
	f := r.fakes["10.9.0.2:623"]
	f.Fail(ipmitest.OpStatus, ipmi.ErrUnreachable)
	r.d.bmcRequest(1, cluster.BMCStatus)
	if rep := r.reply(t); !errors.Is(rep.Err, ipmi.ErrUnreachable) || !strings.Contains(rep.Err.Error(), "BMC of h2 (10.9.0.2:623)") {
		t.Fatalf("a failing status: %v", rep.Err)
	}
	if !f.Closed() {
		t.Error("the failed session was not closed")
	}
	r.mu.Lock()
	r.down["10.9.0.2:623"] = true
	r.mu.Unlock()
	r.d.bmcRequest(1, cluster.BMCStatus)
	if rep := r.reply(t); !errors.Is(rep.Err, ipmi.ErrUnreachable) {
		t.Fatalf("an undiallable BMC: %v", rep.Err)
	}
	r.mu.Lock()
	r.down["10.9.0.2:623"] = false
	r.mu.Unlock()
	r.d.bmcRequest(1, cluster.BMCStatus)
	if rep := r.reply(t); rep.Err != nil || !rep.On {
		t.Fatalf("after the BMC is back: %+v", rep)
	}
	if r.dials["10.9.0.2:623"] != 3 {
		t.Errorf("%d dials; want 3 (the first, the failed one, the one after)", r.dials["10.9.0.2:623"])
	}
}

// TestBMCProbes: probes find each BMC's health and cipher suite, a broken
// BMC is logged before any fence needs it, and the status lists them.
func TestBMCProbes(t *testing.T) {
	r := newBMCRig(t)
	r.down["10.9.0.4:623"] = true
	for _, b := range r.d.bmcs {
		if b != nil && b.credErr == nil && !r.d.probeBMC(context.Background(), b) {
			t.Fatal("a probe gave up")
		}
	}
	st := r.d.bmcStatuses()
	if len(st) != 3 {
		t.Fatalf("statuses %+v; want h2, h3 and h4", st)
	}
	if !st[0].OK || st[0].Since < 0 || st[0].Cipher != ipmitest.DefaultInfo.CipherSuite || st[0].Host != "h2" || st[0].Addr != "10.9.0.2:623" {
		t.Errorf("h2's BMC: %+v; want ok with the probe's cipher suite", st[0])
	}
	if st[1].OK || st[1].Since >= 0 || !strings.Contains(st[1].Err, "credentials") {
		t.Errorf("h3's BMC: %+v; want failing on its credentials, never checked", st[1])
	}
	if st[2].OK || st[2].Since < 0 || !strings.Contains(st[2].Err, "unreachable") {
		t.Errorf("h4's BMC: %+v; want failing, unreachable", st[2])
	}
	if f := r.fakes["10.9.0.2:623"]; f.Count(ipmitest.OpProbe) != 1 || f.Count(ipmitest.OpOff) != 0 {
		t.Errorf("h2's BMC calls %v; want one probe and no power", f.Calls())
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "BMC does not answer") || !strings.Contains(logs, "host=h4") || !strings.Contains(logs, "cipher_suite=17") {
		t.Errorf("the probes were not logged:\n%s", logs)
	}
	// A probe that finds nothing new says nothing more.
	r.logs.Reset()
	r.d.probeBMC(context.Background(), r.d.bmcs[1])
	if r.logs.Len() != 0 {
		t.Errorf("a second good probe logged %q", r.logs.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r.d.probeBMC(ctx, r.d.bmcs[1]) {
		t.Error("a probe under an ended context went on")
	}
}

// lineWriter sends every log line written to it.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// TestBMCCancelDropsQueued: a power-off that waits for its turn behind
// another exchange with the same BMC is dropped unsent when its fence ends
// meanwhile (BMCCancel), and answers nothing; a request made after the
// cancel goes out as usual.
func TestBMCCancelDropsQueued(t *testing.T) {
	r := newBMCRig(t)
	lines := make(lineWriter, 16)
	r.d.log = slog.New(slog.NewTextHandler(lines, nil))
	b := r.d.bmcs[1]
	b.mu.Lock() // an exchange in progress: the next request waits
	r.d.bmcRequest(1, cluster.BMCPowerOff)
	r.d.bmcRequest(1, cluster.BMCCancel)
	b.mu.Unlock()
	if l := <-lines; !strings.Contains(l, "BMC request dropped unsent") || !strings.Contains(l, "request=power-off") || !strings.Contains(l, "host=h2") {
		t.Fatalf("logged %q; want the power-off dropped", l)
	}
	select {
	case ev := <-r.d.events:
		t.Fatalf("a dropped request answered: %+v", ev)
	default:
	}
	if r.dials["10.9.0.2:623"] != 0 {
		t.Fatal("the BMC was dialled for a dropped request")
	}
	r.d.bmcRequest(1, cluster.BMCStatus)
	if rep := r.reply(t); rep.Err != nil || !rep.On || rep.Op != cluster.BMCStatus {
		t.Fatalf("status after the cancel: %+v; want on, answered", rep)
	}
	r.d.bmcRequest(1, cluster.BMCPowerOff)
	if rep := r.reply(t); rep.Err != nil || rep.Op != cluster.BMCPowerOff {
		t.Fatalf("a power-off after the cancel: %+v", rep)
	}
	if r.fakes["10.9.0.2:623"].On() {
		t.Fatal("a power-off made after the cancel was not carried out")
	}
	r.d.bmcRequest(4, cluster.BMCCancel) // no BMC: nothing to drop, no answer
	select {
	case ev := <-r.d.events:
		t.Fatalf("a cancel for a host without a BMC answered: %+v", ev)
	default:
	}
}
