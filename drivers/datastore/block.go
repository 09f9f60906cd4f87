package datastore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sync"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
	"golang.org/x/sys/unix"
)

// The block backend keeps the slots on a raw shared device (a shared LUN in
// production, a loop device in the lab):
//
//	offset                          size   content
//	0                               4 KiB  header (BlockHeader)
//	4 KiB * (1 + h)                 4 KiB  host h's slot, h < slots
//	4 KiB * (1 + slots + h*R + i)   4 KiB  host h's incident slot i, i < R
//
// R is the number of incident slots per host (the header says; 16 by
// default): each host keeps the incidents it coordinated in its own ring,
// so no block is ever written by two hosts. Every read and write is whole
// slots, aligned, with O_DIRECT (no host reads another's slot from its own
// page cache) and O_DSYNC (a write is on the device when it returns). A
// 4 KiB write is not atomic on every device, so a slot can tear; its
// checksum tells.
const (
	// SlotSize is the size of one slot and of the header.
	SlotSize = 4096
	// BlockLayout is the on-device layout version: 2 added the incident
	// area (layout 1 devices are upgraded in place by InitBlock).
	BlockLayout = 2
	// MaxSlots is the most slots a block datastore holds.
	MaxSlots = 1024
	// DefaultIncidentSlots is the incident ring of each host InitBlock makes.
	DefaultIncidentSlots = 16
	// MaxIncidentSlots is the largest incident ring per host.
	MaxIncidentSlots = 256
	// maxName is the longest cluster name a header holds.
	maxName = 200
	// wipeCheck is how much of a device init checks is unused (zero):
	// partition tables, file systems and LVM all leave marks in it.
	wipeCheck = 1 << 20
)

var blockMagic = [8]byte{'V', 'I', 'G', 'I', 'L', 'D', 'S', 0}

// BlockHeader is what the header sector of a block datastore says.
type BlockHeader struct {
	Layout        uint32
	Slots         int
	ClusterID     uint64
	Cluster       string
	IncidentSlots int // per host (0 in layout 1)
}

// header sector:
//
//	off size field
//	  0    8 magic "VIGILDS\0"
//	  8    4 layout version
//	 12    4 slot size
//	 16    4 number of slots
//	 20    8 cluster id
//	 28    1 cluster name length (up to 200)
//	 29    n cluster name
//	232    4 incident slots per host (layout 2)
//	252    4 CRC-32C of bytes 0..251
const (
	headerSumAt     = 252
	headerIncidents = 232
)

// blockSize is the size of a datastore with slots host slots and ring
// incident slots per host.
func blockSize(slots, ring int) int64 { return int64(1+slots*(1+ring)) * SlotSize }

// Size is the number of bytes the datastore this header describes uses.
func (h *BlockHeader) Size() int64 { return blockSize(h.Slots, h.IncidentSlots) }

func (h *BlockHeader) encode() []byte {
	b := make([]byte, SlotSize)
	copy(b, blockMagic[:])
	binary.LittleEndian.PutUint32(b[8:], h.Layout)
	binary.LittleEndian.PutUint32(b[12:], SlotSize)
	binary.LittleEndian.PutUint32(b[16:], uint32(h.Slots))
	binary.LittleEndian.PutUint64(b[20:], h.ClusterID)
	b[28] = byte(len(h.Cluster))
	copy(b[29:], h.Cluster)
	if h.Layout >= 2 {
		binary.LittleEndian.PutUint32(b[headerIncidents:], uint32(h.IncidentSlots))
	}
	binary.LittleEndian.PutUint32(b[headerSumAt:], crc32.Checksum(b[:headerSumAt], castagnoli))
	return b
}

// errNoHeader is a device whose first sector is not a vigil header.
var errNoHeader = errors.New("no vigil datastore header")

func decodeHeader(b []byte) (*BlockHeader, error) {
	if len(b) < SlotSize || [8]byte(b[:8]) != blockMagic {
		return nil, errNoHeader
	}
	if got, want := crc32.Checksum(b[:headerSumAt], castagnoli), binary.LittleEndian.Uint32(b[headerSumAt:]); got != want {
		return nil, fmt.Errorf("the header's checksum does not match (CRC-32C %08x, stored %08x): the header is corrupt", got, want)
	}
	h := &BlockHeader{
		Layout:    binary.LittleEndian.Uint32(b[8:]),
		Slots:     int(binary.LittleEndian.Uint32(b[16:])),
		ClusterID: binary.LittleEndian.Uint64(b[20:]),
	}
	if h.Layout < 1 || h.Layout > BlockLayout {
		return nil, fmt.Errorf("layout %d, this build reads layouts 1 to %d: upgrade every host to the same vigil version", h.Layout, BlockLayout)
	}
	if s := binary.LittleEndian.Uint32(b[12:]); s != SlotSize {
		return nil, fmt.Errorf("slot size %d, this build uses %d", s, SlotSize)
	}
	n, longest := int(b[28]), headerSumAt-29
	if h.Layout >= 2 {
		longest = maxName
		h.IncidentSlots = int(binary.LittleEndian.Uint32(b[headerIncidents:]))
	}
	if n > longest || h.Slots < 1 || h.Slots > MaxSlots || (h.Layout >= 2 && (h.IncidentSlots < 1 || h.IncidentSlots > MaxIncidentSlots)) {
		return nil, fmt.Errorf("the header is malformed (name length %d, %d slots, %d incident slots per host)", n, h.Slots, h.IncidentSlots)
	}
	h.Cluster = string(b[29 : 29+n])
	return h, nil
}

// errOldLayout explains how to bring a layout 1 device up to date.
func errOldLayout(path string) error {
	return fmt.Errorf("datastore %s: layout 1, which has no incident area: run 'vigil datastore init %s --config FILE' once, from one host, to upgrade it in place (the slots are kept)", path, path)
}

// Block is a datastore on a raw shared block device. Write and ReadAll may
// run on different goroutines; two Writes may not.
type Block struct {
	path   string
	f      *os.File
	hosts  int
	header BlockHeader
	direct bool
	wbuf   []byte // one aligned slot
	rbuf   []byte // hosts aligned slots
	// BadSlot, when set, hears about every slot that failed its checks.
	BadSlot func(error)

	imu  sync.Mutex // incident writes, one at a time
	ring []byte     // this writer's incident ring, aligned (allocated at the first write)
	iw   []byte     // one aligned incident slot
}

var _ Store = (*Block)(nil)

// openDirect opens path for aligned whole-slot I/O. A regular file on a
// file system without direct I/O (tmpfs) falls back to the page cache with
// O_DSYNC; a device never does.
func openDirect(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT|unix.O_DSYNC, 0)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return nil, false, err
	}
	if st, serr := os.Stat(path); serr != nil || !st.Mode().IsRegular() {
		return nil, false, err
	}
	f, err = os.OpenFile(path, os.O_RDWR|unix.O_DSYNC, 0)
	return f, false, err
}

// alignedBuf returns n bytes aligned to the page size, as O_DIRECT needs.
func alignedBuf(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("datastore: allocate an aligned buffer of %d bytes: %w", n, err)
	}
	return b, nil
}

func deviceSize(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Mode().IsRegular() {
		return st.Size(), nil
	}
	n, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
	return int64(n), err
}

// InitBlock is InitBlockRing with DefaultIncidentSlots incident slots per
// host.
func InitBlock(path, clusterName string, slots int) (done bool, err error) {
	return InitBlockRing(path, clusterName, slots, DefaultIncidentSlots)
}

// InitBlockRing writes a datastore header for clusterName with slots slots
// and ring incident slots per host on the device (or file) at path. It
// refuses a device that is too small or holds anything (a header of
// another cluster, a partition table, a file system: any non-zero byte in
// its first MiB or in the area the datastore uses); one that already holds
// this cluster's datastore with enough slots is left as it is (done is
// false), unless it has the layout 1 of earlier versions, which has no
// incident area: that one gets it (done is true), its slots kept.
func InitBlockRing(path, clusterName string, slots, ring int) (done bool, err error) {
	if slots < 1 || slots > MaxSlots {
		return false, fmt.Errorf("datastore %s: %d slots: give 1 to %d (one per host, with room to grow)", path, slots, MaxSlots)
	}
	if ring < 1 || ring > MaxIncidentSlots {
		return false, fmt.Errorf("datastore %s: %d incident slots per host: give 1 to %d", path, ring, MaxIncidentSlots)
	}
	if len(clusterName) == 0 || len(clusterName) > maxName {
		return false, fmt.Errorf("datastore %s: cluster name %q: give 1 to %d bytes", path, clusterName, maxName)
	}
	f, _, err := openDirect(path)
	if err != nil {
		return false, fmt.Errorf("datastore %s: %w: give a block device (or loop device) that this host can open read-write", path, err)
	}
	defer f.Close()
	size, err := deviceSize(f)
	if err != nil {
		return false, fmt.Errorf("datastore %s: size: %w", path, err)
	}
	need := blockSize(slots, ring)
	if size < need {
		return false, fmt.Errorf("datastore %s: %d bytes, %d slots with %d incident slots each need %d: give a larger device or fewer slots", path, size, slots, ring, need)
	}
	buf, err := alignedBuf(SlotSize)
	if err != nil {
		return false, err
	}
	defer unix.Munmap(buf)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return false, fmt.Errorf("datastore %s: read: %w", path, err)
	}
	h, herr := decodeHeader(buf)
	switch {
	case herr == nil && h.ClusterID == hb.ClusterID(clusterName) && h.Cluster == clusterName:
		if h.Slots < slots {
			return false, fmt.Errorf("datastore %s: already holds cluster %q's datastore with %d slots, fewer than %d: a datastore does not grow; init a new device", path, clusterName, h.Slots, slots)
		}
		if h.Layout == 1 {
			return upgradeBlock(f, path, h, ring, size)
		}
		return false, nil
	case herr == nil:
		return false, fmt.Errorf("datastore %s: holds cluster %q's datastore: refusing to overwrite it (give this cluster its own device)", path, h.Cluster)
	case herr != errNoHeader:
		return false, fmt.Errorf("datastore %s: holds a damaged vigil header (%v): refusing to overwrite it; if the device is truly unused, zero its first MiB", path, herr)
	}
	check := min(size, max(need, wipeCheck)) &^ (SlotSize - 1)
	at, err := firstNonZero(f, 0, check)
	if err != nil {
		return false, fmt.Errorf("datastore %s: read: %w", path, err)
	}
	if at >= 0 {
		return false, fmt.Errorf("datastore %s: byte %d is not zero: the device holds something (a partition table, a file system, another tool's data); refusing to overwrite it. If it is truly unused, zero its first %d bytes", path, at, check)
	}
	hdr := (&BlockHeader{Layout: BlockLayout, Slots: slots, ClusterID: hb.ClusterID(clusterName), Cluster: clusterName, IncidentSlots: ring}).encode()
	copy(buf, hdr)
	if _, err := f.WriteAt(buf[:SlotSize], 0); err != nil {
		return false, fmt.Errorf("datastore %s: write the header: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("datastore %s: sync: %w", path, err)
	}
	return true, nil
}

// OpenBlock opens the block datastore at path for clusterName, which has
// hosts hosts. The device must hold a header written by InitBlock for the
// same cluster with at least hosts slots.
func OpenBlock(path, clusterName string, hosts int) (*Block, error) {
	f, direct, err := openDirect(path)
	if err != nil {
		return nil, fmt.Errorf("datastore %s: %w: check that the shared device is attached and readable by root", path, err)
	}
	b := &Block{path: path, f: f, hosts: hosts, direct: direct}
	fail := func(err error) (*Block, error) {
		b.Close()
		return nil, err
	}
	if b.wbuf, err = alignedBuf(SlotSize); err != nil {
		return fail(err)
	}
	if b.rbuf, err = alignedBuf(max(hosts, 1) * SlotSize); err != nil {
		return fail(err)
	}
	if _, err := f.ReadAt(b.wbuf, 0); err != nil {
		return fail(fmt.Errorf("datastore %s: read the header: %w", path, err))
	}
	h, err := decodeHeader(b.wbuf)
	if err == errNoHeader {
		return fail(fmt.Errorf("datastore %s: no vigil datastore header: run 'vigil datastore init %s' once, from one host", path, path))
	}
	if err != nil {
		return fail(fmt.Errorf("datastore %s: %w", path, err))
	}
	if h.Layout == 1 {
		return fail(errOldLayout(path))
	}
	if h.ClusterID != hb.ClusterID(clusterName) || h.Cluster != clusterName {
		return fail(fmt.Errorf("datastore %s: belongs to cluster %q, not %q: give each cluster its own device", path, h.Cluster, clusterName))
	}
	if h.Slots < hosts {
		return fail(fmt.Errorf("datastore %s: %d slots for %d hosts: init a larger datastore on a new device", path, h.Slots, hosts))
	}
	size, err := deviceSize(f)
	if err != nil {
		return fail(fmt.Errorf("datastore %s: size: %w", path, err))
	}
	if size < h.Size() {
		return fail(fmt.Errorf("datastore %s: %d bytes, its header says the datastore takes %d: the device shrank, or is not the one init was run on", path, size, h.Size()))
	}
	b.header = *h
	return b, nil
}

// Header is what the device's header says.
func (b *Block) Header() BlockHeader { return b.header }

// Direct reports whether I/O bypasses the page cache (false only for a
// regular file on a file system without direct I/O).
func (b *Block) Direct() bool { return b.direct }

// Path is the device.
func (b *Block) Path() string { return b.path }

// Close releases the device.
func (b *Block) Close() error {
	// An incident write still in flight (a hung device) keeps its buffers:
	// unmapping them under it would crash the process.
	if b.imu.TryLock() {
		for _, buf := range [][]byte{b.ring, b.iw} {
			if buf != nil {
				unix.Munmap(buf)
			}
		}
		b.ring, b.iw = nil, nil
		b.imu.Unlock()
	}
	if b.wbuf != nil {
		unix.Munmap(b.wbuf)
		b.wbuf = nil
	}
	if b.rbuf != nil {
		unix.Munmap(b.rbuf)
		b.rbuf = nil
	}
	return b.f.Close()
}

func slotOffset(h int) int64 { return int64(1+h) * SlotSize }

// Write replaces host r.Host's slot with r in one aligned write.
func (b *Block) Write(r *cluster.Record) error {
	if r.Host < 0 || r.Host >= b.hosts {
		return fmt.Errorf("datastore %s: write of host %d: the cluster has %d slots", b.path, r.Host, b.hosts)
	}
	enc, err := AppendRecord(b.wbuf[:0], b.header.ClusterID, r)
	if err != nil {
		return fmt.Errorf("datastore %s: %w", b.path, err)
	}
	clear(b.wbuf[len(enc):SlotSize])
	if _, err := b.f.WriteAt(b.wbuf[:SlotSize], slotOffset(r.Host)); err != nil {
		return fmt.Errorf("datastore %s: write slot %d: %w", b.path, r.Host, err)
	}
	return nil
}

// ReadAll reads every host's slot in one aligned read. The slice is indexed
// by host; an empty slot or one that fails its checks (reported to
// BadSlot) is nil. An error means the device could not be read.
func (b *Block) ReadAll() ([]*cluster.Record, error) {
	buf := b.rbuf[:b.hosts*SlotSize]
	if _, err := b.f.ReadAt(buf, slotOffset(0)); err != nil {
		return nil, fmt.Errorf("datastore %s: read the slots: %w", b.path, err)
	}
	recs := make([]*cluster.Record, b.hosts)
	for h := range recs {
		r, err := DecodeRecord(buf[h*SlotSize:(h+1)*SlotSize], b.header.ClusterID, h)
		if err != nil {
			if b.BadSlot != nil {
				b.BadSlot(&SlotError{Host: h, Path: fmt.Sprintf("%s slot %d", b.path, h), Reason: err.Error()})
			}
			continue
		}
		recs[h] = r
	}
	return recs, nil
}
