// Package loop attaches a file as a Linux loop block device, so a block
// datastore can live in a file: the lab's shared LUN, and the root tests of
// the block backend.
//
//	dev, err := loop.Attach("/run/vigil-lab/demo/ds1.img")
//	defer dev.Detach()
//	ds, err := datastore.OpenBlock(dev.Path, "demo", 3)
package loop

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Device is an attached loop device.
type Device struct {
	Path    string // /dev/loopN
	Backing string // the file behind it
}

// Attach binds the file at backing to a free loop device. Reads and writes
// go to the file without the page cache in between (LO_FLAGS_DIRECT_IO)
// where its file system allows it. The device is not auto-cleared: Detach
// frees it.
func Attach(backing string) (*Device, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("loop: %w (fix: run as root on a kernel with loop devices)", err)
	}
	defer ctl.Close()
	file, err := os.OpenFile(backing, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("loop: open the backing file: %w", err)
	}
	defer file.Close()
	// Another process may take the free device between the two calls:
	// try again with the next one.
	for try := 0; ; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("loop: find a free loop device: %w", err)
		}
		path := "/dev/loop" + strconv.Itoa(n)
		dev, err := openNode(path)
		if err != nil {
			return nil, fmt.Errorf("loop: open %s: %w", path, err)
		}
		cfg := unix.LoopConfig{Fd: uint32(file.Fd()), Size: 512}
		cfg.Info.Flags = unix.LO_FLAGS_DIRECT_IO
		copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], backing)
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if errors.Is(err, unix.EINVAL) {
			// A file system without direct I/O: go through the page cache.
			cfg.Info.Flags = 0
			err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		}
		dev.Close()
		if errors.Is(err, unix.EBUSY) && try < 8 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("loop: attach %s to %s: %w", backing, path, err)
		}
		return &Device{Path: path, Backing: backing}, nil
	}
}

// openNode opens a loop device node, waiting briefly for udev-less
// systems where the kernel has only just made it.
func openNode(path string) (*os.File, error) {
	var err error
	for range 50 {
		var f *os.File
		if f, err = os.OpenFile(path, os.O_RDWR, 0); err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil, err
}

// Detach frees the loop device; the backing file stays.
func (d *Device) Detach() error {
	f, err := os.OpenFile(d.Path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("loop: open %s: %w", d.Path, err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("loop: detach %s: %w", d.Path, err)
	}
	return nil
}
