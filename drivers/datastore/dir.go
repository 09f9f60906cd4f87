// Package datastore keeps the hosts' slots on a shared datastore: each host
// writes its own record (heartbeat and lease counter, state, VM claims,
// assignments, fence proofs) and reads everyone's.
//
//	d, err := datastore.OpenDir("/mnt/shared/vigil", "lab", 3)
//	err = d.Write(rec)          // this host's slot
//	recs, err := d.ReadAll()    // indexed by host; nil where empty or bad
//
// The directory backend suits a shared filesystem (NFS in production, a
// shared folder in the lab): one file per host slot, replaced atomically by
// write-to-temp, fsync, rename and a directory fsync, so a reader sees the
// old record or the new one, never a mix.
package datastore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vigil-ha/vigil/fence/cluster"
)

// Store is a datastore as the agent uses it: this host's slot written, every
// slot read. *Dir, or the fake of package datastoretest.
type Store interface {
	// Write replaces host r.Host's slot with r.
	Write(r *cluster.Record) error
	// ReadAll reads every slot, indexed by host; an empty or bad slot is
	// nil. An error means the datastore could not be read.
	ReadAll() ([]*cluster.Record, error)
}

var _ Store = (*Dir)(nil)

// Format is the slot file format version.
const Format = 1

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
	hosts   int
	// BadSlot, when set, hears about every slot that failed its checks.
	BadSlot func(error)
}

// slotFile is the content of one slot file.
type slotFile struct {
	Format  int             `json:"format"`
	Cluster string          `json:"cluster"`
	Host    int             `json:"host"`
	Record  json.RawMessage `json:"record"`
	Sum     string          `json:"sha256"` // of Record
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
	return &Dir{dir: dir, cluster: clusterName, hosts: hosts}, nil
}

// Path is the cluster's folder on the datastore.
func (d *Dir) Path() string { return d.dir }

func (d *Dir) slot(h int) string { return filepath.Join(d.dir, "slot-"+strconv.Itoa(h)) }

// Write replaces host r.Host's slot with r.
func (d *Dir) Write(r *cluster.Record) error {
	if r.Host < 0 || r.Host >= d.hosts {
		return fmt.Errorf("datastore %s: write of host %d: the cluster has %d slots", d.dir, r.Host, d.hosts)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("datastore %s: encode: %w", d.dir, err)
	}
	sum := sha256.Sum256(body)
	data, err := json.Marshal(slotFile{Format: Format, Cluster: d.cluster, Host: r.Host, Record: body, Sum: hex.EncodeToString(sum[:])})
	if err != nil {
		return fmt.Errorf("datastore %s: encode: %w", d.dir, err)
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
	bad := func(format string, args ...any) error {
		return &SlotError{Host: h, Path: d.slot(h), Reason: fmt.Sprintf(format, args...)}
	}
	var f slotFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, bad("not a slot file (%v)", err)
	}
	switch {
	case f.Format != Format:
		return nil, bad("format %d, this build reads format %d: upgrade every host to the same vigil version", f.Format, Format)
	case f.Cluster != d.cluster:
		return nil, bad("written by cluster %q, not %q: give each cluster its own datastore folder", f.Cluster, d.cluster)
	case f.Host != h:
		return nil, bad("holds host %d's record", f.Host)
	}
	sum := sha256.Sum256(f.Record)
	if hex.EncodeToString(sum[:]) != f.Sum {
		return nil, bad("checksum mismatch: the record is torn or corrupt")
	}
	var r cluster.Record
	if err := json.Unmarshal(f.Record, &r); err != nil {
		return nil, bad("record: %v", err)
	}
	if r.Host != h {
		return nil, bad("record names host %d", r.Host)
	}
	return &r, nil
}
