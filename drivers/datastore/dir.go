// Package datastore keeps the hosts' slots on a shared datastore: each host
// writes its own record (heartbeat and lease counter, state, VM claims,
// assignments, fence proofs) and reads everyone's.
//
//	d, err := datastore.OpenDir("/mnt/shared/vigil", "lab", 3)
//	err = d.Write(rec)          // this host's slot
//	recs, err := d.ReadAll()    // indexed by host; nil where empty or bad
//
// Two backends share one record format (AppendRecord, DecodeRecord: magic,
// format version, cluster id, host, the writer's incarnation and a CRC-32C):
// Dir, a folder on a shared filesystem (NFS in production, a shared folder
// in the lab) with one file per host slot, replaced atomically by
// write-to-temp, fsync, rename and a directory fsync, so a reader sees the
// old record or the new one, never a mix; and Block, a raw shared device
// (a LUN, a loop device in the lab) with fixed 4 KiB slots.
//
// Both also keep the coordinators' incident records (AppendIncident,
// DecodeIncident: the same header with magic VGIR), each in its writer's
// own area: a file per incident under CLUSTER/incidents/ in a folder, a
// ring of 4 KiB incident slots per host on a device.
//
//	err = d.WriteIncident(x)             // x.ID.Host's area
//	xs, bad, err := d.ReadIncidents()    // every host's; bad: skipped records
package datastore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

// Store is a datastore as the agent uses it: this host's slot written, every
// slot read, and the incident records. *Dir, *Block, or the fake of package
// datastoretest.
type Store interface {
	// Write replaces host r.Host's slot with r.
	Write(r *cluster.Record) error
	// ReadAll reads every slot, indexed by host; an empty or bad slot is
	// nil. An error means the datastore could not be read.
	ReadAll() ([]*cluster.Record, error)
	// WriteIncident stores a version of an incident in the area of its
	// coordinator (x.ID.Host), which alone writes there: it replaces the
	// incident's older version, and the area keeps that host's newest
	// incidents. Safe for concurrent use.
	WriteIncident(x *cluster.Incident) error
	// ReadIncidents reads every host's incidents: the newest version of
	// each that passes its checks, ordered by id, and an error (matching
	// ErrBadIncident) for each record that does not. An error means the
	// datastore could not be read.
	ReadIncidents() ([]*cluster.Incident, []error, error)
}

var _ Store = (*Dir)(nil)

// ErrBadSlot matches every slot that fails its checks.
var ErrBadSlot = errors.New("datastore: bad slot")

// SlotError is a slot that failed its checks: it is read as empty.
type SlotError struct {
	Host   int
	Path   string
	Reason string
}

func (e *SlotError) Error() string {
	return fmt.Sprintf("datastore: slot of host %d (%s): %s", e.Host, e.Path, e.Reason)
}

// Is makes errors.Is(err, ErrBadSlot) hold.
func (e *SlotError) Is(target error) bool { return target == ErrBadSlot }

// Dir is a datastore kept in a directory. Write and ReadAll may run on
// different goroutines; two Writes may not.
type Dir struct {
	dir     string
	cluster string
	id      uint64
	hosts   int
	// BadSlot, when set, hears about every slot that failed its checks.
	BadSlot func(error)
	imu     sync.Mutex // incident writes, one at a time
}

// OpenDir opens the datastore in folder path for cluster, creating the
// cluster's subfolder. hosts is the number of slots.
func OpenDir(path, clusterName string, hosts int) (*Dir, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("datastore %s: not an absolute path: set datastores.path to a shared folder such as /mnt/shared/vigil", path)
	}
	dir := filepath.Join(path, clusterName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("datastore %s: %w: check that the shared folder is mounted and writable by root", path, err)
	}
	return &Dir{dir: dir, cluster: clusterName, id: hb.ClusterID(clusterName), hosts: hosts}, nil
}

// Path is the cluster's folder on the datastore.
func (d *Dir) Path() string { return d.dir }

func (d *Dir) slot(h int) string { return filepath.Join(d.dir, "slot-"+strconv.Itoa(h)) }

// Write replaces host r.Host's slot with r.
func (d *Dir) Write(r *cluster.Record) error {
	if r.Host < 0 || r.Host >= d.hosts {
		return fmt.Errorf("datastore %s: write of host %d: the cluster has %d slots", d.dir, r.Host, d.hosts)
	}
	data, err := AppendRecord(nil, d.id, r)
	if err != nil {
		return fmt.Errorf("datastore %s: %w", d.dir, err)
	}
	final := d.slot(r.Host)
	tmp := final + ".tmp"
	if err := writeSync(tmp, data); err != nil {
		return fmt.Errorf("datastore %s: write slot %d: %w", d.dir, r.Host, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("datastore %s: write slot %d: %w", d.dir, r.Host, err)
	}
	return syncDir(d.dir)
}

func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("datastore %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("datastore %s: sync: %w", dir, err)
	}
	return nil
}

// ReadAll reads every slot. The slice is indexed by host; an empty slot or
// one that fails its checks (reported to BadSlot) is nil. An error means
// the datastore itself could not be read.
func (d *Dir) ReadAll() ([]*cluster.Record, error) {
	if _, err := os.Stat(d.dir); err != nil {
		return nil, fmt.Errorf("datastore %s: %w", d.dir, err)
	}
	recs := make([]*cluster.Record, d.hosts)
	for h := range recs {
		data, err := os.ReadFile(d.slot(h))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("datastore %s: read slot %d: %w", d.dir, h, err)
		}
		r, err := d.decode(h, data)
		if err != nil {
			if d.BadSlot != nil {
				d.BadSlot(err)
			}
			continue
		}
		recs[h] = r
	}
	return recs, nil
}

func (d *Dir) decode(h int, data []byte) (*cluster.Record, error) {
	r, err := DecodeRecord(data, d.id, h)
	if err == nil && r == nil {
		err = errors.New("empty (all zero)")
	}
	if err != nil {
		return nil, &SlotError{Host: h, Path: d.slot(h), Reason: err.Error()}
	}
	return r, nil
}

// Open opens a datastore of a cluster file: the raw block device at device
// when it is set, else the folder at path, for clusterName's hosts slots.
// badSlot, if set, hears about every slot that fails its checks; close
// releases what the datastore holds open.
func Open(device, path, clusterName string, hosts int, badSlot func(error)) (st Store, close func() error, err error) {
	if device != "" {
		b, err := OpenBlock(device, clusterName, hosts)
		if err != nil {
			return nil, nil, err
		}
		b.BadSlot = badSlot
		return b, b.Close, nil
	}
	d, err := OpenDir(path, clusterName, hosts)
	if err != nil {
		return nil, nil, err
	}
	d.BadSlot = badSlot
	return d, func() error { return nil }, nil
}
