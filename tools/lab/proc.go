package lab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// startIn starts cmd straight into the cgroup folder cgroup and, unless ns
// is empty, into the named network namespace: the process is forked from
// an OS thread set into it.
func startIn(ns, cgroup string, cmd *exec.Cmd) error {
	fd, err := unix.Open(cgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lab: open cgroup %s: %w (fix: run 'vigil lab up' again)", cgroup, err)
	}
	defer unix.Close(fd)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
	start := func() error {
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("lab: start %s: %w", cmd.Path, err)
		}
		return nil
	}
	if ns == "" {
		return start()
	}
	return inNS(ns, start)
}

// startDaemon starts argv as its own session in ns and cgroup, with
// standard output and error appended to logPath, and reaps it in the
// background when it exits. It returns the process ID.
func startDaemon(ns, cgroup string, argv []string, logPath string, env []string, files []*os.File) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("lab: empty command line (fix: AgentCommand and SupervisorCommand must return a program)")
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("lab: open log %s: %w", logPath, err)
	}
	defer log.Close()
	for try := 0; ; try++ {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.Env = append(os.Environ(), env...)
		cmd.ExtraFiles = files
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := startIn(ns, cgroup, cmd); err != nil {
			return 0, err
		}
		if !killedAtBirth(cmd) {
			go cmd.Wait() // reap it if it exits while this process runs
			return cmd.Process.Pid, nil
		}
		if try > 0 {
			return 0, fmt.Errorf("lab: the kernel killed %s as it was started into %s (fix: start the lab from a process in the root cgroup)", argv[0], cgroup)
		}
		// Linux kills a process started with CLONE_INTO_CGROUP when the
		// starter's cgroup and the target have been through cgroup.kill
		// a different number of times. The root cgroup never is, like
		// the lab's freshly made ones: start from there.
		if err := joinRootCgroup(); err != nil {
			return 0, err
		}
	}
}

// killedAtBirth reports whether cmd's process, just started, was SIGKILLed
// by the kernel before it ran; it reaps such a process. A process that
// exits on its own this early is reaped too, and reported alive: its log
// says why it stopped.
func killedAtBirth(cmd *exec.Cmd) bool {
	if !exiting(cmd.Process.Pid) {
		return false
	}
	cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// exiting reports whether pid is exiting or dead: its state is Z or X, or
// its flags have PF_EXITING.
func exiting(pid int) bool {
	const pfExiting = 0x4
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(data, ')')
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 7 {
		return true
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err != nil || f[0] == "Z" || f[0] == "X" || flags&pfExiting != 0
}

// joinRootCgroup moves this process into the root of the cgroup2 tree.
func joinRootCgroup() error {
	m, err := cgroup2Mount()
	if err != nil {
		return err
	}
	return writeCgroup(m, "cgroup.procs", strconv.Itoa(os.Getpid()))
}

// startAgent starts host h's agent and records its PID.
func startAgent(h *hostState) error {
	pid, err := startDaemon(h.NS, h.Agent.Cgroup, h.Agent.Argv, h.Agent.Log, nil, nil)
	if err != nil {
		return fmt.Errorf("lab: start the agent of %s: %w", h.Name, err)
	}
	h.Agent.PID = pid
	return nil
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] == ')' {
			return i+2 < len(data) && data[i+2] != 'Z' && data[i+2] != 'X'
		}
	}
	return false
}

// procStat returns the fields of /proc/PID/stat after the command name:
// the state first, then the parent's PID; nil when pid is gone.
func procStat(pid int) []string {
	if pid <= 0 {
		return nil
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(data[i+1:]))
}

// parentOf returns pid's parent, 0 when pid is gone.
func parentOf(pid int) int {
	f := procStat(pid)
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// stopped reports whether pid is stopped by a signal.
func stopped(pid int) bool {
	f := procStat(pid)
	return len(f) > 0 && (f[0] == "T" || f[0] == "t")
}

// children lists pid's children, from every thread's
// /proc/PID/task/TID/children.
func children(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(field); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// inCgroupDir reports whether pid is in the cgroup folder dir.
func inCgroupDir(pid int, dir string) bool {
	pids, err := cgroupPIDs(dir)
	if err != nil {
		return false
	}
	return slices.Contains(pids, pid)
}
