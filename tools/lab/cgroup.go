package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoCgroup2 is returned when no cgroup v2 hierarchy is mounted.
var ErrNoCgroup2 = errors.New("no cgroup2 mount")

// cgroupWait bounds every wait for a cgroup to empty, freeze or thaw.
const cgroupWait = 5 * time.Second

// cgroup2Mount returns the mount point of the cgroup v2 hierarchy, read
// from /proc/self/mounts.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return "", fmt.Errorf("lab: find the cgroup2 mount: %w", err)
	}
	defer f.Close()
	return parseCgroup2Mount(f)
}

func parseCgroup2Mount(f io.Reader) (string, error) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "cgroup2" {
			return unescapeMount(fields[1]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("lab: find the cgroup2 mount: %w", err)
	}
	return "", fmt.Errorf("lab: %w in /proc/self/mounts (fix: mount -t cgroup2 none /sys/fs/cgroup/unified)", ErrNoCgroup2)
}

// unescapeMount undoes the octal escapes of /proc/self/mounts (\040 for a
// space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupRoot is the folder of the lab called name in the cgroup2 tree.
func cgroupRoot(name string) (string, error) {
	m, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	return filepath.Join(m, "vigil-lab", name), nil
}

func writeCgroup(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("lab: write %s to %s: %w", value, filepath.Join(dir, file), err)
	}
	return nil
}

// cgroupEvents reads cgroup.events into a map (populated, frozen).
func cgroupEvents(dir string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return nil, fmt.Errorf("lab: read %s: %w", filepath.Join(dir, "cgroup.events"), err)
	}
	ev := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			ev[k] = v
		}
	}
	return ev, nil
}

// waitEvent waits until cgroup.events of dir has key = want, bounded by
// cgroupWait.
func waitEvent(dir, key, want string) error {
	deadline := time.Now().Add(cgroupWait)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		ev, err := cgroupEvents(dir)
		if err != nil {
			return err
		}
		if ev[key] == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: %s still has %s %s after %v, want %s", dir, key, ev[key], cgroupWait, want)
		}
		time.Sleep(delay)
	}
}

// killCgroup SIGKILLs every process in dir and its children and waits
// until it is empty, then thaws it so that new processes run.
func killCgroup(dir string) error {
	if err := writeCgroup(dir, "cgroup.kill", "1"); err != nil {
		return err
	}
	if err := waitEvent(dir, "populated", "0"); err != nil {
		return err
	}
	return freezeCgroup(dir, false)
}

// resetCgroup kills every process in dir and replaces dir by a new, empty
// cgroup, as a power cycle. The new folder matters: on Linux 6.x a process
// started with CLONE_INTO_CGROUP into a cgroup that cgroup.kill has killed
// before is killed at birth unless the starter's own cgroup was killed as
// often, so a host's cgroup is made anew after every power-off.
func resetCgroup(dir string) error {
	if err := killCgroup(dir); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("lab: remove cgroup %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("lab: make cgroup %s: %w", dir, err)
	}
	return nil
}

// freezeCgroup freezes or thaws dir and waits until the kernel says so.
func freezeCgroup(dir string, frozen bool) error {
	v := "0"
	if frozen {
		v = "1"
	}
	if err := writeCgroup(dir, "cgroup.freeze", v); err != nil {
		return err
	}
	return waitEvent(dir, "frozen", v)
}

// cgroupPIDs lists the processes in dir.
func cgroupPIDs(dir string) ([]int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("lab: read %s: %w", filepath.Join(dir, "cgroup.procs"), err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		var p int
		if _, err := fmt.Sscan(f, &p); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// removeCgroupTree kills every process under root, children first, and
// removes its folders. A missing root is not an error.
func removeCgroupTree(root string) error {
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var errs []error
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("lab: list %s: %w", root, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, removeCgroupTree(filepath.Join(root, e.Name())))
		}
	}
	if err := killCgroup(root); err != nil {
		errs = append(errs, err)
	}
	if err := os.Remove(root); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("lab: remove cgroup %s: %w", root, err))
	}
	return errors.Join(errs...)
}
