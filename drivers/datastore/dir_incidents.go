package datastore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/fence/cluster"
)

// IncidentsKept is how many incidents a folder datastore keeps per
// coordinator host: the newest (by incarnation, then sequence).
const IncidentsKept = 16

// incidentDir is the folder of the incident files: CLUSTER/incidents.
func (d *Dir) incidentDir() string { return filepath.Join(d.dir, "incidents") }

// parseIncidentName reads a file name HOST-INCARNATION-SEQ; it must be the
// canonical one IncidentName makes.
func parseIncidentName(name string) (cluster.IncidentID, bool) {
	f := strings.Split(name, "-")
	if len(f) != 3 {
		return cluster.IncidentID{}, false
	}
	h, err1 := strconv.Atoi(f[0])
	inc, err2 := strconv.ParseUint(f[1], 10, 64)
	seq, err3 := strconv.ParseUint(f[2], 10, 64)
	id := cluster.IncidentID{Host: h, Incarnation: inc, Seq: seq}
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || IncidentName(id) != name {
		return cluster.IncidentID{}, false
	}
	return id, true
}

// WriteIncident stores x as the file incidents/HOST-INCARNATION-SEQ,
// replaced atomically (write to a temporary file, fsync, rename, fsync the
// folder) unless it holds a newer version, then removes the writer's
// incidents beyond the newest IncidentsKept. Only x.ID.Host writes its
// files. Safe for concurrent use.
func (d *Dir) WriteIncident(x *cluster.Incident) error {
	h := x.ID.Host
	if h < 0 || h >= d.hosts {
		return fmt.Errorf("datastore %s: incident of host %d: the cluster has %d hosts", d.dir, h, d.hosts)
	}
	data, err := appendIncidentFit(nil, d.id, x)
	if err != nil {
		return fmt.Errorf("datastore %s: %w", d.dir, err)
	}
	d.imu.Lock()
	defer d.imu.Unlock()
	dir := d.incidentDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("datastore %s: %w", d.dir, err)
	}
	final := filepath.Join(dir, IncidentName(x.ID))
	if old, err := os.ReadFile(final); err == nil {
		if y, err := DecodeIncident(old, d.id, h); err == nil && y != nil && y.Version > x.Version {
			return nil // a newer version is there already
		}
	}
	tmp := final + ".tmp"
	if err := writeSync(tmp, data); err != nil {
		return fmt.Errorf("datastore %s: write incident %s: %w", d.dir, IncidentName(x.ID), err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("datastore %s: write incident %s: %w", d.dir, IncidentName(x.ID), err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return d.pruneIncidents(h)
}

// pruneIncidents removes host h's incident files beyond the newest
// IncidentsKept.
func (d *Dir) pruneIncidents(h int) error {
	dir := d.incidentDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("datastore %s: %w", d.dir, err)
	}
	var mine []cluster.IncidentID
	for _, e := range ents {
		if id, ok := parseIncidentName(e.Name()); ok && id.Host == h {
			mine = append(mine, id)
		}
	}
	if len(mine) <= IncidentsKept {
		return nil
	}
	sort.Slice(mine, func(i, j int) bool { return mine[j].Less(mine[i]) }) // newest first
	for _, id := range mine[IncidentsKept:] {
		if err := os.Remove(filepath.Join(dir, IncidentName(id))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("datastore %s: prune incident %s: %w", d.dir, IncidentName(id), err)
		}
	}
	return syncDir(dir)
}

// ReadIncidents reads every incident file: the incidents that pass their
// checks, ordered by id, and an *IncidentError for each file that does not
// (a torn, corrupt or foreign record, a file of a host the cluster does
// not have, a name that is not an incident's). Temporary files of writes
// in progress are skipped. An error means the folder could not be read.
func (d *Dir) ReadIncidents() ([]*cluster.Incident, []error, error) {
	if _, err := os.Stat(d.dir); err != nil {
		return nil, nil, fmt.Errorf("datastore %s: %w", d.dir, err)
	}
	dir := d.incidentDir()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("datastore %s: %w", d.dir, err)
	}
	var out []*cluster.Incident
	var bad []error
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			continue
		}
		path := filepath.Join(dir, name)
		id, ok := parseIncidentName(name)
		fail := func(host int, why string) { bad = append(bad, &IncidentError{Host: host, Path: path, Reason: why}) }
		switch {
		case !ok || e.IsDir():
			fail(-1, "not an incident file (HOST-INCARNATION-SEQ): remove it")
			continue
		case id.Host >= d.hosts:
			fail(id.Host, fmt.Sprintf("host %d is not in the cluster (it has %d hosts)", id.Host, d.hosts))
			continue
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned since the listing
		}
		if err != nil {
			return nil, nil, fmt.Errorf("datastore %s: read incident %s: %w", d.dir, name, err)
		}
		x, err := DecodeIncident(data, d.id, id.Host)
		switch {
		case err != nil:
			fail(id.Host, err.Error())
		case x == nil:
			fail(id.Host, "empty (all zero)")
		case x.ID != id:
			fail(id.Host, "holds incident "+IncidentName(x.ID)+", not "+name)
		default:
			out = append(out, x)
		}
	}
	return newestIncidents(out), bad, nil
}
