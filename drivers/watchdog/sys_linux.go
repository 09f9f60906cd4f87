//go:build linux && !vigil_nowatchdoghw

package watchdog

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Linux watchdog API:
// https://www.kernel.org/doc/html/latest/watchdog/watchdog-api.html.
// github.com/mdlayher/watchdog opens only /dev/watchdog and keeps its file
// to itself, so the device is opened here and driven with the same ioctls.

// fileSys is the real syscalls: ioctls on an open device node.
type fileSys struct{ f *os.File }

// openSys opens (and so arms) the device node at path.
func openSys(path string) (syscalls, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &fileSys{f: f}, nil
}

func (s *fileSys) fd() int { return int(s.f.Fd()) }

// ioctlInt runs an ioctl whose argument is a pointer to an int that the
// kernel reads and writes back.
func (s *fileSys) ioctlInt(req uint, v int) (int, error) {
	arg := int32(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(s.fd()), uintptr(req), uintptr(unsafe.Pointer(&arg)))
	if errno != 0 {
		return 0, os.NewSyscallError("ioctl", errno)
	}
	return int(arg), nil
}

func (s *fileSys) setTimeout(sec int) (int, error) { return s.ioctlInt(unix.WDIOC_SETTIMEOUT, sec) }
func (s *fileSys) getTimeout() (int, error)        { return s.ioctlInt(unix.WDIOC_GETTIMEOUT, 0) }
func (s *fileSys) getTimeLeft() (int, error)       { return s.ioctlInt(unix.WDIOC_GETTIMELEFT, 0) }

func (s *fileSys) keepalive() error {
	if err := unix.IoctlWatchdogKeepalive(s.fd()); err != nil {
		return os.NewSyscallError("ioctl", err)
	}
	return nil
}

func (s *fileSys) write(b []byte) error {
	_, err := s.f.Write(b)
	return err
}

func (s *fileSys) close() error { return s.f.Close() }
