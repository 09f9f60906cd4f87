package itest

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/datastore"
	core "github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

// selfIs reports whether host's agent answers and calls itself want.
func (c *cluster) selfIs(host, want string) bool {
	rep, err := c.status(host)
	return err == nil && rep.Status.Self == want
}

// quiet fails if since t any agent changed its verdict on a peer, started
// a fence or restarted a VM, or any watchdog fired.
func (c *cluster) quiet(t time.Time) {
	c.t.Helper()
	c.noVerdictChanges(t)
	if r := c.logged(t, "assign", "restart"); len(r) > 0 {
		c.t.Errorf("a VM was restarted: %s", r[0].Text())
	}
	if fired := supervisorSaid(c.t, c, "watchdog fired"); !fired.IsZero() {
		c.t.Errorf("a watchdog fired at %s", fired.Format(time.StampMilli))
	}
}

// TestDatastorePathLost: every host loses the second of the two
// datastores, which changes nothing (each keeps its lease on the first);
// then one host loses its paths to both (one failing, one hung) for
// longer than a lease and watchdog proof would take: its network majority
// keeps it entitled, it keeps its VMs, nobody is fenced and nothing moves;
// healed, it renews its lease again.
func TestDatastorePathLost(t *testing.T) {
	c := newCluster(t, 3, 2)
	t0 := time.Now()
	if err := c.l.DSFail("all", "ds1"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("every host sees ds1 fail", 10*time.Second, func() bool {
		for _, h := range c.hosts {
			if rep, err := c.status(h); err != nil || !rep.Status.Datastores[1].Failing {
				return false
			}
		}
		return true
	})
	hold(5 * time.Second)
	for _, h := range c.hosts {
		rep, err := c.status(h)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Status.Self != "healthy" || rep.Status.Lease != "fresh" || rep.Status.Datastores[0].Failing {
			t.Errorf("%s without ds1: %s, lease %s, ds0 failing %v; want healthy on a fresh lease from ds0",
				h, rep.Status.Self, rep.Status.Lease, rep.Status.Datastores[0].Failing)
		}
	}
	if err := c.l.DSHeal("all", "ds1"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("every host writes ds1 again", 10*time.Second, func() bool {
		for _, h := range c.hosts {
			if rep, err := c.status(h); err != nil || rep.Status.Datastores[1].Failing {
				return false
			}
		}
		return true
	})
	c.quiet(t0)

	t1 := time.Now()
	mine := c.vmsOn("h1")
	slices.Sort(mine)
	if err := c.l.DSFail("h1", "ds0"); err != nil {
		t.Fatal(err)
	}
	if err := c.l.DSHang("h1", "ds1"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h1 finds its datastores lost", 20*time.Second, func() bool { return c.selfIs("h1", "datastore-lost") })
	hold(12 * time.Second) // past the 9 s a lease and watchdog proof takes
	if err := c.allAlive(""); err != nil {
		t.Errorf("with h1's datastores lost: %v", err)
	}
	if rep, err := c.status("h1"); err != nil || rep.Status.Lease != "held" {
		t.Errorf("h1's lease: %+v, %v; want held by its network majority", rep.Status.Lease, err)
	}
	now := c.vmsOn("h1")
	slices.Sort(now)
	if !slices.Equal(now, mine) {
		t.Errorf("h1 runs %v, ran %v before it lost its datastores", now, mine)
	}
	c.quiet(t1)
	c.onlyOnce(6)
	if err := c.l.DSHeal("h1", "all"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h1 healthy on a fresh lease", 20*time.Second, func() bool {
		rep, err := c.status("h1")
		return err == nil && rep.Status.Self == "healthy" && rep.Status.Lease == "fresh"
	})
	c.quiet(t0)
	c.onlyOnce(6)
}

// TestDatastoreLostEverywhere: every host loses every datastore, first
// with I/O errors, then hung, each for longer than a lease and watchdog
// proof would take: no fence storm, no watchdog fires, nothing moves, and
// everyone is healthy again once the datastores are back.
func TestDatastoreLostEverywhere(t *testing.T) {
	c := newCluster(t, 3, 2)
	t0 := time.Now()
	for _, fault := range []struct {
		name string
		do   func(host, ds string) error
	}{{"fail", c.l.DSFail}, {"hang", c.l.DSHang}} {
		if err := fault.do("all", "all"); err != nil {
			t.Fatal(err)
		}
		c.waitFor("every host finds its datastores lost ("+fault.name+")", 20*time.Second, func() bool {
			for _, h := range c.hosts {
				if !c.selfIs(h, "datastore-lost") {
					return false
				}
			}
			return true
		})
		hold(12 * time.Second)
		if err := c.allAlive(""); err != nil {
			t.Errorf("every datastore %s: %v", fault.name, err)
		}
		c.quiet(t0)
		c.onlyOnce(6)
		if err := c.l.DSHeal("all", "all"); err != nil {
			t.Fatal(err)
		}
		c.waitFor("every host healthy again", 20*time.Second, func() bool {
			for _, h := range c.hosts {
				if !c.selfIs(h, "healthy") {
					return false
				}
			}
			return true
		})
	}
	c.quiet(t0)
	c.onlyOnce(6)
}

// TestDatastoreAndNetworkLost: a host whose BMC does not answer loses its
// datastores and then the network: first h3 by a partition (the others
// can no longer hear it, though it still reaches its isolation addresses),
// then h2 by having every link cut (it reaches nothing: the self verdict
// stays datastore-lost, which outranks isolated). With neither a lease nor
// a network majority the host stops petting its watchdog, which resets it
// (the self-fence), and only after that do the others restart its VMs, on
// the lease and watchdog proof: the fence's fallback when the BMC is
// unreachable.
func TestDatastoreAndNetworkLost(t *testing.T) {
	c := newCluster(t, 3, 2)
	for _, tc := range []struct {
		host      string
		cut, heal func() error
	}{
		{"h3", func() error { return c.l.Partition("h1,h2|h3") }, func() error { return c.l.Partition("none") }},
		{"h2", func() error { return errors.Join(c.l.Cut("h2", "0"), c.l.Cut("h2", "1")) },
			func() error { return errors.Join(c.l.Heal("h2", "0"), c.l.Heal("h2", "1")) }},
	} {
		h := tc.host
		mine := c.vmsOn(h)
		if err := c.l.BMCFail(h); err != nil {
			t.Fatal(err)
		}
		if err := c.l.DSFail(h, "all"); err != nil {
			t.Fatal(err)
		}
		c.waitFor(h+" finds its datastores lost", 20*time.Second, func() bool { return c.selfIs(h, "datastore-lost") })
		t1 := time.Now()
		if err := tc.cut(); err != nil {
			t.Fatal(err)
		}
		c.waitFor(h+"'s VMs running on the others", 40*time.Second, func() bool {
			return len(c.running(map[string]bool{h: true})) == 6
		})
		fired := supervisorSaid(t, c, "watchdog fired on "+h)
		if fired.IsZero() || fired.Before(t1) {
			t.Fatalf("%s's watchdog did not fire (at %v)", h, fired)
		}
		c.movedWith(t1, h, mine, "lease-expired")
		for ds, x := range c.storedIncident(h, core.IncidentFailed) {
			c.checkIncident(ds, x, core.ProofLease, mine)
		}
		for _, l := range c.logged(t1, "assign", "restart") {
			if l.Attrs["from"] == h && l.Time.Before(fired) {
				t.Errorf("%v restarted at %s, before %s's watchdog fired at %s", l.Attrs["vm"], l.Time.Format(time.StampMilli), h, fired.Format(time.StampMilli))
			}
		}
		for _, l := range c.logged(t1, "fence", "fencing ") {
			if strings.HasPrefix(l.Msg, "fencing ") && !strings.HasPrefix(l.Msg, "fencing "+h+" ") {
				t.Errorf("%s fenced another host than %s: %q", l.Host, h, l.Msg)
			}
		}
		c.onlyOnce(6, h)
		if err := errors.Join(tc.heal(), c.l.DSHeal(h, "all"), c.l.BMCHeal(h)); err != nil {
			t.Fatal(err)
		}
		c.waitFor(h+" back and healthy", 40*time.Second, func() bool { return c.selfIs(h, "healthy") })
		c.onlyOnce(6)
	}
}

// storedIncident waits until both datastores of the lab hold a closed
// incident about host of the given kind, and returns what each holds.
func (c *cluster) storedIncident(host string, kind core.IncidentKind) map[string]*core.Incident {
	c.t.Helper()
	cfg, err := config.Load(filepath.Join(c.l.Dir(), "cluster.toml"))
	if err != nil {
		c.t.Fatal(err)
	}
	h, ok := cfg.HostByName(host)
	if !ok {
		c.t.Fatalf("no host %s", host)
	}
	found := map[string]*core.Incident{}
	c.waitFor("a closed incident about "+host+" on every datastore", 30*time.Second, func() bool {
		for _, ds := range cfg.Datastores {
			st, closeDS, err := datastore.Open(ds.Device, ds.Path, cfg.Cluster.Name, len(cfg.Hosts), nil)
			if err != nil {
				c.t.Fatalf("datastore %s: %v", ds.Name, err)
			}
			xs, bad, err := st.ReadIncidents()
			closeDS()
			if err != nil || len(bad) > 0 {
				c.t.Fatalf("datastore %s: incidents: %v, bad records %v", ds.Name, err, bad)
			}
			for _, x := range xs {
				if x.Host == h && x.Kind == kind && x.Closed {
					found[ds.Name] = x
				}
			}
		}
		return len(found) == len(cfg.Datastores)
	})
	return found
}

// checkIncident fails unless x says its VMs moved with proof and every one
// of vms was placed and ran.
func (c *cluster) checkIncident(ds string, x *core.Incident, proof core.ProofKind, vms []string) {
	c.t.Helper()
	cfg, err := config.Load(filepath.Join(c.l.Dir(), "cluster.toml"))
	if err != nil {
		c.t.Fatal(err)
	}
	if x.Proof.Kind != proof || x.Wall == 0 || len(x.Suspect) == 0 {
		c.t.Errorf("%s: incident %+v: want proof %v, a wall-clock stamp and the evidence", ds, x, proof)
	}
	ran := map[string]bool{}
	for _, p := range x.Placements {
		if p.State == core.PlacementRunning && p.To >= 0 && p.Running >= p.Assigned {
			ran[cfg.VMs[p.VM].Name] = true
		}
	}
	for _, vm := range vms {
		if !ran[vm] {
			c.t.Errorf("%s: the incident does not show %s placed and running: %+v", ds, vm, x.Placements)
		}
	}
}
