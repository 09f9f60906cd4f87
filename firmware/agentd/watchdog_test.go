package agentd

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckWatchdog(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "wd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec string
		want string // "" = accepted
	}{
		{"/dev/null", ""}, // a character device: what a watchdog is
		{"unix:" + sock, ""},
		{"/dev/no-such-watchdog", "load the board's watchdog driver"},
		{"unix:" + filepath.Join(dir, "missing.sock"), "start the lab's supervisor"},
		{file, "not a character device"},
		{"unix:" + file, "not a socket"},
	} {
		err := checkWatchdog(tc.spec)
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkWatchdog(%q) = %v, want %q", tc.spec, err, tc.want)
		}
	}
}

// TestWatchdogThatCannotBeArmedStopsTheAgent: when the first pet cannot
// open the watchdog, the agent does not go on running VMs unguarded: it
// marks itself for a clean stop, and pets nothing.
func TestWatchdogThatCannotBeArmedStopsTheAgent(t *testing.T) {
	d, _ := newTestDaemon(t)
	d.opts.Watchdog = "unix:" + filepath.Join(t.TempDir(), "gone.sock")
	env{d}.PetWatchdog(4 * time.Second)
	if d.fatal == nil || !strings.Contains(d.fatal.Error(), "cannot arm the watchdog") {
		t.Fatalf("fatal = %v, want the arming failure", d.fatal)
	}
	if d.wd != nil || d.pets != 0 {
		t.Fatalf("watchdog %v, %d pets after a failed open", d.wd, d.pets)
	}
	first := d.fatal
	env{d}.PetWatchdog(4 * time.Second)
	if d.fatal != first {
		t.Fatal("a second failure replaced the first")
	}
}
