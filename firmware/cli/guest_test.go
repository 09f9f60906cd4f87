//go:build linux

package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGuestCommandErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runGuest([]string{"extra"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: vigil guest") {
		t.Errorf("extra argument: %d %q", code, errb.String())
	}
	bad := filepath.Join(t.TempDir(), "guest.toml")
	if err := os.WriteFile(bad, []byte("[[apps]]\nname = \"db\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := runGuest([]string{"--config", bad}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "0 ways to find it") || !strings.Contains(errb.String(), bad) {
		t.Errorf("a bad file: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := runGuest([]string{"--config", bad + ".missing"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no such file") {
		t.Errorf("a missing file named on the command line: %d %q", code, errb.String())
	}
}
