package dsfault

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

var (
	errIO          = errors.New("injected I/O error")
	errInterrupted = errors.New("interrupted while hung")
)

// errno turns a gate's answer into the request's.
func errno(err error) syscall.Errno {
	switch err {
	case nil:
		return 0
	case errInterrupted:
		return syscall.EINTR
	}
	return syscall.EIO
}

// node is a loopback node whose requests pass its datastore's gate first.
type node struct {
	fs.LoopbackNode
	ds     string // the datastore: the top-level entry it lies in ("" for the root)
	faults *Faults
}

func newNode(f *Faults) func(r *fs.LoopbackRoot, parent *fs.Inode, name string, st *syscall.Stat_t) fs.InodeEmbedder {
	return func(r *fs.LoopbackRoot, parent *fs.Inode, name string, st *syscall.Stat_t) fs.InodeEmbedder {
		n := &node{LoopbackNode: fs.LoopbackNode{RootData: r}, faults: f}
		if parent != nil {
			if p, ok := parent.Operations().(*node); ok && p.ds != "" {
				n.ds = p.ds
			} else {
				n.ds = name
			}
		}
		return n
	}
}

// child is the datastore of n's entry called name.
func (n *node) child(name string) string {
	if n.ds == "" {
		return name
	}
	return n.ds
}

func (n *node) gate(ctx context.Context, ds string) syscall.Errno {
	return errno(n.faults.gate(ds, ctx.Done()))
}

func (n *node) full() string { return filepath.Join(n.RootData.Path, n.Path(n.Root())) }

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeReaddirer      = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
)

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.gate(ctx, n.child(name)); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Lookup(ctx, name, out)
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if e := n.gate(ctx, n.ds); e != 0 {
		return e
	}
	if ff, ok := f.(*file); ok {
		f = ff.FileHandle
	}
	return n.LoopbackNode.Getattr(ctx, f, out)
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if e := n.gate(ctx, n.ds); e != 0 {
		return e
	}
	if ff, ok := f.(*file); ok {
		f = ff.FileHandle
	}
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if e := n.gate(ctx, n.ds); e != 0 {
		return nil, 0, e
	}
	fh, _, e := n.LoopbackNode.Open(ctx, flags)
	if e != 0 {
		return nil, 0, e
	}
	return &file{FileHandle: fh, ds: n.ds, faults: n.faults}, fuse.FOPEN_DIRECT_IO, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ds := n.child(name)
	if e := n.gate(ctx, ds); e != 0 {
		return nil, nil, 0, e
	}
	in, fh, _, e := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if e != 0 {
		return nil, nil, 0, e
	}
	return in, &file{FileHandle: fh, ds: ds, faults: n.faults}, fuse.FOPEN_DIRECT_IO, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.gate(ctx, n.child(name)); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := n.gate(ctx, n.child(name)); e != 0 {
		return e
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := n.gate(ctx, n.child(name)); e != 0 {
		return e
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := n.gate(ctx, n.child(name)); e != 0 {
		return e
	}
	if p, ok := newParent.(*node); ok {
		newParent = &p.LoopbackNode
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if e := n.gate(ctx, n.ds); e != 0 {
		return nil, 0, e
	}
	return n.LoopbackNode.OpendirHandle(ctx, flags)
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	if e := n.gate(ctx, n.ds); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Readdir(ctx)
}

// Fsync syncs a file (through its handle) or a directory (by its path).
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if e := n.gate(ctx, n.ds); e != 0 {
		return e
	}
	if ff, ok := f.(*file); ok {
		if s, ok := ff.FileHandle.(fs.FileFsyncer); ok {
			return s.Fsync(ctx, flags)
		}
	}
	fd, err := syscall.Open(n.full(), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fs.ToErrno(err)
	}
	defer syscall.Close(fd)
	return fs.ToErrno(syscall.Fsync(fd))
}

// file is an open file whose requests pass its datastore's gate first.
type file struct {
	fs.FileHandle
	ds     string
	faults *Faults
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileWriter    = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
	_ fs.FileAllocater = (*file)(nil)
)

func (f *file) gate(ctx context.Context) syscall.Errno { return errno(f.faults.gate(f.ds, ctx.Done())) }

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if e := f.gate(ctx); e != 0 {
		return nil, e
	}
	return f.FileHandle.(fs.FileReader).Read(ctx, dest, off)
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if e := f.gate(ctx); e != 0 {
		return 0, e
	}
	return f.FileHandle.(fs.FileWriter).Write(ctx, data, off)
}

func (f *file) Flush(ctx context.Context) syscall.Errno {
	if e := f.gate(ctx); e != 0 {
		return e
	}
	return f.FileHandle.(fs.FileFlusher).Flush(ctx)
}

// Release always closes: a file is let go whatever its path does.
func (f *file) Release(ctx context.Context) syscall.Errno {
	return f.FileHandle.(fs.FileReleaser).Release(ctx)
}

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	if e := f.gate(ctx); e != 0 {
		return e
	}
	return f.FileHandle.(fs.FileGetattrer).Getattr(ctx, out)
}

func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if e := f.gate(ctx); e != 0 {
		return e
	}
	return f.FileHandle.(fs.FileAllocater).Allocate(ctx, off, size, mode)
}
