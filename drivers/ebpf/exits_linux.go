//go:build linux && !vigil_noebpf

package ebpf

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// exitsCap is the capacity of C.
const exitsCap = 64

type exits struct {
	objs exitsObjects
	tp   tracepoint
	rd   *ringbuf.Reader
	c    chan Exit
	done chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool
}

func newExits() (*exits, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove the memlock limit: %w", err)
	}
	x := &exits{c: make(chan Exit, exitsCap), done: make(chan struct{})}
	if err := loadExitsObjects(&x.objs, nil); err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			err = notSupported("the kernel cannot load the program", err)
		}
		return nil, fmt.Errorf("load exits: %w", err)
	}
	x.tp = tracepoint{prog: x.objs.ProcExit, progName: exitsProgProcExit, group: "sched", name: "sched_process_exit"}
	l, err := attachTracepoint(x.tp.group, x.tp.name, x.tp.prog, mountTracefs())
	if err != nil {
		x.objs.Close()
		return nil, err
	}
	x.tp.link = l
	rd, err := ringbuf.NewReader(x.objs.Exits)
	if err != nil {
		l.Close()
		x.objs.Close()
		return nil, fmt.Errorf("read ring buffer %s: %w", exitsMapExits, err)
	}
	x.rd = rd
	x.wg.Go(x.read)
	return x, nil
}

func (x *exits) watch(pid int) error {
	if pid <= 0 || pid > 1<<22 {
		return fmt.Errorf("ebpf: exits: watch pid %d: not a process id", pid)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return fmt.Errorf("ebpf: exits: watch pid %d: %w", pid, os.ErrClosed)
	}
	key := uint32(pid)
	if err := x.objs.Watched.Update(key, uint8(1), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("ebpf: exits: watch pid %d: %w", pid, err)
	}
	// The process may have exited before the entry was there: then it
	// will not be reported.
	gone, err := exited(pid)
	if err != nil {
		x.objs.Watched.Delete(key)
		return fmt.Errorf("ebpf: exits: watch pid %d: %w", pid, err)
	}
	if !gone {
		return nil
	}
	// Gone, and the program took the entry: it reports the exit.
	if err := x.objs.Watched.Delete(key); errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return fmt.Errorf("ebpf: exits: watch pid %d: %w", pid, os.ErrProcessDone)
}

// exited says whether the process pid has exited: all its threads are
// gone, and the kernel has run its last sched_process_exit.
func exited(pid int) (bool, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return true, nil
	case errors.Is(err, unix.EINVAL):
		return false, errors.New("not a process: a thread of another, or no such id")
	case err != nil:
		return false, nil // no pidfds here: trust the caller
	}
	defer unix.Close(fd)
	// A pidfd polls readable once the thread group is empty and the
	// leader a zombie, which is after the last thread's exit tracepoint.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, nil
		}
		return n > 0 && fds[0].Revents&unix.POLLIN != 0, nil
	}
}

func (x *exits) unwatch(pid int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed || pid <= 0 || pid > 1<<22 {
		return nil
	}
	err := x.objs.Watched.Delete(uint32(pid))
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("ebpf: exits: unwatch pid %d: %w", pid, err)
	}
	return nil
}

func (x *exits) watched() []int {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	var (
		pids []int
		key  uint32
		val  uint8
	)
	it := x.objs.Watched.Iterate()
	for it.Next(&key, &val) {
		pids = append(pids, int(key))
	}
	slices.Sort(pids)
	return pids
}

func (x *exits) lost() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return 0
	}
	var n uint64
	if err := x.objs.Lost.Lookup(uint32(0), &n); err != nil {
		return 0
	}
	return n
}

// read moves the exits from the ring buffer to C.
func (x *exits) read() {
	var rec ringbuf.Record
	for {
		if err := x.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrFlushed) {
				continue
			}
			return // closed
		}
		e, ok := exitOf(rec.RawSample)
		if !ok {
			continue
		}
		select {
		case x.c <- e:
		case <-x.done:
			return
		}
	}
}

func (x *exits) programs() []ProgramInfo {
	x.mu.Lock()
	defer x.mu.Unlock()
	p := x.tp.info()
	if !x.closed {
		p = programInfo(x.tp.prog, p)
	}
	return []ProgramInfo{p}
}

func (x *exits) close() error {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return nil
	}
	x.closed = true
	x.mu.Unlock()
	close(x.done)
	err := errors.Join(x.tp.link.Close(), x.rd.Close())
	x.wg.Wait()
	close(x.c)
	if err = errors.Join(err, x.objs.Close()); err != nil {
		return fmt.Errorf("ebpf: exits: close: %w", err)
	}
	return nil
}
