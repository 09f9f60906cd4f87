package agentd

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/watchdog"
	"github.com/vigil-ha/vigil/firmware/config"
)

func TestNoteBoot(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	reset := func(id string) watchdog.Boot { return watchdog.Boot{Flags: 0x20, ID: id} }
	for _, step := range []struct {
		boot watchdog.Boot
		at   time.Duration
		want int
	}{
		{watchdog.Boot{ID: "cold"}, 0, 0},      // a cold boot records nothing
		{reset("b1"), time.Minute, 1},          // a reset
		{reset("b1"), 2 * time.Minute, 1},      // the same boot: the agent restarted
		{reset("b2"), 10 * time.Minute, 2},     // another reset
		{watchdog.Boot{}, 20 * time.Minute, 2}, // a cold boot keeps the count
		{reset("b3"), 62 * time.Minute, 2},     // b1 is out of the hour
		{reset("b4"), 200 * time.Minute, 1},    // all but this one are
	} {
		n, err := noteBoot(dir, step.boot, t0.Add(step.at), time.Hour)
		if err != nil || n != step.want {
			t.Fatalf("at +%v boot %+v: %d, %v; want %d", step.at, step.boot, n, err, step.want)
		}
	}
	os.WriteFile(filepath.Join(dir, resetsFile), []byte("garbage\n"+t0.Add(200*time.Minute).Format(time.RFC3339Nano)+" b4\n"), 0o600)
	if n, err := noteBoot(dir, reset("b5"), t0.Add(201*time.Minute), time.Hour); err != nil || n != 2 {
		t.Errorf("with a damaged line: %d, %v; want 2 (the line counts for nothing)", n, err)
	}
	if err := clearResets(dir); err != nil {
		t.Fatal(err)
	}
	if n, _ := noteBoot(dir, watchdog.Boot{}, t0, time.Hour); n != 0 {
		t.Errorf("after clearResets: %d", n)
	}
}

// TestCheckResets: the third watchdog reset within the hour holds the host
// back; rejoin lets it go and forgets the resets.
func TestCheckResets(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "watchdog.sock")
	cfg := config.Default()
	d := &daemon{cfg: cfg, opts: Options{State: dir, Watchdog: "unix:" + sock},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	now := time.Now()
	if why := d.checkResets(now); why != "" {
		t.Fatalf("a cold boot held the host: %s", why)
	}
	for i := 1; i <= 3; i++ {
		// The emulator marks each reset anew.
		if err := os.WriteFile(sock+watchdog.BootSuffix, []byte("32\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := now.Add(time.Duration(i) * time.Second)
		os.Chtimes(sock+watchdog.BootSuffix, mt, mt)
		why := d.checkResets(now.Add(time.Duration(i) * time.Minute))
		if (why != "") != (i == 3) {
			t.Fatalf("reset %d: held %q", i, why)
		}
		if i == 3 && !strings.Contains(why, "3 times within 1h0m0s") || i == 3 && !strings.Contains(why, "vigil rejoin") {
			t.Errorf("held for %q", why)
		}
	}
	d.held = "held"
	d.rejoin()
	if d.held != "" {
		t.Error("rejoin left the host held")
	}
	if _, err := os.Stat(filepath.Join(dir, resetsFile)); !os.IsNotExist(err) {
		t.Errorf("rejoin kept the resets: %v", err)
	}
	cfg.Policy.WatchdogResets = 0
	for i := 0; i < 4; i++ {
		os.WriteFile(sock+watchdog.BootSuffix, []byte("32\n"), 0o644)
		mt := now.Add(time.Duration(10+i) * time.Second)
		os.Chtimes(sock+watchdog.BootSuffix, mt, mt)
		if why := d.checkResets(now); why != "" {
			t.Fatalf("watchdog_resets = 0 held the host: %s", why)
		}
	}
}
