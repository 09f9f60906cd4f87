//go:build linux && (amd64 || arm64 || 386 || arm || riscv64 || loong64 || s390x) && !vigil_noipmilocal

package ipmi

import (
	"errors"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's IPMI device API (include/uapi/linux/ipmi.h), as ipmitool's
// open interface and u-root's pkg/ipmi use it: a request goes down with
// IPMICTL_SEND_COMMAND, and its answer comes back, once poll says the
// device is readable, with IPMICTL_RECEIVE_MSG_TRUNC. These architectures
// share the generic ioctl number layout.

// ipmiMsg is struct ipmi_msg.
type ipmiMsg struct {
	netFn   uint8
	cmd     uint8
	dataLen uint16
	data    unsafe.Pointer
}

// ipmiReq is struct ipmi_req.
type ipmiReq struct {
	addr    unsafe.Pointer
	addrLen uint32
	msgID   int // C long
	msg     ipmiMsg
}

// ipmiRecv is struct ipmi_recv.
type ipmiRecv struct {
	recvType int32
	addr     unsafe.Pointer
	addrLen  uint32
	msgID    int // C long
	msg      ipmiMsg
}

// ipmiSystemInterfaceAddr is struct ipmi_system_interface_addr: the BMC.
type ipmiSystemInterfaceAddr struct {
	addrType int32
	channel  int16
	lun      uint8
}

// ipmiAddr is struct ipmi_addr, large enough for any source address.
type ipmiAddr struct {
	addrType int32
	channel  int16
	data     [32]byte
}

const (
	ipmiSystemInterfaceAddrType = 0x0c
	ipmiBMCChannel              = 0x0f
)

// ioc is the generic _IOC: direction (1 write, 2 read), size, type, number.
func ioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | 'i'<<8 | nr }

var (
	ipmictlReceiveMsgTrunc = ioc(3, 11, unsafe.Sizeof(ipmiRecv{}))
	ipmictlSendCommand     = ioc(2, 13, unsafe.Sizeof(ipmiReq{}))
)

// devSys is the real syscalls: ioctls and poll on the device's descriptor.
// The descriptor is not handed to the runtime's poller: poll(2) waits.
type devSys struct{ fd int }

func openSys(path string) (syscalls, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &devSys{fd: fd}, nil
}

func (s *devSys) ioctl(name string, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(s.fd), req, uintptr(arg))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return os.NewSyscallError("ioctl "+name, errno)
	}
}

func (s *devSys) send(r sysRequest) error {
	addr := &ipmiSystemInterfaceAddr{addrType: ipmiSystemInterfaceAddrType, channel: ipmiBMCChannel}
	req := &ipmiReq{
		addr:    unsafe.Pointer(addr),
		addrLen: uint32(unsafe.Sizeof(*addr)),
		msgID:   int(r.msgID),
		msg:     ipmiMsg{netFn: r.netFn, cmd: r.cmd, dataLen: uint16(len(r.data))},
	}
	data := append([]byte(nil), r.data...) // on the heap, for the kernel to read
	if len(data) > 0 {
		req.msg.data = unsafe.Pointer(&data[0])
	}
	err := s.ioctl("IPMICTL_SEND_COMMAND", ipmictlSendCommand, unsafe.Pointer(req))
	runtime.KeepAlive(req)
	runtime.KeepAlive(addr)
	runtime.KeepAlive(data)
	return err
}

func (s *devSys) wait(timeout time.Duration) (bool, error) {
	ms := int((timeout + time.Millisecond - 1) / time.Millisecond)
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, ms)
	switch {
	case errors.Is(err, unix.EINTR):
		return false, nil
	case err != nil:
		return false, os.NewSyscallError("poll", err)
	}
	return n > 0 && fds[0].Revents&unix.POLLIN != 0, nil
}

func (s *devSys) receive(buf []byte) (sysResponse, error) {
	addr := &ipmiAddr{}
	data := make([]byte, len(buf)) // on the heap, for the kernel to write
	recv := &ipmiRecv{
		addr:    unsafe.Pointer(addr),
		addrLen: uint32(unsafe.Sizeof(*addr)),
		msg:     ipmiMsg{data: unsafe.Pointer(&data[0]), dataLen: uint16(len(data))},
	}
	err := s.ioctl("IPMICTL_RECEIVE_MSG_TRUNC", ipmictlReceiveMsgTrunc, unsafe.Pointer(recv))
	runtime.KeepAlive(addr)
	if errors.Is(err, unix.EAGAIN) {
		return sysResponse{}, errNoMessage
	}
	if err != nil {
		return sysResponse{}, err
	}
	n := copy(buf, data[:min(int(recv.msg.dataLen), len(data))])
	return sysResponse{recvType: recv.recvType, msgID: int64(recv.msgID), netFn: recv.msg.netFn, cmd: recv.msg.cmd, n: n}, nil
}

func (s *devSys) close() error { return unix.Close(s.fd) }
