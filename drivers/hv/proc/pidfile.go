package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procID identifies a process across PID reuse: its PID and its start time
// (field 22 of /proc/PID/stat, clock ticks after boot).
type procID struct {
	PID   int
	Start uint64
}

const pidSuffix = ".pid"

func pidPath(dir, name string) string { return filepath.Join(dir, name+pidSuffix) }

// formatPidfile is a pidfile's content: "PID START\n".
func formatPidfile(id procID) []byte {
	return fmt.Appendf(nil, "%d %d\n", id.PID, id.Start)
}

// parsePidfile parses a pidfile's content.
func parsePidfile(b []byte) (procID, error) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return procID{}, fmt.Errorf("want \"PID START\", have %q", b)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid < 1 {
		return procID{}, fmt.Errorf("bad PID %q", f[0])
	}
	start, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return procID{}, fmt.Errorf("bad start time %q", f[1])
	}
	return procID{PID: pid, Start: start}, nil
}

// writePidfile writes name's pidfile atomically.
func writePidfile(dir, name string, id procID) error {
	tmp := filepath.Join(dir, "."+name+pidSuffix+".tmp")
	if err := os.WriteFile(tmp, formatPidfile(id), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, pidPath(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// readPidfile reads name's pidfile.
func readPidfile(dir, name string) (procID, error) {
	b, err := os.ReadFile(pidPath(dir, name))
	if err != nil {
		return procID{}, err
	}
	id, err := parsePidfile(b)
	if err != nil {
		return procID{}, fmt.Errorf("pidfile %s: %w", pidPath(dir, name), err)
	}
	return id, nil
}

// removePidfile removes name's pidfile if it still holds id.
func removePidfile(dir, name string, id procID) {
	if got, err := readPidfile(dir, name); err == nil && got == id {
		os.Remove(pidPath(dir, name))
	}
}

// errNoStat is returned for a /proc/PID/stat line that cannot be parsed.
var errNoStat = errors.New("malformed /proc/PID/stat")

// parseStat returns the state (field 3) and start time (field 22) of a
// /proc/PID/stat line. The command name (field 2) is in parentheses and may
// hold spaces and parentheses itself, so fields count from the last ')'.
func parseStat(b []byte) (state byte, start uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errNoStat
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3, so field 22 is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, errNoStat
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, errNoStat
	}
	return f[0][0], start, nil
}
