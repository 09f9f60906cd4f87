package datastore

import (
	"fmt"
	"os"
	"sort"

	"github.com/vigil-ha/vigil/fence/cluster"
	"golang.org/x/sys/unix"
)

// upgradeBlock gives a layout 1 device (slots only) the incident area of
// layout 2: the area after the slots must be unused (all zero) and fit on
// the device; the slots stay as they are, so agents of either version keep
// running on them while it happens.
func upgradeBlock(f *os.File, path string, h *BlockHeader, ring int, size int64) (bool, error) {
	nh := *h
	nh.Layout, nh.IncidentSlots = BlockLayout, ring
	if size < nh.Size() {
		return false, fmt.Errorf("datastore %s: layout 1 with %d slots; its incident area (%d slots of %d bytes per host) needs %d bytes, the device has %d: give a larger device, or fewer incident slots", path, h.Slots, ring, SlotSize, nh.Size(), size)
	}
	start := blockSize(h.Slots, 0)
	at, err := firstNonZero(f, start, nh.Size())
	if err != nil {
		return false, fmt.Errorf("datastore %s: read the incident area: %w", path, err)
	}
	if at >= 0 {
		return false, fmt.Errorf("datastore %s: layout 1; byte %d, in the area the incident slots would take, is not zero: something else uses it; refusing to upgrade. Init a new device", path, at)
	}
	area, err := alignedBuf(SlotSize)
	if err != nil {
		return false, err
	}
	defer unix.Munmap(area)
	copy(area[:SlotSize], nh.encode())
	if _, err := f.WriteAt(area[:SlotSize], 0); err != nil {
		return false, fmt.Errorf("datastore %s: write the header: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("datastore %s: sync: %w", path, err)
	}
	return true, nil
}

// firstNonZero returns the offset of the first non-zero byte in [from, to)
// of f, or -1: read in aligned chunks of a MiB, however large the area.
func firstNonZero(f *os.File, from, to int64) (int64, error) {
	buf, err := alignedBuf(wipeCheck)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(buf)
	for at := from; at < to; at += wipeCheck {
		b := buf[:min(int64(wipeCheck), to-at)]
		if _, err := f.ReadAt(b, at); err != nil {
			return 0, err
		}
		for i, c := range b {
			if c != 0 {
				return at + int64(i), nil
			}
		}
	}
	return -1, nil
}

// incidentOffset is where incident slot i of host h lies.
func (b *Block) incidentOffset(h, i int) int64 {
	return int64(1+b.header.Slots+h*b.header.IncidentSlots+i) * SlotSize
}

// WriteIncident stores x in its coordinator's incident ring (x.ID.Host):
// over the older version of the same incident, else in an empty slot,
// else over a slot that fails its checks, else over that host's oldest
// incident. A version older than the one stored is not written. The ring
// is read first, so a restarted agent picks up where the last one left;
// only x.ID.Host writes its ring. Safe for concurrent use.
func (b *Block) WriteIncident(x *cluster.Incident) error {
	h, r := x.ID.Host, b.header.IncidentSlots
	if h < 0 || h >= b.hosts {
		return fmt.Errorf("datastore %s: incident of host %d: the cluster has %d hosts", b.path, h, b.hosts)
	}
	b.imu.Lock()
	defer b.imu.Unlock()
	if b.ring == nil {
		ring, err := alignedBuf(r * SlotSize)
		if err != nil {
			return err
		}
		iw, err := alignedBuf(SlotSize)
		if err != nil {
			unix.Munmap(ring)
			return err
		}
		b.ring, b.iw = ring, iw
	}
	enc, err := appendIncidentFit(b.iw[:0], b.header.ClusterID, x)
	if err != nil {
		return fmt.Errorf("datastore %s: %w", b.path, err)
	}
	clear(b.iw[len(enc):SlotSize])
	if _, err := b.f.ReadAt(b.ring, b.incidentOffset(h, 0)); err != nil {
		return fmt.Errorf("datastore %s: read the incident ring of host %d: %w", b.path, h, err)
	}
	// rank: 0 same incident, 1 empty, 2 bad, 3 another incident (oldest first)
	best, rank := -1, 4
	var oldest cluster.IncidentID
	for i := range r {
		y, err := DecodeIncident(b.ring[i*SlotSize:(i+1)*SlotSize], b.header.ClusterID, h)
		switch {
		case err == nil && y != nil && y.ID == x.ID:
			if y.Version > x.Version {
				return nil // a newer version is there already
			}
			best, rank = i, 0
		case err == nil && y == nil && rank > 1:
			best, rank = i, 1
		case err != nil && rank > 2:
			best, rank = i, 2
		case err == nil && y != nil && (rank > 3 || (rank == 3 && y.ID.Less(oldest))):
			best, rank, oldest = i, 3, y.ID
		}
		if rank == 0 {
			break
		}
	}
	if _, err := b.f.WriteAt(b.iw[:SlotSize], b.incidentOffset(h, best)); err != nil {
		return fmt.Errorf("datastore %s: write incident slot %d of host %d: %w", b.path, best, h, err)
	}
	return nil
}

// ReadIncidents reads every host's incident ring in one aligned read. It
// returns the incidents that pass their checks (the newest version of
// each, ordered by id), and an *IncidentError for each slot that does not:
// a torn, corrupt or foreign record is skipped, never trusted. An error
// means the device could not be read.
func (b *Block) ReadIncidents() ([]*cluster.Incident, []error, error) {
	r := b.header.IncidentSlots
	buf, err := alignedBuf(b.hosts * r * SlotSize)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Munmap(buf)
	if _, err := b.f.ReadAt(buf, b.incidentOffset(0, 0)); err != nil {
		return nil, nil, fmt.Errorf("datastore %s: read the incident area: %w", b.path, err)
	}
	var out []*cluster.Incident
	var bad []error
	for h := range b.hosts {
		for i := range r {
			at := (h*r + i) * SlotSize
			x, err := DecodeIncident(buf[at:at+SlotSize], b.header.ClusterID, h)
			if err != nil {
				bad = append(bad, &IncidentError{Host: h, Path: fmt.Sprintf("%s incident slot %d of host %d", b.path, i, h), Reason: err.Error()})
				continue
			}
			if x != nil {
				out = append(out, x)
			}
		}
	}
	return newestIncidents(out), bad, nil
}

// newestIncidents keeps the highest version of each incident, ordered by
// id.
func newestIncidents(xs []*cluster.Incident) []*cluster.Incident {
	sort.SliceStable(xs, func(i, j int) bool {
		if xs[i].ID != xs[j].ID {
			return xs[i].ID.Less(xs[j].ID)
		}
		return xs[i].Version > xs[j].Version
	})
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x.ID != xs[i-1].ID {
			out = append(out, x)
		}
	}
	return out
}
