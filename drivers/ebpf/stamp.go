package ebpf

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// The UAPI headers of the asm/ folder live in a per-architecture folder on
// Debian-like systems, where clang's BPF target does not look: the
// -idirafter flags name those of the usual build hosts, and a folder that
// does not exist is ignored.
//go:generate go tool bpf2go -tags linux,!vigil_noebpf -target bpfel hbstamp hbstamp.c -- -O2 -g -Wall -Werror -idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include/aarch64-linux-gnu

// DefaultPort is the heartbeat port, the same on every host of a cluster.
const DefaultPort = 5405

// A Stamper counts the heartbeats that reach the kernel on the devices it
// is attached to, with a TCX ingress program that only reads packets:
//
//	s, err := ebpf.NewStamper(ebpf.DefaultPort)
//	if errors.Is(err, ebpf.ErrUnsupported) { ... fall back ... }
//	defer s.Close()
//	err = s.Attach(eth0.Index)
//	...
//	stamps, err = s.Read(stamps[:0])
//
// A Stamper is safe for concurrent use.
type Stamper struct {
	s *stamper // per OS
}

// NewStamper loads the stamping program for heartbeats to port. It attaches
// to no device yet.
func NewStamper(port uint16) (*Stamper, error) {
	s, err := newStamper(port)
	if err != nil {
		return nil, fmt.Errorf("ebpf: stamper: %w", err)
	}
	return &Stamper{s: s}, nil
}

// Attach stamps the heartbeats arriving on the device with index ifindex,
// in the network namespace of the calling OS thread (lock it with
// runtime.LockOSThread before switching namespaces). Attaching a device
// twice is a no-op.
func (s *Stamper) Attach(ifindex int) error { return s.s.attach(ifindex) }

// Detach stops stamping on the device; its stamps stay until they are
// evicted. Detaching a device that is not attached is a no-op.
func (s *Stamper) Detach(ifindex int) error { return s.s.detach(ifindex) }

// Attached returns the indexes of the attached devices, sorted.
func (s *Stamper) Attached() []int { return s.s.attached() }

// Read appends a stamp per (device, source) to dst, sorted by device then
// address, and returns the extended slice.
func (s *Stamper) Read(dst []Stamp) ([]Stamp, error) { return s.s.read(dst) }

// Close detaches every device and unloads the program and its map.
func (s *Stamper) Close() error { return s.s.close() }

// Program describes the loaded program, for diagnostics.
func (s *Stamper) Program() ProgramInfo { return s.s.program() }

// A Stamp is what the kernel saw of one source's heartbeats on one device.
type Stamp struct {
	// Ifindex is the receiving device's index.
	Ifindex int
	// Addr is the sender's address; an IPv4 address is unmapped.
	Addr netip.Addr
	// Count is the number of heartbeats seen since the entry was created.
	Count uint64
	// Last is the arrival of the last one, on the clock of Monotonic.
	Last time.Duration
}

func (s Stamp) String() string {
	return fmt.Sprintf("%s on ifindex %d: %d heartbeats, last at %v", s.Addr, s.Ifindex, s.Count, s.Last)
}

// stampOf decodes one map entry: the key {ifindex, addr} and the value
// {count, last_ns} of hbstamp.c.
func stampOf(ifindex uint32, addr [16]byte, count, lastNS uint64) Stamp {
	return Stamp{
		Ifindex: int(ifindex),
		Addr:    netip.AddrFrom16(addr).Unmap(),
		Count:   count,
		Last:    time.Duration(lastNS),
	}
}

// keyAddr is addr as the map's key holds it: 16 bytes, IPv4 mapped.
func keyAddr(addr netip.Addr) [16]byte { return addr.As16() }

// sortStamps orders stamps by device, then address.
func sortStamps(stamps []Stamp) {
	slices.SortFunc(stamps, func(a, b Stamp) int {
		if c := cmp.Compare(a.Ifindex, b.Ifindex); c != 0 {
			return c
		}
		return a.Addr.Compare(b.Addr)
	})
}

// devLabel names a device in errors and diagnostics: "eth0 (ifindex 3)",
// or "ifindex 3" when its name is unknown.
func devLabel(name string, ifindex int) string {
	if name == "" {
		return fmt.Sprintf("ifindex %d", ifindex)
	}
	return fmt.Sprintf("%s (ifindex %d)", name, ifindex)
}
