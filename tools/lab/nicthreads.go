package lab

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A veth hands each frame to its peer inside the sender's send system
// call, and the kernel then runs the whole receive path there too: the
// bridge, the other veth and the receiving host's IP and UDP stack are
// all billed to the sending agent, which a real NIC never does (the
// receiving host's NIC takes the frame in its own interrupt). nicThreads
// gives every lab veth a NAPI receive queue run by its own kernel thread
// ("napi/DEV-ID"), so each side of a link pays for what it receives: a
// host's receive path runs in the threads of its veths, the switch's in
// the threads of the hub-side veths, and an agent's own CPU time is what
// it would be on hardware.
//
// The kernel queues a frame for NAPI only if GRO is on at the receiving
// veth and TSO is off at the sending one (otherwise the frame cannot be
// aggregated and veth skips the queue), so both are set on every veth.

// ethtool commands (linux/ethtool.h) and the ethtool_value they take.
const (
	ethtoolSTSO = 0x1f
	ethtoolSGRO = 0x2c
)

type ethtoolValue struct{ cmd, data uint32 }

type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// nicThreads sets up NAPI receive threads for devs in the named network
// namespace. The sysfs switch is only seen through a sysfs mounted from
// that network namespace, so the work runs on a locked thread that enters
// a private mount namespace and the network namespace (as 'ip netns exec'
// does) and then returns to the namespaces it came from. The thread is
// never handed back to the scheduler: it ends with the goroutine, or, if
// it was the main thread, is parked by the runtime in the namespaces it
// started in, where the process's /proc/self still reads right.
func nicThreads(nsName string, devs []string) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- nicThreadsHere(nsName, devs)
	}()
	return <-done
}

func nicThreadsHere(nsName string, devs []string) (err error) {
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return fmt.Errorf("lab: open namespace %s: %w", nsName, err)
	}
	defer ns.Close()
	origNet, err := netns.Get()
	if err != nil {
		return fmt.Errorf("lab: read the current network namespace: %w", err)
	}
	defer origNet.Close()
	origMnt, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lab: read the current mount namespace: %w", err)
	}
	defer unix.Close(origMnt)
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("lab: private mount namespace: %w", err)
	}
	defer func() {
		if rerr := unix.Setns(origMnt, unix.CLONE_NEWNS); rerr != nil {
			err = errors.Join(err, fmt.Errorf("lab: return to the mount namespace: %w", rerr))
		}
	}()
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("lab: make mounts private: %w", err)
	}
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("lab: enter namespace %s: %w", nsName, err)
	}
	defer func() {
		if rerr := netns.Set(origNet); rerr != nil {
			err = errors.Join(err, fmt.Errorf("lab: leave namespace %s: %w", nsName, rerr))
		}
	}()
	if err := unix.Unmount("/sys", unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		return fmt.Errorf("lab: unmount /sys in %s: %w", nsName, err)
	}
	if err := unix.Mount(nsName, "/sys", "sysfs", 0, ""); err != nil {
		return fmt.Errorf("lab: mount sysfs for %s: %w", nsName, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lab: ethtool socket in %s: %w", nsName, err)
	}
	defer unix.Close(fd)
	for _, dev := range devs {
		if err := ethtoolSet(fd, dev, ethtoolSTSO, 0); err != nil {
			return fmt.Errorf("lab: turn TSO off on %s in %s: %w", dev, nsName, err)
		}
		if err := ethtoolSet(fd, dev, ethtoolSGRO, 1); err != nil {
			return fmt.Errorf("lab: turn GRO on on %s in %s: %w", dev, nsName, err)
		}
		if err := setThreaded(dev); err != nil {
			return fmt.Errorf("lab: NAPI thread for %s in %s: %w (fix: the kernel needs threaded NAPI on veth, Linux 5.13 or later)", dev, nsName, err)
		}
	}
	return nil
}

func ethtoolSet(fd int, dev string, cmd, val uint32) error {
	v := ethtoolValue{cmd: cmd, data: val}
	var r ifreqPtr
	copy(r.name[:unix.IFNAMSIZ-1], dev)
	r.data = unsafe.Pointer(&v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&r)))
	runtime.KeepAlive(&v)
	if errno != 0 {
		return errno
	}
	return nil
}

// setThreaded turns on the NAPI thread of dev and reads it back.
func setThreaded(dev string) error {
	path := "/sys/class/net/" + dev + "/threaded"
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return err
	}
	got, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if v := strings.TrimSpace(string(got)); v != "1" && v != "enabled" {
		return fmt.Errorf("%s reads %q after writing 1", path, v)
	}
	return nil
}

// NICThreads returns the PIDs of the NAPI threads of the lab's veths: the
// hosts' ends (eth0, eth1...: the names repeat in every host, so these are
// every such thread on the machine) and the hub's ends.
func (l *Lab) NICThreads() (host, hub []int, err error) {
	s, err := readState(l.name)
	if err != nil {
		return nil, nil, err
	}
	want := map[string]*[]int{}
	for _, h := range s.Hosts {
		for _, hl := range h.Links {
			want[hl.Veth] = &host
			want[hl.HubVeth] = &hub
		}
	}
	threads, err := napiThreads()
	if err != nil {
		return nil, nil, err
	}
	for dev, pids := range threads {
		if list, ok := want[dev]; ok {
			*list = append(*list, pids...)
		}
	}
	return host, hub, nil
}

// napiThreads maps device names to the PIDs of their NAPI threads, which
// the kernel names "napi/DEV-ID".
func napiThreads() (map[string][]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("lab: list processes: %w", err)
	}
	out := map[string][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil {
			continue // gone since the listing
		}
		name, ok := strings.CutPrefix(strings.TrimSpace(string(comm)), "napi/")
		i := strings.LastIndexByte(name, '-')
		if !ok || i < 0 {
			continue
		}
		if _, err := strconv.Atoi(name[i+1:]); err != nil {
			continue
		}
		out[name[:i]] = append(out[name[:i]], pid)
	}
	return out, nil
}
