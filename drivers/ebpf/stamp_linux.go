//go:build linux && !vigil_noebpf

package ebpf

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// readBatch is how many entries one BPF_MAP_LOOKUP_BATCH call returns.
const readBatch = 256

type stamper struct {
	mu      sync.Mutex
	objs    hbstampObjects
	links   map[int]attachment // by ifindex
	closed  bool
	noBatch bool // the kernel has no batch lookup: iterate
	keys    []hbstampStampKey
	vals    []hbstampStampVal
}

type attachment struct {
	link link.Link
	name string // the device's name at attach time, "" if unknown
}

func newStamper(port uint16) (*stamper, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove the memlock limit: %w", err)
	}
	spec, err := loadHbstamp()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables[hbstampVarHbPort].Set(port); err != nil {
		return nil, fmt.Errorf("set the heartbeat port: %w", err)
	}
	s := &stamper{links: make(map[int]attachment)}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			err = notSupported("the kernel cannot load the program", err)
		}
		return nil, fmt.Errorf("load %s: %w", hbstampProgHbStamp, err)
	}
	return s, nil
}

func (s *stamper) attach(ifindex int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("ebpf: stamper: attach to device index %d: %w", ifindex, os.ErrClosed)
	}
	if _, ok := s.links[ifindex]; ok {
		return nil
	}
	name := devName(ifindex)
	l, err := link.AttachTCX(link.TCXOptions{
		Interface: ifindex,
		Program:   s.objs.HbStamp,
		Attach:    ebpf.AttachTCXIngress,
	})
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			err = notSupported("TCX unsupported", err)
		}
		return fmt.Errorf("ebpf: stamper: attach tcx ingress to %s: %w", devLabel(name, ifindex), err)
	}
	s.links[ifindex] = attachment{link: l, name: name}
	return nil
}

func (s *stamper) detach(ifindex int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.links[ifindex]
	if !ok {
		return nil
	}
	delete(s.links, ifindex)
	if err := a.link.Close(); err != nil {
		return fmt.Errorf("ebpf: stamper: detach from %s: %w", devLabel(a.name, ifindex), err)
	}
	return nil
}

func (s *stamper) attached() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.links))
}

func (s *stamper) read(dst []Stamp) ([]Stamp, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return dst, fmt.Errorf("ebpf: stamper: read: %w", os.ErrClosed)
	}
	start := len(dst)
	var err error
	if !s.noBatch {
		dst, err = s.readBatch(dst)
		if errors.Is(err, ebpf.ErrNotSupported) {
			s.noBatch = true
			dst = dst[:start]
		}
	}
	if s.noBatch {
		dst, err = s.iterate(dst)
	}
	if err != nil {
		return dst[:start], fmt.Errorf("ebpf: stamper: read %s: %w", hbstampMapStamps, err)
	}
	sortStamps(dst[start:])
	return dst, nil
}

func (s *stamper) readBatch(dst []Stamp) ([]Stamp, error) {
	if s.keys == nil {
		s.keys = make([]hbstampStampKey, readBatch)
		s.vals = make([]hbstampStampVal, readBatch)
	}
	var cursor ebpf.MapBatchCursor
	for {
		n, err := s.objs.Stamps.BatchLookup(&cursor, s.keys, s.vals, nil)
		for i := range n {
			k, v := &s.keys[i], &s.vals[i]
			dst = append(dst, stampOf(k.Ifindex, k.Addr, v.Count, v.LastNs))
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

func (s *stamper) iterate(dst []Stamp) ([]Stamp, error) {
	var (
		k hbstampStampKey
		v hbstampStampVal
	)
	it := s.objs.Stamps.Iterate()
	for it.Next(&k, &v) {
		dst = append(dst, stampOf(k.Ifindex, k.Addr, v.Count, v.LastNs))
	}
	return dst, it.Err()
}

func (s *stamper) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, ifindex := range slices.Sorted(maps.Keys(s.links)) {
		a := s.links[ifindex]
		if err := a.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach from %s: %w", devLabel(a.name, ifindex), err))
		}
	}
	clear(s.links)
	if err := s.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ebpf: stamper: close: %w", err)
	}
	return nil
}

func (s *stamper) program() ProgramInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := ProgramInfo{Name: hbstampProgHbStamp, Kind: "tcx ingress"}
	for _, ifindex := range slices.Sorted(maps.Keys(s.links)) {
		p.Attached = append(p.Attached, devLabel(s.links[ifindex].name, ifindex))
	}
	if s.closed {
		return p
	}
	info, err := s.objs.HbStamp.Info()
	if err != nil {
		return p
	}
	p.Name, p.Tag = info.Name, info.Tag
	if id, ok := info.ID(); ok {
		p.ID = uint32(id)
	}
	return p
}

// devName is the name of the device in the calling thread's network
// namespace, or "" when there is none.
func devName(ifindex int) string {
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return ""
	}
	return ifi.Name
}
