package watchdog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBootStatus(t *testing.T) {
	dir := t.TempDir()
	old := sysfsWatchdog
	oldID := bootIDFile
	sysfsWatchdog, bootIDFile = filepath.Join(dir, "sys"), filepath.Join(dir, "boot_id")
	defer func() { sysfsWatchdog, bootIDFile = old, oldID }()
	write := func(path, text string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(bootIDFile, "5a1d-boot\n")
	write(filepath.Join(sysfsWatchdog, "watchdog0", "bootstatus"), "32\n")
	write(filepath.Join(sysfsWatchdog, "watchdog1", "bootstatus"), "0\n")
	write(filepath.Join(sysfsWatchdog, "watchdog2", "bootstatus"), "lots\n")
	sock := filepath.Join(dir, "wd.sock")
	for _, tc := range []struct {
		spec  string
		reset bool
		err   string
	}{
		{spec: "/dev/watchdog", reset: true},
		{spec: "/dev/watchdog0", reset: true},
		{spec: "/dev/watchdog1"},
		{spec: "/dev/watchdog2", err: "not a number"},
		{spec: "/dev/watchdog3", err: "not supported"},
		{spec: "unix:" + sock},
	} {
		b, err := BootStatus(tc.spec)
		switch {
		case tc.err != "" && (err == nil || !contains(err.Error(), tc.err)):
			t.Errorf("%s: %v; want an error saying %q", tc.spec, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.spec, err)
		case tc.err == "" && b.CardReset() != tc.reset:
			t.Errorf("%s: boot %+v, card reset %v; want %v", tc.spec, b, b.CardReset(), tc.reset)
		case tc.err == "" && tc.spec != "unix:"+sock && b.ID != "5a1d-boot":
			t.Errorf("%s: boot id %q, want the kernel's", tc.spec, b.ID)
		}
	}
	if _, err := BootStatus("/dev/watchdog3"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("a watchdog without a boot status: %v; want ErrNotSupported", err)
	}
	write(sock+BootSuffix, "32\n")
	b, err := BootStatus("unix:" + sock)
	if err != nil || !b.CardReset() || !strings.HasPrefix(b.ID, "lab-") {
		t.Errorf("the lab's watchdog after a reset: %+v, %v; want a card reset with the reset's id", b, err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
