//go:build linux && !vigil_nowatchdoghw

package watchdog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenFile drives the real syscalls on a file that is not a watchdog:
// the ioctls are refused as not supported, and the magic character is
// written on Close only.
func TestOpenFile(t *testing.T) {
	tests := []struct {
		name    string
		release func(Device) error
		want    string
	}{
		{name: "close", release: Device.Close, want: "V"},
		{name: "abandon", release: Device.Abandon, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "watchdog")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Pet(); !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), p) {
				t.Errorf("Pet on a plain file = %v; want ErrNotSupported naming %s", err, p)
			}
			if _, err := d.TimeLeft(); !errors.Is(err, ErrNotSupported) {
				t.Errorf("TimeLeft on a plain file = %v; want ErrNotSupported", err)
			}
			if err := tc.release(d); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil || string(b) != tc.want {
				t.Errorf("file holds %q, %v; want %q", b, err, tc.want)
			}
		})
	}
}
