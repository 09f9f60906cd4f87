package watchdog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/firmware/features"
)

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	type test struct {
		name string
		spec string
		is   error
		fix  string
	}
	tests := []test{
		{name: "empty", spec: "", fix: "name a device"},
		{name: "no emulator", spec: "unix:" + filepath.Join(dir, "wd.sock"), is: os.ErrNotExist, fix: "emulator"},
	}
	if features.HasWatchdogHW {
		tests = append(tests, test{name: "no device node", spec: filepath.Join(dir, "watchdog9"), is: os.ErrNotExist, fix: "driver module"})
	} else {
		tests = append(tests, test{name: "built without", spec: filepath.Join(dir, "watchdog9"), is: features.ErrNotBuilt, fix: "CONFIG_WATCHDOG_HW"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(tc.spec)
			if err == nil {
				d.Close()
				t.Fatalf("Open(%q) succeeded", tc.spec)
			}
			var oe *OpError
			if !errors.As(err, &oe) || oe.Op != "open" || oe.Dev != tc.spec {
				t.Errorf("error %q: want an *OpError for open on %q", err, tc.spec)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.fix) {
				t.Errorf("error %q does not say %q", err, tc.fix)
			}
		})
	}
}
