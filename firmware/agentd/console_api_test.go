package agentd

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/watchdog/watchdogtest"
	"github.com/vigil-ha/vigil/firmware/config"
)

func TestLogRing(t *testing.T) {
	r := newLogRing(3)
	if got := r.last(10); len(got) != 0 {
		t.Fatalf("an empty ring has %v", got)
	}
	for i := 1; i <= 5; i++ {
		r.add(fmt.Sprint(i))
	}
	if got := r.last(0); !slices.Equal(got, []string{"3", "4", "5"}) {
		t.Fatalf("last(0) = %v, want the 3 newest, oldest first", got)
	}
	if got := r.last(2); !slices.Equal(got, []string{"4", "5"}) {
		t.Fatalf("last(2) = %v", got)
	}
	var none *logRing
	none.add("x")
	if none.last(1) != nil {
		t.Fatal("a nil ring keeps nothing")
	}
}

func TestRingHandler(t *testing.T) {
	var out bytes.Buffer
	r := newLogRing(10)
	log := slog.New(&ringHandler{next: slog.NewTextHandler(&out, nil), ring: r}).With("host", "h1").With("component", "wd")
	log.Info("watchdog armed", "timeout", "4s")
	log.Debug("not kept: below the level")
	got := r.last(0)
	if len(got) != 1 || !strings.Contains(got[0], "INFO watchdog armed component=wd timeout=4s") || strings.Contains(got[0], "host=") {
		t.Fatalf("ring = %q", got)
	}
	if !strings.Contains(out.String(), "host=h1") {
		t.Fatalf("the record did not reach the next handler: %q", out.String())
	}
	if !log.Handler().Enabled(context.Background(), slog.LevelInfo) {
		t.Fatal("Enabled must follow the next handler")
	}
}

func TestFenceSelfWithoutMeans(t *testing.T) {
	d := &daemon{opts: Options{IPMIDevice: "/nonexistent/ipmi0"}, log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))}
	err := d.fenceSelf("test")
	if err == nil || !strings.Contains(err.Error(), "watchdog is not armed") {
		t.Fatalf("fenceSelf with no BMC and no watchdog = %v, want a refusal that says why", err)
	}
	if d.petStopped != "" {
		t.Fatal("a refused fence-self must not stop petting")
	}
}

// TestFenceSelfOrdered: an operator's fence-self goes through the host's
// own BMC when it has one, and otherwise stops the watchdog's pets.
func TestFenceSelfOrdered(t *testing.T) {
	var logs strings.Builder
	f := &fakeLocal{done: make(chan struct{})}
	d := &daemon{opts: Options{SelfFence: SelfFenceOff}, local: f, log: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := d.fenceSelf("console"); err != nil {
		t.Fatal(err)
	}
	<-f.done
	f.mu.Lock()
	calls := strings.Join(f.calls, ",")
	f.mu.Unlock()
	if calls != "off" || !strings.Contains(logs.String(), "by=console") {
		t.Fatalf("calls %q, log %q: want one power-off, logged with who asked", calls, logs.String())
	}

	wd := watchdogtest.New()
	d = &daemon{opts: Options{IPMIDevice: "/nonexistent/ipmi0"}, cfg: config.Default(), wd: wd, log: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := d.fenceSelf("console"); err != nil {
		t.Fatal(err)
	}
	env{d}.PetWatchdog(4 * time.Second)
	if rep := d.watchdogReply(); rep.Pets != 0 || !strings.Contains(rep.Stopped, "console") || !rep.Armed || rep.Timeout != 4*time.Second {
		t.Fatalf("after fence-self without a BMC: %+v, want an armed watchdog no longer petted", rep)
	}
}
