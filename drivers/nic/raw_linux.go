//go:build linux

package nic

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The heartbeat sockets are non-blocking and every call on them is made
// with MSG_DONTWAIT, so they are issued as raw system calls: the runtime
// then neither hands the goroutine's processor to another thread when a
// call is slow (a send over veth runs the receiver's whole network path)
// nor pays for the bookkeeping of a call that may block. unix.Recvmsg would
// also ask the socket's protocol (one more system call) and allocate for
// every source address.

// rawAddr is a peer's address in the kernel's form.
type rawAddr struct {
	sa  unix.RawSockaddrInet6 // large enough for either family
	len uint32
}

func newRawAddr(a netip.Addr, port int, zone uint32) rawAddr {
	var r rawAddr
	if a.Is4() {
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.sa))
		s4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s4.Port))[:], uint16(port))
		s4.Addr = a.As4()
		r.len = unix.SizeofSockaddrInet4
		return r
	}
	r.sa.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&r.sa.Port))[:], uint16(port))
	r.sa.Addr = a.As16()
	r.sa.Scope_id = zone
	r.len = unix.SizeofSockaddrInet6
	return r
}

// sendRaw sends pkt to addr without blocking.
func sendRaw(fd int, pkt []byte, addr *rawAddr) error {
	var p unsafe.Pointer
	if len(pkt) > 0 {
		p = unsafe.Pointer(&pkt[0])
	}
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(pkt)),
		unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, uintptr(unsafe.Pointer(&addr.sa)), uintptr(addr.len))
	if e != 0 {
		return e
	}
	return nil
}

// recvRaw reads one datagram without blocking: its length, the length of
// its control messages, the message flags and its source address.
func recvRaw(fd int, buf, oob []byte, dev string) (n, oobn, flags int, from netip.AddrPort, err error) {
	var name unix.RawSockaddrInet6
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	msg := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&name)), Namelen: uint32(unsafe.Sizeof(name)), Iov: &iov, Iovlen: 1}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT)
	if e != 0 {
		return 0, 0, 0, netip.AddrPort{}, e
	}
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&name.Port))[:])
	switch name.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&name))
		from = netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), port)
	case unix.AF_INET6:
		ip := netip.AddrFrom16(name.Addr)
		if name.Scope_id != 0 {
			ip = ip.WithZone(dev)
		}
		from = netip.AddrPortFrom(ip, port)
	}
	return int(r), int(msg.Controllen), int(msg.Flags), from, nil
}
