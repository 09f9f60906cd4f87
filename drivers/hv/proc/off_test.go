//go:build vigil_nohvproc

package proc

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/firmware/features"
)

// TestNotBuilt checks that a build without the process hypervisor fails
// New with an error that names the symbol and the fix.
func TestNotBuilt(t *testing.T) {
	h, err := New(t.TempDir(), "/bin/true", func(string) {})
	if err == nil {
		h.Close()
		t.Fatal("New succeeded in a build without CONFIG_HV_PROC")
	}
	if !errors.Is(err, features.ErrNotBuilt) || !strings.Contains(err.Error(), "CONFIG_HV_PROC") || !strings.Contains(err.Error(), "make menuconfig") {
		t.Errorf("New error %q: want one matching features.ErrNotBuilt that names CONFIG_HV_PROC and its fix", err)
	}
}
