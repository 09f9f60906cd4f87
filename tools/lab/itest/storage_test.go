package itest

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/firmware/agentd"
	"github.com/vigil-ha/vigil/tools/lab/demo"
)

// TestPartitionStorageAlive: the heartbeat network splits h1,h2|h3 on every
// link while every host still writes the shared datastore. Each side sees
// the other's slot counter advance, so it takes the other side for
// partitioned, never failed (the decision table's "silent, advanced since
// the network went silent" row), and only "failed" leads to a fence: held
// well past the grace and past the ~9 s a lease proof would take, nobody is
// fenced, no VM is assigned or restarted anywhere, and every VM keeps its
// process on its host.
//
// h3 is the minority. It has no coordinator (a partition of 1 of 3 hosts
// is not quorate), so it assigns nothing, but it is not isolated: the
// lab's isolation addresses (the bridges) still answer it, and a host is
// isolated only when no peer and no isolation address answers. Its lease
// stays fresh through the datastore, so it stays entitled, keeps petting
// its watchdog and keeps its VMs (the design: "partitioned" hosts keep
// their VMs themselves; nobody may restart them, since nobody has proof
// they stopped). When the network heals, every peer is alive again and
// nothing has moved.
func TestPartitionStorageAlive(t *testing.T) {
	c := newCluster(t, 3, 2)
	majority, minority := []string{"h1", "h2"}, []string{"h3"}
	where := c.running(nil)
	before := c.vmProcesses()
	agents := c.agentPIDs()
	pets := c.pets()
	c.waitFor("h1 coordinates", 10*time.Second, func() bool { return c.coordinators()["h1"] == "h1" })

	t0 := time.Now()
	if err := c.l.Partition("h1,h2|h3"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("each side takes the other for partitioned", 20*time.Second, func() bool {
		return c.acrossIs(majority, minority, "partitioned") == nil
	})
	hold(15 * time.Second) // past the grace (2 s) and the lease proof (~9 s)

	if err := c.acrossIs(majority, minority, "partitioned"); err != nil {
		t.Errorf("after 15 s: %v", err)
	}
	for _, h := range majority {
		if err := c.explainSays(h, "h3", "partitioned", "advancing"); err != nil {
			t.Error(err)
		}
	}
	for _, h := range majority {
		if err := c.explainSays("h3", h, "partitioned", "advancing"); err != nil {
			t.Error(err)
		}
	}
	if err := c.sameSide(majority); err != nil {
		t.Error(err)
	}
	c.neverFailed(t0)
	c.nothingMoved(t0, where, before)
	coords := c.coordinators()
	for h, want := range map[string]string{"h1": "h1", "h2": "h1", "h3": "none"} {
		if coords[h] != want {
			t.Errorf("%s follows coordinator %q, want %q", h, coords[h], want)
		}
	}
	rep, err := c.status("h3")
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Status; s.Self != "healthy" || s.Lease != "fresh" {
		t.Errorf("the minority h3 says it is %s with its lease %s; want healthy (its isolation addresses answer) and fresh (it still writes the datastore)", s.Self, s.Lease)
	}
	if mine := c.vmsOn("h3"); len(mine) != 2 {
		t.Errorf("the minority h3 runs %v, want its 2 VMs", mine)
	}
	now := c.pets()
	for h, n := range pets {
		if now[h] <= n {
			t.Errorf("%s stopped petting its watchdog during the partition: %d pets before, %d now", h, n, now[h])
		}
	}
	if fired := supervisorSaid(t, c, "watchdog fired"); !fired.IsZero() {
		t.Errorf("a watchdog fired at %s", fired.Format(time.StampMilli))
	}
	if now := c.agentPIDs(); !slices.Equal(now, agents) {
		t.Errorf("agent PIDs %v before the partition, %v after: a host was reset", agents, now)
	}

	for _, l := range c.logged(t0, "verdict", "") {
		t.Logf("%+6d ms %s/verdict: %s", l.Time.Sub(t0).Milliseconds(), l.Host, l.Msg)
	}

	t1 := time.Now()
	if err := c.l.Partition("none"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("every peer alive again", 20*time.Second, func() bool { return c.allAlive("") == nil })
	for _, l := range c.logged(t1, "verdict", "") {
		if from, to, ok := verdictChange(l); ok && (from != "partitioned" || to != "alive") {
			t.Errorf("after the heal %s logged %q", l.Host, l.Msg)
		}
	}
	c.neverFailed(t0)
	c.nothingMoved(t0, where, before)
	// Whom h3 hears first after the heal may coordinate it for a tick or
	// two, until it hears h1 too.
	c.waitFor("h3 follows h1 again", 5*time.Second, func() bool { return c.coordinators()["h3"] == "h1" })
}

// acrossIs fails unless every host of a takes every host of b for want,
// and every host of b every host of a.
func (c *cluster) acrossIs(a, b []string, want string) error {
	for _, pair := range [][2][]string{{a, b}, {b, a}} {
		for _, h := range pair[0] {
			rep, err := c.status(h)
			if err != nil {
				return fmt.Errorf("%s does not answer: %v", h, err)
			}
			for _, p := range rep.Status.Peers {
				if slices.Contains(pair[1], p.Name) && p.Verdict != want {
					return fmt.Errorf("%s takes %s for %s, want %s", h, p.Name, p.Verdict, want)
				}
			}
		}
	}
	return nil
}

// sameSide fails unless the hosts of side take each other for alive.
func (c *cluster) sameSide(side []string) error {
	for _, h := range side {
		rep, err := c.status(h)
		if err != nil {
			return fmt.Errorf("%s does not answer: %v", h, err)
		}
		for _, p := range rep.Status.Peers {
			if slices.Contains(side, p.Name) && p.Verdict != "alive" {
				return fmt.Errorf("%s takes %s, on its side of the partition, for %s", h, p.Name, p.Verdict)
			}
		}
	}
	return nil
}

// explainSays fails unless host's explanation of peer gives verdict and
// has a storage row that mentions storage (the evidence behind it).
func (c *cluster) explainSays(host, peer, verdict, storage string) error {
	var rep agentd.ExplainReply
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	api := agentd.NewClient(filepath.Join(c.l.Dir(), host, "api.sock"))
	if err := api.Get(ctx, "/v1/explain?host="+url.QueryEscape(peer), &rep); err != nil {
		return fmt.Errorf("explain %s on %s: %v", peer, host, err)
	}
	if rep.Verdict != verdict {
		return fmt.Errorf("%s explains %s as %s, want %s: %v", host, peer, rep.Verdict, verdict, rep.Rows)
	}
	for _, r := range rep.Rows {
		if strings.HasPrefix(r, "storage:") && strings.Contains(r, storage) {
			return nil
		}
	}
	return fmt.Errorf("%s explains %s as %s without a storage row saying %q: %v", host, peer, rep.Verdict, storage, rep.Rows)
}

// verdictChange parses a peer verdict line "PEER: FROM -> TO (evidence)".
func verdictChange(l demo.Line) (from, to string, ok bool) {
	head, _, _ := strings.Cut(l.Msg, " (")
	_, change, ok := strings.Cut(head, ": ")
	if !ok || strings.HasPrefix(l.Msg, "self:") {
		return "", "", false
	}
	from, to, ok = strings.Cut(change, " -> ")
	return from, to, ok
}

// neverFailed fails if any agent judged a peer failed, or logged anything
// of fencing, since t.
func (c *cluster) neverFailed(t time.Time) {
	c.t.Helper()
	for _, l := range c.logged(t, "verdict", "") {
		if _, to, ok := verdictChange(l); ok && to == "failed" {
			c.t.Errorf("%s judged a peer failed: %q", l.Host, l.Msg)
		}
	}
	for _, l := range c.logged(t, "fence", "") {
		c.t.Errorf("%s logged a fence: %q", l.Host, l.Msg)
	}
}

// nothingMoved fails if anything was assigned or a VM claimed, started or
// stopped since t, or unless every VM still runs where it ran (where,
// from the agents) as the same process (before, from the processes).
func (c *cluster) nothingMoved(t time.Time, where map[string]string, before map[string][]vmProc) {
	c.t.Helper()
	for _, l := range c.logged(t, "assign", "") {
		c.t.Errorf("%s assigned: %s", l.Host, l.Text())
	}
	for _, l := range c.logged(t, "vm", "") {
		c.t.Errorf("%s logged %q", l.Host, l.Msg)
	}
	if now := c.running(nil); !maps.Equal(now, where) {
		c.t.Errorf("VMs ran on %v, now on %v", where, now)
	}
	c.onlyOnce(len(where))
	now := c.vmProcesses()
	for vm, ps := range before {
		if !slices.Equal(now[vm], ps) {
			c.t.Errorf("%s was %v, is %v", vm, ps, now[vm])
		}
	}
}

// coordinators maps every host that answers to the coordinator it follows.
func (c *cluster) coordinators() map[string]string {
	out := map[string]string{}
	for _, h := range c.hosts {
		if rep, err := c.status(h); err == nil {
			out[h] = rep.Status.Coordinator
		}
	}
	return out
}

// pets maps every host that answers to its watchdog pets so far.
func (c *cluster) pets() map[string]uint64 {
	out := map[string]uint64{}
	for _, h := range c.hosts {
		if rep, err := c.status(h); err == nil {
			out[h] = rep.Pets
		}
	}
	return out
}
