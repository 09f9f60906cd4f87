package itest

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// follower signals on C whenever a file in the lab's host folders or the
// lab folder itself is written (the agents' and the supervisor's logs).
type follower struct {
	C chan struct{}
	f *os.File
}

func newFollower(dir string, hosts []string) (*follower, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	paths := []string{dir}
	for _, h := range hosts {
		paths = append(paths, filepath.Join(dir, h))
	}
	for _, p := range paths {
		if _, err := unix.InotifyAddWatch(fd, p, unix.IN_MODIFY|unix.IN_CREATE); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("inotify %s: %w", p, err)
		}
	}
	// A non-blocking descriptor in an os.File waits in the runtime's
	// poller, so Close wakes the reader.
	f := &follower{C: make(chan struct{}, 1), f: os.NewFile(uintptr(fd), "inotify")}
	go f.read()
	return f, nil
}

func (f *follower) read() {
	buf := make([]byte, 4096)
	for {
		if _, err := f.f.Read(buf); err != nil {
			return
		}
		select {
		case f.C <- struct{}{}:
		default:
		}
	}
}

// Close stops following.
func (f *follower) Close() { f.f.Close() }
