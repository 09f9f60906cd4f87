package itest

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/hb"
)

// TestKeyRotation rotates the cluster key under running agents, the three
// documented steps with a SIGHUP each: add the new key, make it sign,
// remove the old one. No heartbeat is refused and no verdict changes.
func TestKeyRotation(t *testing.T) {
	c := newCluster(t, 3, 2)
	t0 := time.Now()
	path := filepath.Join(c.l.Dir(), "cluster.key")
	old := firstKey(t, path)
	fresh, err := hb.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pids := c.agentPIDs()
	reloads := 0
	step := func(what string, keys ...[]byte) {
		t.Helper()
		var lines []hb.KeyLine
		for _, k := range keys {
			lines = append(lines, hb.KeyLine{Key: k})
		}
		if err := os.WriteFile(path, hb.FormatKeyFile(lines...), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		reloads++
		c.waitFor(what+": every agent reloads", 5*time.Second, func() bool {
			return len(c.logged(t0, "hb", "cluster keys reloaded")) == reloads*len(pids)
		})
		// Heartbeats signed before the reload may still wait in a
		// socket: let them be read before the next step.
		hold(300 * time.Millisecond)
	}
	step("add the new key", old, fresh)
	step("the new key signs", fresh, old)
	step("remove the old key", fresh)
	hold(time.Second)
	for _, h := range c.hosts {
		rep, err := c.status(h)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Keys) != 1 || rep.Keys[0].ID != hb.KeyID(fresh) || !rep.Keys[0].Signs {
			t.Errorf("%s holds keys %+v, want only %08x signing", h, rep.Keys, hb.KeyID(fresh))
		}
		for reason, n := range rep.Drops {
			if n > 0 {
				t.Errorf("%s dropped %d heartbeats as %s during the rotation", h, n, reason)
			}
		}
	}
	if err := c.allAlive(""); err != nil {
		t.Fatal(err)
	}
	c.noVerdictChanges(t0)
}

// firstKey reads the signing key of a key file.
func firstKey(t *testing.T, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := hex.DecodeString(strings.Fields(line)[0])
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	t.Fatalf("%s holds no key", path)
	return nil
}
