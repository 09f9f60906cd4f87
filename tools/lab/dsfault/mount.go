package dsfault

import (
	"fmt"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// FSName is the FUSE file system's type name: mounts show as
// "fuse.vigil-ds".
const FSName = "vigil-ds"

// Path is one host's path to the shared folder: a FUSE mount.
type Path struct {
	Point  string // where the host finds the datastores
	server *fuse.Server
}

// Mount serves the shared folder root at point (an existing empty folder)
// through faults. Root only: the kernel mount is made directly, without
// fusermount. Nothing is cached: entries, attributes and file data are
// asked of the shared folder every time, so every host sees the others'
// writes at once.
func Mount(point, root string, faults *Faults) (*Path, error) {
	lr := &fs.LoopbackRoot{Path: root, NewNode: newNode(faults)}
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		return nil, fmt.Errorf("dsfault: %w", err)
	}
	lr.Dev = st.Dev
	rn := lr.NewNode(lr, nil, "", nil)
	lr.RootNode = rn
	var zero time.Duration
	server, err := fs.Mount(point, rn, &fs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			AllowOther:        true,
			FsName:            root,
			Name:              FSName,
			DirectMountStrict: true,
			MaxBackground:     64,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("dsfault: mount %s on %s: %w", root, point, err)
	}
	return &Path{Point: point, server: server}, nil
}

// Wait blocks until the mount is unmounted.
func (m *Path) Wait() { m.server.Wait() }

// Unmount detaches the mount lazily: it goes once nothing uses it.
// Requests hanging on it wait until their datastore's mode changes.
func (m *Path) Unmount() error {
	if err := unix.Unmount(m.Point, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("dsfault: unmount %s: %w", m.Point, err)
	}
	return nil
}
