package datastore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

// A slot record, as both backends store it, is a fixed header followed by
// the record body:
//
//	off  size  field
//	  0     4  magic "VGSR"
//	  4     2  record format (RecordFormat)
//	  6     2  body length in bytes
//	  8     8  cluster id (hb.ClusterID of the cluster name)
//	 16     4  host index
//	 20     8  writer's incarnation
//	 28     4  CRC-32C of bytes 0..27 and the body
//	 32     n  body
//
// The body is the record's fields in order, unsigned varints unless noted:
// counter, flags byte (isolated, maintenance, datastore lost), hears (8
// bytes little-endian), then three counted lists: claims (VM, epoch, state
// byte, reason byte), assignments (VM, host, epoch, from+1, from epoch,
// incarnation) and fence proofs (kind byte, host, incarnation, counter, at
// in nanoseconds as a zigzag varint, detail as length and bytes). All
// integers are little-endian.
const (
	// RecordFormat is the slot record format version.
	RecordFormat = 1
	// headerSize is the fixed part of a record.
	headerSize = 32
	// MaxRecord is the largest encoded record: one block slot.
	MaxRecord = SlotSize
)

var recordMagic = [4]byte{'V', 'G', 'S', 'R'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record flags.
const (
	flagIsolated = 1 << iota
	flagMaintenance
	flagDatastoreLost
	flagsKnown = flagIsolated | flagMaintenance | flagDatastoreLost
)

// AppendRecord appends r, encoded for cluster clusterID, to dst. A record
// that does not fit in MaxRecord bytes is an error that names its size.
func AppendRecord(dst []byte, clusterID uint64, r *cluster.Record) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	b := binary.AppendUvarint(dst, r.Counter)
	var flags byte
	if r.Isolated {
		flags |= flagIsolated
	}
	if r.Maintenance {
		flags |= flagMaintenance
	}
	if r.DatastoreLost {
		flags |= flagDatastoreLost
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Hears))
	b = binary.AppendUvarint(b, uint64(len(r.Claims)))
	for _, c := range r.Claims {
		b = binary.AppendUvarint(b, uint64(c.VM))
		b = binary.AppendUvarint(b, c.Epoch)
		b = append(b, byte(c.State), byte(c.Reason))
	}
	b = binary.AppendUvarint(b, uint64(len(r.Assignments)))
	for _, a := range r.Assignments {
		b = binary.AppendUvarint(b, uint64(a.VM))
		b = binary.AppendUvarint(b, uint64(a.Host))
		b = binary.AppendUvarint(b, a.Epoch)
		b = binary.AppendUvarint(b, uint64(a.From+1))
		b = binary.AppendUvarint(b, a.FromEpoch)
		b = binary.AppendUvarint(b, a.Inc)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Fenced)))
	for _, p := range r.Fenced {
		b = append(b, byte(p.Kind))
		b = binary.AppendUvarint(b, uint64(p.Host))
		b = binary.AppendUvarint(b, p.Incarnation)
		b = binary.AppendUvarint(b, p.Counter)
		b = binary.AppendVarint(b, int64(p.At))
		b = binary.AppendUvarint(b, uint64(len(p.Detail)))
		b = append(b, p.Detail...)
	}
	size := len(b) - start
	if size > MaxRecord {
		return dst[:start], fmt.Errorf("datastore: host %d's record takes %d bytes, a slot holds %d (%d claims, %d assignments, %d fence proofs): fewer VMs per host, or shorter fence details", r.Host, size, MaxRecord, len(r.Claims), len(r.Assignments), len(r.Fenced))
	}
	putHeader(b[start:], recordMagic, RecordFormat, clusterID, r.Host, r.Incarnation)
	return b, nil
}

func recordSum(rec []byte) uint32 {
	s := crc32.Update(0, castagnoli, rec[:28])
	return crc32.Update(s, castagnoli, rec[headerSize:])
}

// errEmpty is a slot never written (all zeros): not an error to report.
var errEmpty = errors.New("datastore: empty slot")

// DecodeRecord decodes the record at the start of data (which may run on
// past it, as a block slot does) for cluster clusterID and slot host. An
// all-zero slot decodes to (nil, nil). Anything else that fails a check is
// an error that says which, and is never trusted.
func DecodeRecord(data []byte, clusterID uint64, host int) (*cluster.Record, error) {
	r, err := decodeRecord(data, clusterID, host)
	if err == errEmpty {
		return nil, nil
	}
	return r, err
}

func decodeRecord(data []byte, clusterID uint64, host int) (*cluster.Record, error) {
	rec, err := checkHeader(data, recordMagic, RecordFormat, MaxRecord, clusterID, "record")
	if err != nil {
		return nil, err
	}
	if h := int(binary.LittleEndian.Uint32(data[16:])); h != host {
		return nil, fmt.Errorf("holds host %d's record, not host %d's", h, host)
	}
	r := &cluster.Record{Host: host, Incarnation: binary.LittleEndian.Uint64(data[20:])}
	d := decoder{b: rec[headerSize:]}
	r.Counter = d.uvarint()
	flags := d.byte()
	if flags&^flagsKnown != 0 && d.err == nil {
		d.err = fmt.Errorf("unknown flags %#x", flags)
	}
	r.Isolated, r.Maintenance, r.DatastoreLost = flags&flagIsolated != 0, flags&flagMaintenance != 0, flags&flagDatastoreLost != 0
	r.Hears = hb.HostSet(d.uint64())
	if k := d.count(1 + 1 + 2); k > 0 {
		r.Claims = make([]cluster.Claim, k)
		for i := range r.Claims {
			r.Claims[i] = cluster.Claim{VM: d.int(), Epoch: d.uvarint(), State: cluster.ClaimState(d.byte()), Reason: cluster.Reason(d.byte())}
		}
	}
	if k := d.count(6); k > 0 {
		r.Assignments = make([]hb.Assignment, k)
		for i := range r.Assignments {
			r.Assignments[i] = hb.Assignment{VM: d.int(), Host: d.int(), Epoch: d.uvarint(), From: d.int() - 1, FromEpoch: d.uvarint(), Inc: d.uvarint()}
		}
	}
	if k := d.count(1 + 5); k > 0 {
		r.Fenced = make([]cluster.Proof, k)
		for i := range r.Fenced {
			p := &r.Fenced[i]
			p.Kind = cluster.ProofKind(d.byte())
			p.Host, p.Incarnation, p.Counter = d.int(), d.uvarint(), d.uvarint()
			p.At = time.Duration(d.varint())
			p.Detail = string(d.bytes(d.count(1)))
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes after the last field", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("malformed body: %w", d.err)
	}
	return r, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// decoder reads the body's fields; the first error sticks and every later
// read returns zero.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s", what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad or cut varint")
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		d.fail("varint longer than it needs to be") // re-encoding would differ
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad or cut varint")
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		d.fail("varint longer than it needs to be")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int reads an index; one past int32 is an error, not a wrap.
func (d *decoder) int() int {
	v := d.uvarint()
	if v > math.MaxInt32 {
		d.fail(fmt.Sprintf("index %d out of range", v))
		return 0
	}
	return int(v)
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("cut short")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail("cut short")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// count reads a list length and checks that the rest of the body could hold
// that many items of at least minSize bytes each, so a corrupt length never
// makes a huge allocation.
func (d *decoder) count(minSize int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/minSize) {
		d.fail(fmt.Sprintf("list of %d items in %d bytes", v, len(d.b)))
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(n int) []byte {
	if n > len(d.b) {
		d.fail("cut short")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
