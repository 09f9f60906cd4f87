package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The fault program's return codes (TCX_NEXT, TCX_DROP).
const (
	tcxNext = -1
	tcxDrop = 2
)

// Sizes of the fault maps. The hub namespace is new for each lab, so its
// ifindexes stay small: lo, the bridges, then the veths.
const (
	maxIfindex = 1024
	maxBlocked = MaxHosts * MaxLinks * MaxHosts
)

// Offsets in struct __sk_buff and in an Ethernet + IPv4 frame.
const (
	skbIfindex = 40
	skbData    = 76
	skbDataEnd = 80
	ethType    = 12
	ipVersion  = 14
	ipSrc      = 26
	ipDst      = 30
	ipEnd      = 34
)

// Pin names under the lab's pin folder.
const (
	pinLoss    = "loss"
	pinBlocked = "blocked"
	pinProg    = "faults"
)

// blockKey is a key of the blocked map: a hub-side veth and an IPv4
// address; a packet through that veth from or to that address is dropped.
type blockKey struct {
	Ifindex uint32
	Addr    [4]byte
}

// faultProgram returns the instructions of the fault program: drop with
// the veth's loss percentage, then drop IPv4 packets whose source or
// destination is blocked on that veth; pass everything else. lossFD and
// blockedFD are the maps' file descriptors.
func faultProgram(lossFD, blockedFD int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // r6 = skb
		asm.LoadMem(asm.R7, asm.R6, skbIfindex, asm.Word),

		// Loss: pct = loss[ifindex]; drop if prandom % 100 < pct.
		asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word),
		asm.LoadMapPtr(asm.R1, lossFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "partition"),
		asm.LoadMem(asm.R8, asm.R0, 0, asm.Word),
		asm.JEq.Imm(asm.R8, 0, "partition"),
		asm.FnGetPrandomU32.Call(),
		asm.Mod.Imm(asm.R0, 100),
		asm.JLT.Reg(asm.R0, asm.R8, "drop"),

		// Partition: parse Ethernet + IPv4 with bounds checks.
		asm.LoadMem(asm.R2, asm.R6, skbData, asm.Word).WithSymbol("partition"),
		asm.LoadMem(asm.R3, asm.R6, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, ipEnd),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R4, asm.R2, ethType, asm.Half),
		asm.JNE.Imm(asm.R4, 0x0008, "pass"), // ETH_P_IP in network order, loaded little-endian
		asm.LoadMem(asm.R4, asm.R2, ipVersion, asm.Byte),
		asm.And.Imm(asm.R4, 0xf0),
		asm.JNE.Imm(asm.R4, 0x40, "pass"),
		asm.LoadMem(asm.R8, asm.R2, ipSrc, asm.Word),
		asm.LoadMem(asm.R9, asm.R2, ipDst, asm.Word),

		// blocked[{ifindex, saddr}] or blocked[{ifindex, daddr}]: drop.
		asm.StoreMem(asm.RFP, -16, asm.R7, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R8, asm.Word),
		asm.LoadMapPtr(asm.R1, blockedFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),
		asm.StoreMem(asm.RFP, -12, asm.R9, asm.Word),
		asm.LoadMapPtr(asm.R1, blockedFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),

		asm.Mov.Imm(asm.R0, tcxNext).WithSymbol("pass"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcxDrop).WithSymbol("drop"),
		asm.Return(),
	}
}

// ensureBPFFS mounts bpffs on bpfRoot unless one is mounted there.
func ensureBPFFS() error {
	var st unix.Statfs_t
	if err := unix.Statfs(bpfRoot, &st); err != nil {
		return fmt.Errorf("lab: stat %s: %w (fix: the kernel needs CONFIG_BPF_SYSCALL and sysfs)", bpfRoot, err)
	}
	if st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := unix.Mount("bpf", bpfRoot, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("lab: mount bpffs on %s: %w (fix: mount -t bpf bpf %s)", bpfRoot, err, bpfRoot)
	}
	return nil
}

// installFaults loads the fault program and its maps, attaches it to
// both directions of every hub-side veth from inside the hub namespace and
// pins maps, program and links under the lab's pin folder.
func installFaults(s *state) error {
	if err := ensureBPFFS(); err != nil {
		return err
	}
	if err := os.MkdirAll(s.PinDir, 0o700); err != nil {
		return fmt.Errorf("lab: make %s: %w", s.PinDir, err)
	}
	loss, err := ebpf.NewMap(&ebpf.MapSpec{Name: "vl_loss", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: maxIfindex})
	if err != nil {
		return fmt.Errorf("lab: make the loss map: %w", err)
	}
	defer loss.Close()
	blocked, err := ebpf.NewMap(&ebpf.MapSpec{Name: "vl_blocked", Type: ebpf.Hash, KeySize: 8, ValueSize: 1, MaxEntries: maxBlocked})
	if err != nil {
		return fmt.Errorf("lab: make the partition map: %w", err)
	}
	defer blocked.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "vl_faults",
		Type:         ebpf.SchedCLS,
		Instructions: faultProgram(loss.FD(), blocked.FD()),
		License:      "GPL",
	})
	if err != nil {
		return fmt.Errorf("lab: load the fault program: %w", err)
	}
	defer prog.Close()
	for _, p := range []struct {
		obj interface{ Pin(string) error }
		pin string
	}{{loss, pinLoss}, {blocked, pinBlocked}, {prog, pinProg}} {
		if err := p.obj.Pin(filepath.Join(s.PinDir, p.pin)); err != nil {
			return fmt.Errorf("lab: pin %s: %w", p.pin, err)
		}
	}
	return inNS(s.HubNS, func() error {
		for _, h := range s.Hosts {
			for _, hl := range h.Links {
				if hl.HubIndex <= 0 || hl.HubIndex >= maxIfindex {
					return fmt.Errorf("lab: %s has ifindex %d, outside the loss map (0 to %d)", hl.HubVeth, hl.HubIndex, maxIfindex-1)
				}
				for _, dir := range []struct {
					at   ebpf.AttachType
					name string
				}{{ebpf.AttachTCXIngress, "ingress"}, {ebpf.AttachTCXEgress, "egress"}} {
					l, err := link.AttachTCX(link.TCXOptions{Interface: hl.HubIndex, Program: prog, Attach: dir.at})
					if err != nil {
						return fmt.Errorf("lab: attach the fault program to %s %s: %w (fix: the kernel needs TCX, Linux 6.6 or later)", hl.HubVeth, dir.name, err)
					}
					err = l.Pin(filepath.Join(s.PinDir, hl.HubVeth+"-"+dir.name))
					l.Close()
					if err != nil {
						return fmt.Errorf("lab: pin the %s %s link: %w", hl.HubVeth, dir.name, err)
					}
				}
			}
		}
		return nil
	})
}

// openMap opens one of the lab's pinned maps.
func openMap(s *state, pin string) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(filepath.Join(s.PinDir, pin), nil)
	if err != nil {
		return nil, fmt.Errorf("lab: open the pinned map %s: %w (fix: run 'vigil lab up --name %s' again)", filepath.Join(s.PinDir, pin), err, s.Name)
	}
	return m, nil
}

// setLoss sets the loss percentage of one hub-side veth.
func setLoss(s *state, ifindex, pct int) error {
	m, err := openMap(s, pinLoss)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Put(uint32(ifindex), uint32(pct)); err != nil {
		return fmt.Errorf("lab: set loss %d%% on ifindex %d: %w", pct, ifindex, err)
	}
	return nil
}

// setBlocked replaces the blocked map's contents with keys.
func setBlocked(s *state, keys []blockKey) error {
	m, err := openMap(s, pinBlocked)
	if err != nil {
		return err
	}
	defer m.Close()
	var old []blockKey
	var k blockKey
	var v uint8
	it := m.Iterate()
	for it.Next(&k, &v) {
		old = append(old, k)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("lab: read the partition map: %w", err)
	}
	for _, k := range old {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("lab: clear the partition map: %w", err)
		}
	}
	for _, k := range keys {
		if err := m.Put(k, uint8(1)); err != nil {
			return fmt.Errorf("lab: fill the partition map: %w", err)
		}
	}
	return nil
}

// blockKeys lists the keys that separate the groups: on each host's veth
// of each link, the other groups' addresses on that link.
func blockKeys(s *state, groups [][]string) []blockKey {
	group := map[string]int{}
	for g, hosts := range groups {
		for _, h := range hosts {
			group[h] = g
		}
	}
	var keys []blockKey
	for _, h := range s.Hosts {
		for l, hl := range h.Links {
			for _, o := range s.Hosts {
				if group[o.Name] == group[h.Name] {
					continue
				}
				a, err := netip.ParseAddr(o.Links[l].Addr)
				if err != nil || !a.Is4() {
					continue
				}
				keys = append(keys, blockKey{Ifindex: uint32(hl.HubIndex), Addr: a.As4()})
			}
		}
	}
	return keys
}

// removePins removes the lab's pin folder; the links detach with it.
func removePins(name string) error {
	err := os.RemoveAll(pinDir(name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lab: remove %s: %w", pinDir(name), err)
	}
	return nil
}
