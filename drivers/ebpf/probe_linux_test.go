//go:build linux && !vigil_noebpf

package ebpf

import (
	"bufio"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/tools/privtest"
)

// TestProbe expects everything on the lab's kernel, which has it all.
func TestProbe(t *testing.T) {
	privtest.Require(t)
	s := Probe()
	t.Logf("Probe: %v", s)
	for _, f := range []struct {
		name string
		err  error
	}{{"stamping", s.Stamping}, {"block I/O", s.BlockIO}, {"exits", s.Exits}} {
		if f.err == nil {
			continue
		}
		if !errors.Is(f.err, ErrUnsupported) {
			t.Errorf("%s: %v does not wrap ErrUnsupported", f.name, f.err)
		}
		privtest.Unavailable(t, f.name+": "+f.err.Error())
	}
	if got, want := s.String(), "stamping: yes; block I/O: yes; exits: yes"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestMountFSIdempotent unmounts tracefs and bpffs in a private mount
// namespace, then mounts them with MountFS, twice.
func TestMountFSIdempotent(t *testing.T) {
	privtest.Require(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread is never unlocked: it leaves with its mount namespace
		// when this goroutine ends.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			t.Errorf("unshare the mount namespace: %v", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			t.Errorf("make the mounts private: %v", err)
			return
		}
		for _, dir := range []string{tracefsDir, bpffsDir} {
			for unix.Unmount(dir, unix.MNT_DETACH) == nil {
			}
		}
		if n := mounts(t); n != 0 {
			t.Errorf("%d mounts left at %s and %s", n, tracefsDir, bpffsDir)
			return
		}
		if err := MountFS(); err != nil {
			t.Errorf("MountFS: %v", err)
			return
		}
		for _, fs := range []struct {
			dir   string
			magic int64
		}{{tracefsDir, unix.TRACEFS_MAGIC}, {bpffsDir, unix.BPF_FS_MAGIC}} {
			var st unix.Statfs_t
			if err := unix.Statfs(fs.dir, &st); err != nil {
				t.Errorf("statfs %s: %v", fs.dir, err)
			} else if int64(st.Type) != fs.magic {
				t.Errorf("%s has file system magic %#x, want %#x", fs.dir, st.Type, fs.magic)
			}
		}
		if _, err := os.Stat(tracefsDir + "/events/sched/sched_process_exit"); err != nil {
			t.Errorf("tracefs events: %v", err)
		}
		if n := mounts(t); n != 2 {
			t.Errorf("%d mounts at %s and %s after MountFS, want 2", n, tracefsDir, bpffsDir)
		}
		if err := MountFS(); err != nil {
			t.Errorf("second MountFS: %v", err)
		}
		if n := mounts(t); n != 2 {
			t.Errorf("%d mounts at %s and %s after the second MountFS, want 2", n, tracefsDir, bpffsDir)
		}
	}()
	<-done
}

// mounts counts the mounts at tracefsDir and bpffsDir in the calling
// thread's mount namespace.
func mounts(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		t.Error(err)
		return -1
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Field 5 is the mount point.
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && (fields[4] == tracefsDir || fields[4] == bpffsDir) {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Error(err)
		return -1
	}
	return n
}
