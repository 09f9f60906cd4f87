//go:build linux

package agentd

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/firmware/config"
)

// lockedBuffer is a log sink that tests can wait on.
type lockedBuffer struct {
	lines chan string
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.lines <- string(p)
	return len(p), nil
}

// TestServices: a watched host daemon that stops is restarted after its
// backoff; once its restarts are spent the host enters maintenance.
func TestServices(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	d, env := newTestDaemon(t)
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "storaged.pid")
	start := filepath.Join(dir, "start.sh")
	if err := os.WriteFile(start, []byte("#!/bin/sh\n"+sleep+" 1000 </dev/null >/dev/null 2>&1 &\necho $! > "+pidfile+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(start).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	d.cfg.Services = []config.Service{{Name: "storaged", Pidfile: pidfile, Start: []string{start}, MaxRestarts: 1}}
	logs := &lockedBuffer{lines: make(chan string, 256)}
	d.log = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the loop, for the maintenance command
		for {
			select {
			case f := <-d.calls:
				f()
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := d.openServices(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.services.close()
	wait := func(sub string) string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l := <-logs.lines:
				if strings.Contains(l, sub) {
					return l
				}
			case <-deadline:
				t.Fatalf("no log line %q", sub)
			}
		}
	}
	kill := func() {
		t.Helper()
		b, _ := os.ReadFile(pidfile)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
	wait("service running")
	kill()
	if l := wait("service stopped: restarting it"); !strings.Contains(l, "in=1s") || !strings.Contains(l, "restart=1") {
		t.Errorf("first restart: %s", l)
	}
	wait("service running")
	if st := d.services.states(); len(st) != 1 || !st[0].Running || st[0].Exits != 1 {
		t.Errorf("states %+v", st)
	}
	kill()
	wait("service keeps failing: evacuating this host")
	wait("this host is in maintenance")
	var entered bool
	if err := d.call(ctx, func() {
		entered = slices.ContainsFunc(env.Calls, func(c string) bool { return strings.Contains(c, "entering maintenance") })
	}); err != nil || !entered {
		t.Errorf("the core was not told to enter maintenance (%v): %q", err, env.Calls)
	}
	kill() // leave nothing behind: the restarted sleep
}
