package agentd

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/drivers/watchdog"
)

// resetsFile, in the state folder, lists the watchdog resets of this host
// in the reset window: one line each, the time the agent saw it and the
// boot's id.
const resetsFile = "watchdog-resets"

// noteBoot records a watchdog reset of the last boot, once per boot, and
// returns the resets within window of now, that one included.
func noteBoot(state string, b watchdog.Boot, now time.Time, window time.Duration) (int, error) {
	path := filepath.Join(state, resetsFile)
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return 0, fmt.Errorf("agent: watchdog resets: %w", err)
	}
	var kept []string
	known := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		at, id, _ := strings.Cut(sc.Text(), " ")
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			continue // a damaged line counts for nothing
		}
		known = known || (b.ID != "" && id == b.ID)
		if now.Sub(t) < window {
			kept = append(kept, sc.Text())
		}
	}
	if b.CardReset() && !known {
		kept = append(kept, now.UTC().Format(time.RFC3339Nano)+" "+b.ID)
	}
	if err := writeFileSync(path, []byte(strings.Join(kept, "\n")+"\n")); err != nil {
		return 0, fmt.Errorf("agent: watchdog resets: %w", err)
	}
	return len(kept), nil
}

// clearResets forgets the recorded watchdog resets: an operator let the
// host rejoin.
func clearResets(state string) error {
	if err := os.Remove(filepath.Join(state, resetsFile)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("agent: watchdog resets: %w", err)
	}
	return nil
}

// checkResets reads the watchdog's boot status and decides whether this
// host waits for an operator: it does when the watchdog reset it
// policy.watchdog_resets times within the window. It returns why, or "".
func (d *daemon) checkResets(now time.Time) string {
	p := d.cfg.Policy
	b, err := watchdog.BootStatus(d.opts.Watchdog)
	if err != nil {
		d.log.Info("the watchdog does not say why the host last booted", "component", "wd", "err", err)
		return ""
	}
	if !b.CardReset() {
		return ""
	}
	n, err := noteBoot(d.opts.State, b, now, p.WatchdogResetWindow.D())
	if err != nil {
		d.log.Error("cannot record the watchdog reset", "component", "wd", "err", err)
		return ""
	}
	d.log.Warn("the last reboot was a watchdog reset", "component", "wd", "resets_in_window", n, "window", p.WatchdogResetWindow.D().String())
	if p.WatchdogResets == 0 || n < p.WatchdogResets {
		return ""
	}
	return fmt.Sprintf("the watchdog reset this host %d times within %s: it neither joins nor runs VMs until an operator lets it (fix: find why, then run 'vigil rejoin')",
		n, p.WatchdogResetWindow.D())
}

// rejoin lets a held host join: the operator found why its watchdog kept
// resetting it. The recorded resets are forgotten. Loop only.
func (d *daemon) rejoin() {
	if d.held == "" {
		return
	}
	if err := clearResets(d.opts.State); err != nil {
		d.log.Error("cannot forget the watchdog resets", "component", "wd", "err", err)
	}
	d.held = ""
	d.log.Warn("an operator lets this host rejoin", "component", "wd")
}
