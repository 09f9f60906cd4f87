package datastore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/fence"
	"github.com/vigil-ha/vigil/fence/cluster"
)

// An incident record has the slot record's header with its own magic, the
// writer being the coordinator that keeps the incident (ID.Host,
// ID.Incarnation):
//
//	off  size  field
//	  0     4  magic "VGIR"
//	  4     2  incident format (IncidentFormat)
//	  6     2  body length in bytes
//	  8     8  cluster id
//	 16     4  writer host (the coordinator)
//	 20     8  writer's incarnation
//	 28     4  CRC-32C of bytes 0..27 and the body
//	 32     n  body
//
// The body, unsigned varints unless noted, times in nanoseconds on the
// coordinator's clock as zigzag varints, strings as a length and bytes:
// sequence, version, flags byte (closed, fence stuck), wall time (zigzag,
// Unix ns), host, its incarnation, kind byte, outcome, detected, the
// suspect rows (count, strings), decided, the verdict rows; the fence:
// started, plan byte, requests, attempts (count; op byte, at, done,
// result); the
// proof: kind byte, host, incarnation, counter, at, detail; placements
// (count; VM, to+1, epoch, state byte, assigned, running, reason).
const (
	// IncidentFormat is the incident record format version.
	IncidentFormat = 1
	// MaxIncident is the largest encoded incident: one block incident slot.
	MaxIncident = SlotSize
)

var incidentMagic = [4]byte{'V', 'G', 'I', 'R'}

// Incident flags.
const (
	iflagClosed = 1 << iota
	iflagStuck
	iflagsKnown = iflagClosed | iflagStuck
)

// ErrBadIncident matches every incident record that fails its checks.
var ErrBadIncident = errors.New("datastore: bad incident record")

// IncidentError is an incident record that failed its checks: it is
// skipped, never trusted.
type IncidentError struct {
	Host   int    // the writer whose area holds it
	Path   string // the file, or the device and slot
	Reason string
}

func (e *IncidentError) Error() string {
	return fmt.Sprintf("datastore: incident record of host %d (%s): %s", e.Host, e.Path, e.Reason)
}

// Is makes errors.Is(err, ErrBadIncident) hold.
func (e *IncidentError) Is(target error) bool { return target == ErrBadIncident }

// AppendIncident appends x, encoded for cluster clusterID, to dst. An
// incident that does not fit in MaxIncident bytes is an error naming its
// size.
func AppendIncident(dst []byte, clusterID uint64, x *cluster.Incident) ([]byte, error) {
	start := len(dst)
	b := append(dst, make([]byte, headerSize)...)
	b = binary.AppendUvarint(b, x.ID.Seq)
	b = binary.AppendUvarint(b, x.Version)
	var flags byte
	if x.Closed {
		flags |= iflagClosed
	}
	if x.Fence.Stuck {
		flags |= iflagStuck
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, x.Wall)
	b = binary.AppendUvarint(b, uint64(x.Host))
	b = binary.AppendUvarint(b, x.Incarnation)
	b = append(b, byte(x.Kind))
	b = appendString(b, x.Outcome)
	b = binary.AppendVarint(b, int64(x.Detected))
	b = appendStrings(b, x.Suspect)
	b = binary.AppendVarint(b, int64(x.Decided))
	b = appendStrings(b, x.Verdict)
	b = binary.AppendVarint(b, int64(x.Fence.Started))
	b = append(b, byte(x.Fence.Plan))
	b = binary.AppendUvarint(b, uint64(x.Fence.Requests))
	b = binary.AppendUvarint(b, uint64(len(x.Fence.Attempts)))
	for _, a := range x.Fence.Attempts {
		b = append(b, byte(a.Op))
		b = binary.AppendVarint(b, int64(a.At))
		b = binary.AppendVarint(b, int64(a.Done))
		b = appendString(b, a.Result)
	}
	p := &x.Proof
	b = append(b, byte(p.Kind))
	b = binary.AppendUvarint(b, uint64(p.Host))
	b = binary.AppendUvarint(b, p.Incarnation)
	b = binary.AppendUvarint(b, p.Counter)
	b = binary.AppendVarint(b, int64(p.At))
	b = appendString(b, p.Detail)
	b = binary.AppendUvarint(b, uint64(len(x.Placements)))
	for _, pl := range x.Placements {
		b = binary.AppendUvarint(b, uint64(pl.VM))
		b = binary.AppendUvarint(b, uint64(pl.To+1))
		b = binary.AppendUvarint(b, pl.Epoch)
		b = append(b, byte(pl.State))
		b = binary.AppendVarint(b, int64(pl.Assigned))
		b = binary.AppendVarint(b, int64(pl.Running))
		b = appendString(b, pl.Reason)
	}
	size := len(b) - start
	if size > MaxIncident {
		return b[:start], fmt.Errorf("datastore: incident %s takes %d bytes, an incident slot holds %d (%d placements, %d fence attempts, %d evidence rows): shorter evidence rows, or fewer VMs per host",
			IncidentName(x.ID), size, MaxIncident, len(x.Placements), len(x.Fence.Attempts), len(x.Suspect)+len(x.Verdict))
	}
	putHeader(b[start:], incidentMagic, IncidentFormat, clusterID, x.ID.Host, x.ID.Incarnation)
	return b, nil
}

// putHeader fills the 32-byte header of the record rec (header and body).
func putHeader(rec []byte, magic [4]byte, format uint16, clusterID uint64, host int, inc uint64) {
	h := rec[:headerSize]
	copy(h[0:4], magic[:])
	binary.LittleEndian.PutUint16(h[4:], format)
	binary.LittleEndian.PutUint16(h[6:], uint16(len(rec)-headerSize))
	binary.LittleEndian.PutUint64(h[8:], clusterID)
	binary.LittleEndian.PutUint32(h[16:], uint32(host))
	binary.LittleEndian.PutUint64(h[20:], inc)
	binary.LittleEndian.PutUint32(h[28:], recordSum(rec))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// IncidentName is the name of an incident's file in a folder datastore,
// and how errors name it: HOST-INCARNATION-SEQ (host by index).
func IncidentName(id cluster.IncidentID) string {
	return fmt.Sprintf("%d-%d-%d", id.Host, id.Incarnation, id.Seq)
}

// DecodeIncident decodes the incident record at the start of data (which
// may run on past it, as a block slot does) for cluster clusterID, written
// by host writer. An all-zero slot decodes to (nil, nil). Anything else
// that fails a check is an error that says which, and is never trusted.
func DecodeIncident(data []byte, clusterID uint64, writer int) (*cluster.Incident, error) {
	x, err := decodeIncident(data, clusterID, writer)
	if err == errEmpty {
		return nil, nil
	}
	return x, err
}

func decodeIncident(data []byte, clusterID uint64, writer int) (*cluster.Incident, error) {
	rec, err := checkHeader(data, incidentMagic, IncidentFormat, MaxIncident, clusterID, "incident record")
	if err != nil {
		return nil, err
	}
	if h := int(binary.LittleEndian.Uint32(data[16:])); h != writer {
		return nil, fmt.Errorf("holds host %d's incident, not host %d's", h, writer)
	}
	x := &cluster.Incident{ID: cluster.IncidentID{Host: writer, Incarnation: binary.LittleEndian.Uint64(data[20:])}}
	d := decoder{b: rec[headerSize:]}
	x.ID.Seq = d.uvarint()
	x.Version = d.uvarint()
	flags := d.byte()
	if flags&^iflagsKnown != 0 {
		d.fail(fmt.Sprintf("unknown flags %#x", flags))
	}
	x.Closed, x.Fence.Stuck = flags&iflagClosed != 0, flags&iflagStuck != 0
	x.Wall = d.varint()
	x.Host, x.Incarnation = d.int(), d.uvarint()
	x.Kind = cluster.IncidentKind(d.enum("kind", 1, 3))
	x.Outcome = d.string()
	x.Detected = time.Duration(d.varint())
	x.Suspect = d.strings()
	x.Decided = time.Duration(d.varint())
	x.Verdict = d.strings()
	x.Fence.Started = time.Duration(d.varint())
	x.Fence.Plan = fence.Method(d.enum("fence plan", 0, 2))
	x.Fence.Requests = d.int()
	if k := d.count(1 + 1 + 1 + 1); k > 0 {
		x.Fence.Attempts = make([]fence.Attempt, k)
		for i := range x.Fence.Attempts {
			a := &x.Fence.Attempts[i]
			a.Op = fence.Op(d.enum("BMC request", 1, 2))
			a.At, a.Done = time.Duration(d.varint()), time.Duration(d.varint())
			a.Result = d.string()
		}
	}
	p := &x.Proof
	p.Kind = cluster.ProofKind(d.enum("proof kind", 0, 3))
	p.Host, p.Incarnation, p.Counter = d.int(), d.uvarint(), d.uvarint()
	p.At = time.Duration(d.varint())
	p.Detail = d.string()
	if k := d.count(7); k > 0 {
		x.Placements = make([]cluster.Placement, k)
		for i := range x.Placements {
			pl := &x.Placements[i]
			pl.VM, pl.To, pl.Epoch = d.int(), d.int()-1, d.uvarint()
			pl.State = cluster.PlacementState(d.enum("placement state", 1, 4))
			pl.Assigned, pl.Running = time.Duration(d.varint()), time.Duration(d.varint())
			pl.Reason = d.string()
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes after the last field", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("malformed body: %w", d.err)
	}
	return x, nil
}

// checkHeader runs the checks every record shares: size, magic, format,
// length, checksum and cluster. It returns the record (header and body).
func checkHeader(data []byte, magic [4]byte, format uint16, maxSize int, clusterID uint64, what string) ([]byte, error) {
	if len(data) < headerSize {
		if allZero(data) {
			return nil, errEmpty
		}
		return nil, fmt.Errorf("truncated: %d bytes, a record has at least %d", len(data), headerSize)
	}
	if [4]byte(data[0:4]) != magic {
		if allZero(data[:headerSize]) {
			return nil, errEmpty
		}
		return nil, fmt.Errorf("no %s magic (starts % x): the slot holds something else or was overwritten", what, data[0:4])
	}
	if v := binary.LittleEndian.Uint16(data[4:]); v != format {
		return nil, fmt.Errorf("%s format %d, this build reads format %d: upgrade every host to the same vigil version", what, v, format)
	}
	n := int(binary.LittleEndian.Uint16(data[6:]))
	if headerSize+n > len(data) || headerSize+n > maxSize {
		return nil, fmt.Errorf("torn: the header says %d body bytes, %d are there", n, min(len(data), maxSize)-headerSize)
	}
	rec := data[:headerSize+n]
	if got, want := recordSum(rec), binary.LittleEndian.Uint32(data[28:]); got != want {
		return nil, fmt.Errorf("checksum mismatch (CRC-32C %08x, header says %08x): the record is torn or corrupt", got, want)
	}
	if id := binary.LittleEndian.Uint64(data[8:]); id != clusterID {
		return nil, fmt.Errorf("written by another cluster (id %016x, this one is %016x): give each cluster its own datastore", id, clusterID)
	}
	return rec, nil
}

// enum reads a byte that must lie in [lo, hi].
func (d *decoder) enum(what string, lo, hi byte) byte {
	v := d.byte()
	if d.err == nil && (v < lo || v > hi) {
		d.fail(fmt.Sprintf("%s %d unknown", what, v))
		return 0
	}
	return v
}

func (d *decoder) string() string { return string(d.bytes(d.count(1))) }

func (d *decoder) strings() []string {
	k := d.count(1)
	if k == 0 {
		return nil
	}
	ss := make([]string, k)
	for i := range ss {
		ss[i] = d.string()
	}
	return ss
}

// appendIncidentFit is AppendIncident for an incident that may not fit an
// incident slot (a host with a great many VMs): it stores a copy cut down
// to fit, rather than nothing. Long strings are cut first, then the middle
// BMC requests, then the last placements, which its outcome then says.
func appendIncidentFit(dst []byte, clusterID uint64, x *cluster.Incident) ([]byte, error) {
	b, err := AppendIncident(dst, clusterID, x)
	if err == nil {
		return b, nil
	}
	y := x.Clone()
	cut := func(s *string) {
		if len(*s) > maxFitString {
			*s = strings.ToValidUTF8((*s)[:maxFitString], "") + "..."
		}
	}
	for _, ss := range [][]string{y.Suspect, y.Verdict} {
		for i := range ss {
			cut(&ss[i])
		}
	}
	cut(&y.Proof.Detail)
	for i := range y.Placements {
		cut(&y.Placements[i].Reason)
	}
	if n := len(y.Fence.Attempts); n > 4 {
		y.Fence.Attempts = append(y.Fence.Attempts[:2:2], y.Fence.Attempts[n-2:]...)
	}
	all, outcome := y.Placements, y.Outcome
	// The most placements that fit: fewer always fit if more do.
	k := sort.Search(len(all)+1, func(k int) bool {
		y.Placements, y.Outcome = all[:k], outcome
		if k < len(all) {
			y.Outcome = fmt.Sprintf("%s (%d of %d placements stored: an incident record holds %d bytes)", outcome, k, len(all), MaxIncident)
		}
		_, err := AppendIncident(dst, clusterID, y)
		return err != nil
	}) - 1
	if k < 0 {
		return dst, err
	}
	y.Placements, y.Outcome = all[:k], outcome
	if k < len(all) {
		y.Outcome = fmt.Sprintf("%s (%d of %d placements stored: an incident record holds %d bytes)", outcome, k, len(all), MaxIncident)
	}
	return AppendIncident(dst, clusterID, y)
}

// maxFitString is how long a string of an incident cut to fit may be.
const maxFitString = 120
