package agentd

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/drivers/watchdog"
)

// nextIncarnation returns this start's incarnation and records it in dir:
// above every earlier one, and above the wall clock in nanoseconds so that a
// host whose state folder was lost still starts a newer life.
func nextIncarnation(dir string, wall time.Time) (uint64, error) {
	path := filepath.Join(dir, "incarnation")
	var prev uint64
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		prev, err = strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if err == nil && prev == math.MaxUint64 {
			err = errors.New("no incarnation above it")
		}
		if err != nil {
			return 0, fmt.Errorf("agent: %s: %w: remove the file to start afresh", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("agent: %w", err)
	}
	inc := max(prev+1, uint64(wall.UnixNano()))
	if err := writeFileSync(path, []byte(strconv.FormatUint(inc, 10)+"\n")); err != nil {
		return 0, fmt.Errorf("agent: record incarnation: %w", err)
	}
	return inc, nil
}

// checkWatchdog makes sure the watchdog device exists before the agent
// starts, without opening it (opening a watchdog arms it). A host whose
// watchdog cannot be armed must not run VMs: the lease proof (c) other hosts
// rely on assumes this host resets itself when its lease lapses.
func checkWatchdog(spec string) error {
	path, lab := strings.CutPrefix(spec, watchdog.LabPrefix)
	fi, err := os.Stat(path)
	switch {
	case err != nil && lab:
		return fmt.Errorf("agent: watchdog %s: %w: start the lab's supervisor, or pass the right --watchdog", spec, err)
	case err != nil:
		return fmt.Errorf("agent: watchdog %s: %w: load the board's watchdog driver (or softdog), or pass --watchdog with the right device", spec, err)
	case lab && fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("agent: watchdog %s: not a socket: pass --watchdog unix:PATH with the lab supervisor's socket", spec)
	case !lab && fi.Mode()&fs.ModeCharDevice == 0:
		return fmt.Errorf("agent: watchdog %s: not a character device: pass --watchdog with a watchdog device such as /dev/watchdog0", spec)
	}
	return nil
}

// The watchdog marker says an earlier incarnation armed the watchdog and did
// not disarm it: the new one must keep petting it from the start.
const watchdogMarker = "watchdog-armed"

func markWatchdog(dir string, armed bool) error {
	path := filepath.Join(dir, watchdogMarker)
	if !armed {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return writeFileSync(path, []byte("armed\n"))
}

func watchdogMarked(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, watchdogMarker))
	return err == nil
}

func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
