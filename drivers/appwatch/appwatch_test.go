//go:build linux

package appwatch

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// failsafe bounds every wait for a state change.
const failsafe = 20 * time.Second

// rig is a watcher whose changes arrive on a channel.
type rig struct {
	t  *testing.T
	w  *Watcher
	ch chan State
}

func newRig(t *testing.T, apps ...App) *rig {
	t.Helper()
	r := &rig{t: t, ch: make(chan State, 64)}
	w, err := New(apps, 100*time.Millisecond, func(s State) { r.ch <- s })
	if err != nil {
		t.Fatal(err)
	}
	r.w = w
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go w.Run(ctx)
	return r
}

// want waits for a state of name that satisfies ok.
func (r *rig) want(name, what string, ok func(State) bool) State {
	r.t.Helper()
	deadline := time.After(failsafe)
	for {
		select {
		case s := <-r.ch:
			if s.Name == name && ok(s) {
				return s
			}
		case <-deadline:
			r.t.Fatalf("%s: no state where %s; last %+v", name, what, r.w.States())
		}
	}
}

// copyProgram copies the sleep program under a name of its own, so that a
// lookup by name finds only the test's processes.
func copyProgram(t *testing.T, name string) string {
	t.Helper()
	src, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(t.TempDir(), name)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func startProc(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestByName: an application found by its process name; its exit is seen
// and counted; Restart with a foreground command brings it back, found
// again.
func TestByName(t *testing.T) {
	name := fmt.Sprintf("vgapp%d", os.Getpid()%100000)
	prog := copyProgram(t, name)
	r := newRig(t, App{Name: "db", Process: name, Start: []string{prog, "1000"}})
	r.want("db", "not running", func(s State) bool { return !s.Running && strings.Contains(s.Detail, "no process called "+name) })
	cmd := startProc(t, prog, "1000")
	s := r.want("db", "running", func(s State) bool { return s.Running })
	if s.PID != cmd.Process.Pid || s.Detail != "process "+name {
		t.Fatalf("found %+v; want PID %d by name", s, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	s = r.want("db", "exited", func(s State) bool { return !s.Running && s.Exits == 1 })
	if !strings.Contains(s.Detail, "exited") {
		t.Errorf("detail %q", s.Detail)
	}
	if err := r.w.Restart(context.Background(), "db"); err != nil {
		t.Fatal(err)
	}
	s = r.want("db", "running again", func(s State) bool { return s.Running })
	if s.PID == cmd.Process.Pid || s.Exits != 1 {
		t.Fatalf("after the restart %+v", s)
	}
	syscall.Kill(s.PID, syscall.SIGKILL) // the watcher reaps its own child
	r.want("db", "exited again", func(s State) bool { return !s.Running && s.Exits == 2 })
}

// TestByPidfile: an application found through its pidfile; a stale
// pidfile is not taken for a running application; a start command that
// returns (a starter) is fine, and a failing one is an error.
func TestByPidfile(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "app.pid")
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	starter := filepath.Join(dir, "start.sh")
	script := fmt.Sprintf("#!/bin/sh\n%s 1000 </dev/null >/dev/null 2>&1 &\necho $! > %s\n", sleep, pidfile)
	if err := os.WriteFile(starter, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, App{Name: "web", Pidfile: pidfile, Start: []string{starter}}, App{Name: "bad", Pidfile: filepath.Join(dir, "bad.pid"), Start: []string{"/bin/false"}})
	r.want("web", "no pidfile", func(s State) bool { return !s.Running && strings.Contains(s.Detail, "no pidfile") })
	if err := os.WriteFile(pidfile, []byte("999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.want("web", "stale pidfile", func(s State) bool { return !s.Running && strings.Contains(s.Detail, "is not running") })
	if err := r.w.Restart(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	s := r.want("web", "running", func(s State) bool { return s.Running })
	b, _ := os.ReadFile(pidfile)
	if strconv.Itoa(s.PID) != strings.TrimSpace(string(b)) || s.Detail != "PID from "+pidfile {
		t.Fatalf("found %+v; pidfile says %q", s, b)
	}
	t.Cleanup(func() { syscall.Kill(s.PID, syscall.SIGKILL) })
	if err := r.w.Restart(context.Background(), "bad"); err == nil || !strings.Contains(err.Error(), "start bad: /bin/false") {
		t.Errorf("a failing start command: %v", err)
	}
	if err := r.w.Restart(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "no application is called nope") {
		t.Errorf("an unknown application: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.pid"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.want("bad", "a bad pidfile", func(s State) bool { return strings.Contains(s.Detail, "holds no PID") })
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		app  App
		want string
	}{
		{App{Process: "x"}, "without a name"},
		{App{Name: "a"}, "exactly one of process, pidfile, unit and run"},
		{App{Name: "a", Process: "x", Unit: "x.service"}, "exactly one"},
		{App{Name: "a", Pidfile: "run/x.pid"}, "not an absolute path"},
	} {
		if err := tc.app.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want %q", tc.app, err, tc.want)
		}
	}
	if _, err := New([]App{{Name: "a", Process: "x"}, {Name: "a", Process: "y"}}, time.Second, nil); err == nil || !strings.Contains(err.Error(), "two applications are called a") {
		t.Errorf("a duplicate: %v", err)
	}
	w, err := New([]App{{Name: "a", Unit: "x.service"}}, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Restart(context.Background(), "a"); err == nil {
		t.Log("systemctl restart ran: a machine with systemd") // either way, no panic and a clear outcome
	}
}

// TestRun: an application the watcher runs itself starts at once, its
// exit is reported and it is not restarted by itself; Restart runs it
// again; a command that cannot start says why.
func TestRun(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	r := newRig(t, App{Name: "app", Run: []string{sleep, "1000"}}, App{Name: "broken", Run: []string{"/nonexistent/app"}})
	s := r.want("app", "running", func(s State) bool { return s.Running })
	if s.Detail != "run by this agent" {
		t.Errorf("detail %q", s.Detail)
	}
	r.want("broken", "not started", func(s State) bool { return !s.Running && strings.Contains(s.Detail, "run /nonexistent/app") })
	syscall.Kill(s.PID, syscall.SIGKILL)
	r.want("app", "exited", func(s State) bool { return !s.Running && s.Exits == 1 })
	r.want("app", "waiting", func(s State) bool { return strings.Contains(s.Detail, "waiting for a restart") })
	if err := r.w.Restart(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	s2 := r.want("app", "running again", func(s State) bool { return s.Running })
	if s2.PID == s.PID {
		t.Fatal("the same PID")
	}
	if err := r.w.Restart(context.Background(), "app"); err != nil {
		t.Errorf("restarting a running application: %v", err)
	}
	if st := r.w.States()[0]; st.PID != s2.PID {
		t.Errorf("a restart of a running application replaced it: %+v", st)
	}
	syscall.Kill(s2.PID, syscall.SIGKILL)
	r.want("app", "exited again", func(s State) bool { return !s.Running && s.Exits == 2 })
}

// TestUnit: an application found as a systemd unit's main process, and
// restarted with systemctl restart. systemd does not run here: a
// systemctl stand-in on PATH answers show and restart from a file, as
// systemd would from its unit.
func TestUnit(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	bin := t.TempDir()
	state := filepath.Join(bin, "mainpid")
	script := fmt.Sprintf(`#!/bin/sh
# systemctl show --property=MainPID --value UNIT | systemctl restart UNIT
case "$1" in
show) cat %[1]s 2>/dev/null || echo 0 ;;
restart) [ "$2" = "db.service" ] || { echo "Unit $2 not found." >&2; exit 5; }
	%[2]s 1000 </dev/null >/dev/null 2>&1 &
	echo $! > %[1]s ;;
esac
`, state, sleep)
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	r := newRig(t, App{Name: "db", Unit: "db.service"}, App{Name: "gone", Unit: "gone.service"})
	r.want("db", "no main process", func(s State) bool {
		return !s.Running && strings.Contains(s.Detail, "unit db.service has no main process")
	})
	if err := r.w.Restart(context.Background(), "db"); err != nil {
		t.Fatal(err)
	}
	s := r.want("db", "running", func(s State) bool { return s.Running })
	if s.Detail != "main process of db.service" {
		t.Errorf("detail %q", s.Detail)
	}
	t.Cleanup(func() { syscall.Kill(s.PID, syscall.SIGKILL) })
	if err := r.w.Restart(context.Background(), "gone"); err == nil || !strings.Contains(err.Error(), "systemctl restart gone.service") {
		t.Errorf("restarting a unit systemctl does not know: %v", err)
	}
}
