package agentd

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNextIncarnation(t *testing.T) {
	wall := time.Unix(1_800_000_000, 123)
	ns := uint64(wall.UnixNano())
	for _, tc := range []struct {
		name string
		file string // content of the incarnation file; "" = none
		wall time.Time
		want uint64
	}{
		{"first start takes the wall clock", "", wall, ns},
		{"wall clock ahead of the last start", strconv.FormatUint(ns-5_000, 10) + "\n", wall, ns},
		{"wall clock went back", strconv.FormatUint(ns+5_000, 10) + "\n", wall, ns + 5_001},
		{"wall clock stood still", strconv.FormatUint(ns, 10), wall, ns + 1},
		{"wall clock far behind", "41\n", time.Unix(0, 5), 42},
		{"spaces around the number", "  77  \n", time.Unix(0, 5), 78},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "incarnation")
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := nextIncarnation(dir, tc.wall)
			if err != nil {
				t.Fatalf("nextIncarnation: %v", err)
			}
			if got != tc.want {
				t.Errorf("incarnation %d, want %d", got, tc.want)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("incarnation not recorded: %v", err)
			}
			if want := strconv.FormatUint(tc.want, 10) + "\n"; string(data) != want {
				t.Errorf("file holds %q, want %q", data, want)
			}
			assertNoTemp(t, dir)
		})
	}
}

// TestNextIncarnationRises: successive starts under a clock that stands
// still or goes back still get rising incarnations.
func TestNextIncarnationRises(t *testing.T) {
	dir := t.TempDir()
	var last uint64
	for i, wall := range []time.Time{time.Unix(100, 0), time.Unix(100, 0), time.Unix(50, 0), time.Unix(200, 0)} {
		inc, err := nextIncarnation(dir, wall)
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if inc <= last {
			t.Fatalf("start %d: incarnation %d, not above the previous %d", i, inc, last)
		}
		last = inc
	}
}

func TestNextIncarnationErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string) string // returns the folder to pass
		want    []string
		is      error
	}{
		{"garbage file", func(t *testing.T, dir string) string {
			writeOrFail(t, filepath.Join(dir, "incarnation"), "not a number\n")
			return dir
		}, []string{filepath.Join("DIR", "incarnation"), "remove the file"}, strconv.ErrSyntax},
		{"number too large", func(t *testing.T, dir string) string {
			writeOrFail(t, filepath.Join(dir, "incarnation"), "18446744073709551616\n")
			return dir
		}, []string{filepath.Join("DIR", "incarnation"), "remove the file"}, strconv.ErrRange},
		{"no incarnation above it", func(t *testing.T, dir string) string {
			writeOrFail(t, filepath.Join(dir, "incarnation"), "18446744073709551615\n")
			return dir
		}, []string{filepath.Join("DIR", "incarnation"), "no incarnation above it", "remove the file"}, nil},
		{"negative number", func(t *testing.T, dir string) string {
			writeOrFail(t, filepath.Join(dir, "incarnation"), "-3\n")
			return dir
		}, []string{"remove the file"}, strconv.ErrSyntax},
		{"unreadable file", func(t *testing.T, dir string) string {
			if err := os.Mkdir(filepath.Join(dir, "incarnation"), 0o700); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{filepath.Join("DIR", "incarnation")}, nil},
		{"state folder missing", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "missing")
		}, []string{"record incarnation"}, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			arg := tc.prepare(t, dir)
			inc, err := nextIncarnation(arg, time.Unix(100, 0))
			if err == nil {
				t.Fatalf("nextIncarnation = %d, want an error", inc)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "DIR", dir); !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
		})
	}
}

func TestWatchdogMarker(t *testing.T) {
	dir := t.TempDir()
	if watchdogMarked(dir) {
		t.Fatal("a fresh state folder says the watchdog is armed")
	}
	for i, step := range []struct {
		armed bool
	}{{true}, {true}, {false}, {false}, {true}} {
		if err := markWatchdog(dir, step.armed); err != nil {
			t.Fatalf("step %d: markWatchdog(%v): %v", i, step.armed, err)
		}
		if got := watchdogMarked(dir); got != step.armed {
			t.Fatalf("step %d: after markWatchdog(%v), watchdogMarked = %v", i, step.armed, got)
		}
	}
	assertNoTemp(t, dir)
	if err := markWatchdog(filepath.Join(dir, "missing"), true); err == nil {
		t.Error("marking in a missing folder succeeded")
	}
}

func TestWriteFileSync(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, content := range []string{"first, longer content\n", "second\n", ""} {
		if err := writeFileSync(path, []byte(content)); err != nil {
			t.Fatalf("writeFileSync(%q): %v", content, err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("file holds %q, want %q", got, content)
		}
		assertNoTemp(t, dir)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %v, want 0600", perm)
	}
	if err := writeFileSync(filepath.Join(dir, "missing", "f"), []byte("x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("write into a missing folder: %v, want a not-exist error", err)
	}
}

func writeOrFail(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// assertNoTemp fails when dir holds a leftover temporary file.
func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
