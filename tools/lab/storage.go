package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/drivers/datastore/loop"
	"github.com/vigil-ha/vigil/tools/lab/dsfault"
	"golang.org/x/sys/unix"
)

// The lab's datastores. The shared folder STATE/store holds both: ds0, a
// folder datastore, and ds1, the image of a shared LUN. The cluster file
// names the shared folder's ds0 and a loop device attached to the image
// straight (what an operator's 'vigil datastore show' reads); every host
// reaches them through a path of its own, STATE/HOST/store, a FUSE view of
// the shared folder served by the supervisor, where the lab can fail or
// hang that host's path alone: ds0 at STATE/HOST/store/ds0, and ds1
// through a loop device attached to STATE/HOST/store/ds1, found at
// STATE/HOST/ds1.
const (
	storeDir    = "store"
	folderDS    = "ds0"
	blockDS     = "ds1"
	imageSize   = 16 << 20 // sparse
	imageSlots  = 64
	modeOK      = "ok"
	allSelector = "all"
)

// datastoreNames are the lab's datastores in cluster-file order.
var datastoreNames = []string{folderDS, blockDS}

// hostStore is where host's FUSE view of the shared folder is mounted.
func hostStore(hostDir string) string { return filepath.Join(hostDir, storeDir) }

// hostDatastorePaths are the agent's --datastore arguments for the host
// whose folder is hostDir.
func hostDatastorePaths(hostDir string) []string {
	return []string{
		"--datastore", folderDS + "=" + filepath.Join(hostStore(hostDir), folderDS),
		"--datastore", blockDS + "=" + filepath.Join(hostDir, blockDS),
	}
}

// prepareStore makes the shared folder: the folder datastore, the LUN's
// image, the loop device the cluster file names and the LUN's header. It
// returns the loop device.
func prepareStore(dir, cluster string) (string, error) {
	shared := filepath.Join(dir, storeDir)
	if err := os.MkdirAll(filepath.Join(shared, folderDS), 0o755); err != nil {
		return "", fmt.Errorf("lab: make the folder datastore: %w", err)
	}
	img := filepath.Join(shared, blockDS)
	f, err := os.OpenFile(img, os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("lab: make the LUN image: %w", err)
	}
	err = f.Truncate(imageSize)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("lab: size the LUN image: %w", err)
	}
	dev, err := loop.Attach(img)
	if err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	if _, err := datastore.InitBlock(dev.Path, cluster, imageSlots); err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	return dev.Path, nil
}

// attachHostPaths gives every host its own loop device on its view of the
// LUN, linked from HOST/ds1. The supervisor must serve the views.
func attachHostPaths(s *state) error {
	for i := range s.Hosts {
		h := &s.Hosts[i]
		dev, err := loop.Attach(filepath.Join(hostStore(h.Dir), blockDS))
		if err != nil {
			return fmt.Errorf("lab: the LUN path of %s: %w", h.Name, err)
		}
		link := filepath.Join(h.Dir, blockDS)
		os.Remove(link)
		if err := os.Symlink(dev.Path, link); err != nil {
			return fmt.Errorf("lab: the LUN path of %s: %w", h.Name, err)
		}
		h.BlockDevice = dev.Path
	}
	return nil
}

// releaseStore detaches every loop device whose file lies in the lab's
// folder and unmounts every mount below it, deepest first. It works from
// the kernel's tables alone, for a lab whose state is gone.
func releaseStore(name string) error {
	dir := labDir(name) + "/"
	var errs []error
	devs, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return err
	}
	for _, f := range devs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // detached meanwhile
		}
		if !strings.HasPrefix(strings.TrimSpace(string(data)), dir) {
			continue
		}
		dev := &loop.Device{Path: "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(f)))}
		if err := dev.Detach(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	mounts, err := mountsUnder(dir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("lab: unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	ms, err := mountInfo(dir)
	var out []string
	for _, m := range ms {
		out = append(out, m.point)
	}
	return out, err
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	point  string
	minor  string // the device's minor number: a FUSE mount's connection
	fstype string
}

// mountInfo lists the mounts below dir, deepest first.
func mountInfo(dir string) ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		p := unescapeMount(fields[4])
		if !strings.HasPrefix(p, dir) {
			continue
		}
		_, minor, _ := strings.Cut(fields[2], ":")
		out = append(out, mountEntry{point: p, minor: minor, fstype: fields[sep+1]})
	}
	slices.SortFunc(out, func(a, b mountEntry) int { return strings.Count(b.point, "/") - strings.Count(a.point, "/") })
	return out, sc.Err()
}

// fuseConnections is where the kernel's FUSE control file system lists
// the FUSE connections.
const fuseConnections = "/sys/fs/fuse/connections"

// abortPaths aborts the FUSE connection of every host path of lab name:
// every request hanging on one fails at once, so that the processes
// waiting for it (an agent, the loop device under its LUN path) can be
// killed. A path without its server would otherwise hold them forever.
func abortPaths(name string) error {
	ms, err := mountInfo(labDir(name) + "/")
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range ms {
		if m.fstype != "fuse."+dsfault.FSName {
			continue
		}
		if _, err := os.Stat(filepath.Join(fuseConnections, m.minor)); errors.Is(err, fs.ErrNotExist) {
			// The control file system is not mounted yet.
			if err := unix.Mount("fusectl", fuseConnections, "fusectl", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
				errs = append(errs, fmt.Errorf("lab: mount the FUSE control file system: %w", err))
				continue
			}
		}
		err := os.WriteFile(filepath.Join(fuseConnections, m.minor, "abort"), []byte("1"), 0)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("lab: abort the datastore path %s: %w", m.point, err))
		}
	}
	return errors.Join(errs...)
}

// UnknownDatastoreError is returned for a datastore the lab does not have.
type UnknownDatastoreError struct {
	Datastore string
}

func (e *UnknownDatastoreError) Error() string {
	return fmt.Sprintf("unknown datastore %q (fix: use %s, %s or all)", e.Datastore, folderDS, blockDS)
}

// DSFail makes host's path to datastore ds fail every request with an I/O
// error, as a dead path does; host and ds may be "all".
func (l *Lab) DSFail(host, ds string) error { return l.dsFault("ds-fail", host, ds, dsfault.Fail) }

// DSHang makes host's path to datastore ds leave every request
// unanswered, as a hung server or array does, until DSHeal or DSFail;
// host and ds may be "all".
func (l *Lab) DSHang(host, ds string) error { return l.dsFault("ds-hang", host, ds, dsfault.Hang) }

// DSHeal mends host's path to datastore ds: hung requests go on; host and
// ds may be "all".
func (l *Lab) DSHeal(host, ds string) error { return l.dsFault("ds-heal", host, ds, dsfault.OK) }

func (l *Lab) dsFault(op, host, ds string, m dsfault.Mode) error {
	return l.wrap(op, update(l.name, func(s *state) error {
		hosts, err := s.selectHosts(host)
		if err != nil {
			return err
		}
		names := datastoreNames
		if ds != allSelector {
			if !slices.Contains(datastoreNames, ds) {
				return &UnknownDatastoreError{Datastore: ds}
			}
			names = []string{ds}
		}
		var reqs []ctlRequest
		for _, h := range hosts {
			for _, n := range names {
				reqs = append(reqs, ctlRequest{Op: "ds", Host: h.Name, DS: n, Mode: m.String()})
				if h.DSModes == nil {
					h.DSModes = map[string]string{}
				}
				if m == dsfault.OK {
					delete(h.DSModes, n)
				} else {
					h.DSModes[n] = m.String()
				}
			}
		}
		rs, err := controlCall(s.Supervisor.Socket, reqs)
		if err != nil {
			return err
		}
		for i, r := range rs {
			if !r.OK {
				return fmt.Errorf("the supervisor refused %s of %s: %s", reqs[i].DS, reqs[i].Host, r.Error)
			}
		}
		return nil
	}))
}

// selectHosts resolves a host name, or "all".
func (s *state) selectHosts(host string) ([]*hostState, error) {
	if host == allSelector {
		out := make([]*hostState, len(s.Hosts))
		for i := range s.Hosts {
			out[i] = &s.Hosts[i]
		}
		return out, nil
	}
	h, err := s.host(host)
	if err != nil {
		return nil, err
	}
	return []*hostState{h}, nil
}

// mountHostPaths mounts every host's view of the shared folder, with the
// faults state.json holds, for the supervisor.
func mountHostPaths(s *state) (map[string]*dsfault.Faults, []*dsfault.Path, error) {
	faults := map[string]*dsfault.Faults{}
	var paths []*dsfault.Path
	shared := filepath.Join(s.Dir, storeDir)
	for _, h := range s.Hosts {
		point := hostStore(h.Dir)
		if err := os.MkdirAll(point, 0o755); err != nil {
			return nil, paths, fmt.Errorf("lab: %w", err)
		}
		f := dsfault.NewFaults()
		for ds, m := range h.DSModes {
			if mode, err := dsfault.ParseMode(m); err == nil {
				f.Set(ds, mode)
			}
		}
		p, err := dsfault.Mount(point, shared, f)
		if err != nil {
			return nil, paths, fmt.Errorf("lab: the datastore path of %s: %w", h.Name, err)
		}
		faults[h.Name] = f
		paths = append(paths, p)
	}
	return faults, paths, nil
}
