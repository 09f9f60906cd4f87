//go:build linux && !vigil_noebpf

package ebpf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/tools/privtest"
)

// exitsHelperEnv makes the test binary a helper process instead: see
// threadsHelper.
const exitsHelperEnv = "VIGIL_EBPF_EXITS_HELPER"

// helperStatus is the exit code of threadsHelper.
const helperStatus = 7

func init() {
	if os.Getenv(exitsHelperEnv) == "threads" {
		os.Exit(threadsHelper())
	}
}

// threadsHelper ends one of its threads, not the leader, for each line
// read from stdin, and writes that thread's id once it has exited; at the
// end of stdin it exits with helperStatus.
func threadsHelper() int {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		tid, err := endThread()
		if err != nil {
			fmt.Fprintln(os.Stderr, "end a thread:", err)
			return 1
		}
		fmt.Println(tid)
	}
	return helperStatus
}

// endThread ends a thread other than the leader and waits for its exit.
func endThread() (int, error) {
	type thread struct {
		tid, pidfd int
		err        error
	}
	for {
		c := make(chan thread)
		// A goroutine that returns locked to its thread ends the thread,
		// unless it is the main one.
		go func() {
			runtime.LockOSThread()
			tid := unix.Gettid()
			fd, err := unix.PidfdOpen(tid, unix.PIDFD_THREAD)
			c <- thread{tid, fd, err}
		}()
		th := <-c
		if th.err != nil {
			return 0, th.err
		}
		if th.tid == os.Getpid() {
			unix.Close(th.pidfd)
			continue
		}
		// A thread's pidfd polls readable once the thread has exited.
		fds := []unix.PollFd{{Fd: int32(th.pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(deadline/time.Millisecond))
		unix.Close(th.pidfd)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, fmt.Errorf("thread %d still runs after %v", th.tid, deadline)
		}
		return th.tid, nil
	}
}

func requireExits(tb testing.TB) {
	tb.Helper()
	privtest.Require(tb)
	if err := MountFS(); err != nil {
		privtest.Unavailable(tb, "mount tracefs and bpffs: "+err.Error())
	}
	if err := Probe().Exits; err != nil {
		privtest.Unavailable(tb, "exit tracepoint: "+err.Error())
	}
}

func newTestExits(tb testing.TB) *Exits {
	tb.Helper()
	x, err := NewExits()
	if err != nil {
		tb.Fatalf("NewExits: %v", err)
	}
	tb.Cleanup(func() {
		if err := x.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return x
}

// start starts a child process; the test kills and reaps it at the end if
// it did not.
func start(tb testing.TB, cmd *exec.Cmd) *exec.Cmd {
	tb.Helper()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %v: %v", cmd.Args, err)
	}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func startSleep(tb testing.TB) *exec.Cmd {
	tb.Helper()
	return start(tb, exec.Command("sleep", "60"))
}

// nextExit waits for the next exit.
func nextExit(tb testing.TB, x *Exits) Exit {
	tb.Helper()
	select {
	case e, ok := <-x.C():
		if !ok {
			tb.Fatal("C closed")
		}
		return e
	case <-time.After(deadline):
		tb.Fatalf("no exit in %v", deadline)
		return Exit{}
	}
}

// waitStatus reaps cmd and returns its wait status.
func waitStatus(tb testing.TB, cmd *exec.Cmd) int {
	tb.Helper()
	if err := cmd.Wait(); err != nil {
		if _, ok := errors.AsType[*exec.ExitError](err); !ok {
			tb.Fatalf("wait %v: %v", cmd.Args, err)
		}
	}
	return int(cmd.ProcessState.Sys().(syscall.WaitStatus))
}

// killWatched watches a new process and kills it, and expects its exit
// next: whatever else was reported would come before it.
func killWatched(tb testing.TB, x *Exits) {
	tb.Helper()
	cmd := startSleep(tb)
	if err := x.Watch(cmd.Process.Pid); err != nil {
		tb.Fatal(err)
	}
	cmd.Process.Kill()
	if e := nextExit(tb, x); e.Pid != cmd.Process.Pid {
		tb.Fatalf("exit %v, want that of the last process killed, pid %d", e, cmd.Process.Pid)
	}
	waitStatus(tb, cmd)
}

func TestExitsKilled(t *testing.T) {
	requireExits(t)
	x := newTestExits(t)
	cmd := startSleep(t)
	pid := cmd.Process.Pid
	if err := x.Watch(pid); err != nil {
		t.Fatal(err)
	}
	if err := x.Watch(pid); err != nil {
		t.Fatalf("second Watch: %v", err)
	}
	if got := x.Watched(); !slices.Equal(got, []int{pid}) {
		t.Errorf("Watched() = %v, want [%d]", got, pid)
	}
	killed := Monotonic()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e := nextExit(t, x)
	t.Logf("%v, at %v", e, e.At)
	if e.Pid != pid || !e.Signaled() || e.Signal() != syscall.SIGKILL || e.ExitCode() != -1 {
		t.Errorf("exit %+v: want pid %d killed by SIGKILL", e, pid)
	}
	if e.At < killed || e.At > Monotonic() {
		t.Errorf("exit at %v: want between the kill at %v and now", e.At, killed)
	}
	if ws := waitStatus(t, cmd); e.Status != ws {
		t.Errorf("status %#x, wait status %#x", e.Status, ws)
	}
	if got := x.Watched(); len(got) != 0 {
		t.Errorf("Watched() = %v after the exit, want none", got)
	}
	if n := x.Lost(); n != 0 {
		t.Errorf("Lost() = %d", n)
	}
}

func TestExitsStatus(t *testing.T) {
	requireExits(t)
	x := newTestExits(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cmd := exec.Command("sh", "-c", "read x; exit 3")
	cmd.Stdin = r
	start(t, cmd)
	r.Close()
	if err := x.Watch(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	w.Close() // the shell reads the end of its input and exits
	e := nextExit(t, x)
	t.Logf("%v", e)
	if e.Pid != cmd.Process.Pid || e.Signaled() || e.ExitCode() != 3 || e.Status != 3<<8 {
		t.Errorf("exit %+v: want pid %d exited with status 3", e, cmd.Process.Pid)
	}
	if ws := waitStatus(t, cmd); e.Status != ws {
		t.Errorf("status %#x, wait status %#x", e.Status, ws)
	}
}

// TestExitsUnwatched expects nothing of a process never watched, nor of
// one unwatched: the next exit reported is a watched process's.
func TestExitsUnwatched(t *testing.T) {
	requireExits(t)
	x := newTestExits(t)
	waitStatus(t, start(t, exec.Command("true")))

	cmd := startSleep(t)
	if err := x.Watch(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := x.Unwatch(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := x.Unwatch(cmd.Process.Pid); err != nil {
		t.Errorf("second Unwatch: %v", err)
	}
	if got := x.Watched(); len(got) != 0 {
		t.Errorf("Watched() = %v after Unwatch", got)
	}
	cmd.Process.Kill()
	waitStatus(t, cmd)

	killWatched(t, x)
}

// TestExitsThreads ends threads of a watched process, which reports
// nothing, then the process, which reports once.
func TestExitsThreads(t *testing.T) {
	requireExits(t)
	x := newTestExits(t)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), exitsHelperEnv+"=threads")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	start(t, cmd)
	inR.Close()
	outW.Close()
	defer inW.Close()
	pid := cmd.Process.Pid
	if err := x.Watch(pid); err != nil {
		t.Fatal(err)
	}

	out := bufio.NewReader(outR)
	for range 2 {
		if _, err := io.WriteString(inW, "end a thread\n"); err != nil {
			t.Fatal(err)
		}
		outR.SetReadDeadline(time.Now().Add(deadline))
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("read the helper's thread: %v", err)
		}
		tid, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil || tid == pid {
			t.Fatalf("the helper ended thread %q, want a thread other than %d", line, pid)
		}
		t.Logf("thread %d of %d exited", tid, pid)
	}
	if got := x.Watched(); !slices.Equal(got, []int{pid}) {
		t.Errorf("Watched() = %v after thread exits, want [%d]", got, pid)
	}
	killWatched(t, x) // nothing of the helper came before

	inW.Close()
	e := nextExit(t, x)
	t.Logf("%v", e)
	if e.Pid != pid || e.Signaled() || e.ExitCode() != helperStatus {
		t.Errorf("exit %+v: want pid %d exited with status %d", e, pid, helperStatus)
	}
	if ws := waitStatus(t, cmd); e.Status != ws {
		t.Errorf("status %#x, wait status %#x", e.Status, ws)
	}
	killWatched(t, x) // and nothing more
}

// TestExitsWatchExited watches processes that exited before: a zombie and
// a reaped one.
func TestExitsWatchExited(t *testing.T) {
	requireExits(t)
	x := newTestExits(t)
	cmd := start(t, exec.Command("true"))
	pid := cmd.Process.Pid
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	if err := x.Watch(pid); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Watch of the zombie %d: %v, want os.ErrProcessDone", pid, err)
	}
	waitStatus(t, cmd)
	if err := x.Watch(pid); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Watch of the reaped %d: %v, want os.ErrProcessDone", pid, err)
	}
	if got := x.Watched(); len(got) != 0 {
		t.Errorf("Watched() = %v", got)
	}
	for _, bad := range []int{0, -1, 1 << 30} {
		if err := x.Watch(bad); err == nil {
			t.Errorf("Watch(%d) succeeded", bad)
		}
	}
	killWatched(t, x)
}

func TestExitsPrograms(t *testing.T) {
	requireExits(t)
	x, err := NewExits()
	if err != nil {
		t.Fatal(err)
	}
	ps := x.Programs()
	if len(ps) != 1 || ps[0].Name != "proc_exit" || ps[0].ID == 0 || ps[0].Tag == "" ||
		ps[0].Kind != "tracepoint" || !slices.Equal(ps[0].Attached, []string{"sched/sched_process_exit"}) {
		t.Errorf("Programs() = %+v", ps)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-x.C(); ok {
		t.Error("C is open after Close")
	}
	if err := x.Watch(os.Getpid()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Watch after Close: %v, want os.ErrClosed", err)
	}
	if err := x.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
