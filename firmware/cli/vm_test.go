package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestVMCommandErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: vigil vm list"},
		{[]string{"move", "vm1"}, 2, "usage: vigil vm list"},
		{[]string{"move", "vm1", "h2", "--api", sock}, 1, "vigil vm move"},
		{[]string{"show"}, 2, "usage"},
		{[]string{"list", "extra"}, 2, "usage"},
		{[]string{"stop", "vm1", "--api", sock}, 1, "vigil vm stop"},
		{[]string{"list", "--config", sock + ".toml"}, 1, "no such file"},
	} {
		var out, errb bytes.Buffer
		if code := runVM(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("vm %q: %d %q; want %d %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: vigil maintenance enter|exit"},
		{[]string{"start"}, 2, "usage"},
		{[]string{"enter", "h2", "h3"}, 2, "usage"},
		{[]string{"enter", "h2", "--api", sock}, 1, "vigil maintenance enter"},
		{[]string{"enter", "--api", sock}, 1, "vigil maintenance enter"},
	} {
		var out, errb bytes.Buffer
		if code := runMaintenance(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("maintenance %q: %d %q; want %d %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}
