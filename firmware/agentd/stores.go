package agentd

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"syscall"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

// openStore opens one datastore of the cluster file. A datastore that
// cannot be reached now (an NFS export or a LUN path that is down as the
// host boots) is no reason not to start: it is opened again at each use
// and counts as failing until it opens, as a datastore that fails later
// would. One that answers but is not this cluster's (no header, another
// cluster's, too few slots) stops the agent: that is the operator's to
// fix.
func (d *daemon) openStore(ds config.Datastore, badSlot func(error)) (datastore.Store, error) {
	open := func() (datastore.Store, error) {
		st, _, err := datastore.Open(ds.Device, ds.Path, d.cfg.Cluster.Name, len(d.cfg.Hosts), badSlot)
		return st, err // closeStores closes what holds a device
	}
	st, err := open()
	if err == nil {
		return st, nil
	}
	if !unreachable(err) {
		return nil, fmt.Errorf("agent: datastore %s: %w", ds.Name, err)
	}
	d.log.Warn("datastore unreachable at start: it counts as failing and is opened again at each use",
		"component", "ds", "datastore", ds.Name, "err", err)
	return &lateStore{open: open}, nil
}

// unreachable reports whether err is the system's: the datastore could not
// be reached or read, rather than read and found wrong.
func unreachable(err error) bool {
	var errno syscall.Errno
	var pe *fs.PathError
	return errors.As(err, &errno) || errors.As(err, &pe)
}

// lateStore is a datastore that could not be opened at start: every use
// tries again until it opens.
type lateStore struct {
	open func() (datastore.Store, error)
	mu   sync.Mutex
	st   datastore.Store
}

var _ datastore.Store = (*lateStore)(nil)

func (l *lateStore) get() (datastore.Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st == nil {
		st, err := l.open()
		if err != nil {
			return nil, err
		}
		l.st = st
	}
	return l.st, nil
}

// Write writes r once the datastore opens.
func (l *lateStore) Write(r *cluster.Record) error {
	st, err := l.get()
	if err != nil {
		return err
	}
	return st.Write(r)
}

// ReadAll reads every slot once the datastore opens.
func (l *lateStore) ReadAll() ([]*cluster.Record, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.ReadAll()
}

// WriteIncident writes an incident once the datastore opens.
func (l *lateStore) WriteIncident(x *cluster.Incident) error {
	st, err := l.get()
	if err != nil {
		return err
	}
	return st.WriteIncident(x)
}

// ReadIncidents reads the incidents once the datastore opens.
func (l *lateStore) ReadIncidents() ([]*cluster.Incident, []error, error) {
	st, err := l.get()
	if err != nil {
		return nil, nil, err
	}
	return st.ReadIncidents()
}

// Close closes the datastore if it opened and holds a device.
func (l *lateStore) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.st.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}
