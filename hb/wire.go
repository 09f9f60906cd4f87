package hb

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"time"
)

// Wire format constants (the layout is in the package documentation).
const (
	// WireVersion is the format version this binary writes and reads.
	WireVersion = 1
	// MaxPacket is the largest heartbeat packet, in bytes.
	MaxPacket = 65000
	// TagSize is the length of the packet's HMAC-SHA-256 tag: the first
	// 16 bytes of the MAC, as RFC 4868 truncates it.
	TagSize = 16
	// MinPacket is a packet with no assignments.
	MinPacket = headerSize + TagSize
	// MaxAssignments is the most assignments one packet carries.
	MaxAssignments = (MaxPacket - MinPacket) / assignmentSize

	headerSize     = 64
	assignmentSize = 32
)

// Byte offsets of the header fields.
const (
	offVersion     = 3
	offCluster     = 4
	offKeyID       = 12
	offFrom        = 16
	offLink        = 18
	offFlags       = 19
	offInc         = 20
	offSeq         = 28
	offSentAt      = 36
	offHears       = 44
	offCoordinator = 52
	offViewVersion = 54
	offCount       = 62
)

// Flag bits.
const (
	flagIsolated    = 1 << 0
	flagMaintenance = 1 << 1
	flagsKnown      = flagIsolated | flagMaintenance
)

const magic = "VGL"

// ErrUnencodable is wrapped by Encode's errors: the message has a field the
// wire format cannot carry, or the codec has no key to sign with.
var ErrUnencodable = errors.New("heartbeat cannot be encoded")

// Drops that happen to every stray or forged packet carry no detail, so
// that refusing them costs no allocation.
var (
	errBadMagic = &DropError{Reason: BadMagic, Detail: "not a vigil heartbeat"}
	errBadMAC   = &DropError{Reason: BadMAC, Detail: "tag does not authenticate the packet"}
)

// Codec encodes and decodes heartbeat packets of one cluster with one
// keyring. It keeps the MAC state of each key, so it is not safe for
// concurrent use: give each socket or goroutine its own.
type Codec struct {
	cluster uint64
	ring    *Keyring
	macs    []hash.Hash // macs[i] is keyed with ring.keys[i]
	sum     [sha256.Size]byte
}

// NewCodec returns a codec for the cluster with id cluster (see ClusterID)
// that signs with ring's first key and accepts all of its keys. ring may be
// nil (or empty) until SetKeyring: then Encode fails and Decode drops every
// packet as UnknownKey.
func NewCodec(cluster uint64, ring *Keyring) *Codec {
	c := &Codec{cluster: cluster}
	c.SetKeyring(ring)
	return c
}

// SetKeyring replaces the codec's keys, e.g. after the key file was
// reloaded. It allocates the MAC state of every key once; Encode and Decode
// then allocate nothing for a valid packet, once dst and m.Assignments have
// the capacity.
func (c *Codec) SetKeyring(ring *Keyring) {
	c.ring, c.macs = nil, nil
	if ring == nil || len(ring.keys) == 0 {
		return
	}
	c.ring = ring
	c.macs = make([]hash.Hash, 0, len(ring.keys))
	for _, k := range ring.keys {
		c.macs = append(c.macs, hmac.New(sha256.New, k.secret))
	}
}

// Encode appends the packet for m, signed with the ring's first key, to dst
// and returns the extended slice. It fails, leaving dst as it was, when a
// field of m does not fit the wire format (a host index outside the cluster,
// too many assignments) or the codec has no keyring.
func (c *Codec) Encode(dst []byte, m *Message) ([]byte, error) {
	if c.ring == nil {
		return dst, fmt.Errorf("%w: the codec has no keyring; load the key file and call SetKeyring", ErrUnencodable)
	}
	if err := checkEncodable(m); err != nil {
		return dst, err
	}
	start := len(dst)
	var flags byte
	if m.Isolated {
		flags |= flagIsolated
	}
	if m.Maintenance {
		flags |= flagMaintenance
	}
	be := binary.BigEndian
	dst = append(dst, magic...)
	dst = append(dst, WireVersion)
	dst = be.AppendUint64(dst, c.cluster)
	dst = be.AppendUint32(dst, c.ring.keys[0].id)
	dst = be.AppendUint16(dst, uint16(m.From))
	dst = append(dst, byte(m.Link), flags)
	dst = be.AppendUint64(dst, m.Incarnation)
	dst = be.AppendUint64(dst, m.Seq)
	dst = be.AppendUint64(dst, uint64(m.SentAt))
	dst = be.AppendUint64(dst, uint64(m.Hears))
	dst = be.AppendUint16(dst, uint16(int16(m.Coordinator)))
	dst = be.AppendUint64(dst, m.Version)
	dst = be.AppendUint16(dst, uint16(len(m.Assignments)))
	for i := range m.Assignments {
		a := &m.Assignments[i]
		dst = be.AppendUint32(dst, uint32(a.VM))
		dst = be.AppendUint16(dst, uint16(a.Host))
		dst = be.AppendUint64(dst, a.Epoch)
		dst = be.AppendUint16(dst, uint16(int16(a.From)))
		dst = be.AppendUint64(dst, a.FromEpoch)
		dst = be.AppendUint64(dst, a.Inc)
	}
	tag := c.mac(0, dst[start:])
	return append(dst, tag...), nil
}

// mac is the truncated tag of body under key i. The result lives in the
// codec and is overwritten by the next call.
func (c *Codec) mac(i int, body []byte) []byte {
	h := c.macs[i]
	h.Reset()
	h.Write(body)
	return h.Sum(c.sum[:0])[:TagSize]
}

// checkEncodable says which field of m the wire format cannot carry. The
// bounds are the ones Decode enforces, so that every packet it accepts
// encodes back to the same bytes.
func checkEncodable(m *Message) error {
	switch {
	case m.From < 0 || m.From >= MaxHosts:
		return fmt.Errorf("%w: sender %d outside 0..%d", ErrUnencodable, m.From, MaxHosts-1)
	case m.Link < 0 || m.Link >= MaxLinks:
		return fmt.Errorf("%w: link %d outside 0..%d", ErrUnencodable, m.Link, MaxLinks-1)
	case m.Coordinator < -1 || m.Coordinator >= MaxHosts:
		return fmt.Errorf("%w: coordinator %d outside -1..%d", ErrUnencodable, m.Coordinator, MaxHosts-1)
	case len(m.Assignments) > MaxAssignments:
		return fmt.Errorf("%w: %d assignments, a packet carries at most %d", ErrUnencodable, len(m.Assignments), MaxAssignments)
	}
	for i := range m.Assignments {
		a := &m.Assignments[i]
		switch {
		case a.VM < 0 || uint64(a.VM) > 1<<32-1:
			return fmt.Errorf("%w: assignment %d: VM %d outside 0..%d", ErrUnencodable, i, a.VM, uint64(1<<32-1))
		case a.Host < 0 || a.Host >= MaxHosts:
			return fmt.Errorf("%w: assignment %d: host %d outside 0..%d", ErrUnencodable, i, a.Host, MaxHosts-1)
		case a.From < -1 || a.From >= MaxHosts:
			return fmt.Errorf("%w: assignment %d: from %d outside -1..%d", ErrUnencodable, i, a.From, MaxHosts-1)
		}
	}
	return nil
}

// Decode checks pkt and fills m from it. It checks, in order: the size, the
// magic, the format version, the length the assignment count implies, the
// cluster id, the key id (known, and not past its accept-until at wall
// time wall), the MAC, and last the structure. A packet that fails returns
// a *DropError and leaves m as it was. m.Assignments' storage is reused when
// it has the capacity, so the caller must not keep the previous message's
// assignments across calls. Decode does not check for replay: pass accepted
// packets to a ReplayGuard.
func (c *Codec) Decode(pkt []byte, m *Message, wall time.Time) error {
	n := len(pkt)
	if n < MinPacket {
		return drop(Truncated, "%d bytes, a heartbeat has at least %d", n, MinPacket)
	}
	if n > MaxPacket {
		return drop(Malformed, "%d bytes, a heartbeat has at most %d", n, MaxPacket)
	}
	if string(pkt[:offVersion]) != magic {
		return errBadMagic
	}
	if v := pkt[offVersion]; v != WireVersion {
		return drop(WrongVersion, "format version %d, this host speaks %d; run one vigil release across the cluster", v, WireVersion)
	}
	be := binary.BigEndian
	count := int(be.Uint16(pkt[offCount:]))
	switch want := MinPacket + count*assignmentSize; {
	case n < want:
		return drop(Truncated, "%d bytes, %d assignments need %d", n, count, want)
	case n > want:
		return drop(Malformed, "%d bytes, %d assignments need %d: trailing bytes", n, count, want)
	}
	if id := be.Uint64(pkt[offCluster:]); id != c.cluster {
		return drop(WrongCluster, "cluster id %016x, this host's is %016x: another cluster shares the network, or the cluster names differ", id, c.cluster)
	}
	id := be.Uint32(pkt[offKeyID:])
	k := -1
	if c.ring != nil {
		k = c.ring.find(id)
	}
	if k < 0 {
		return drop(UnknownKey, "key id %08x is not in the key file; add the sender's key to it", id)
	}
	if rk := &c.ring.keys[k]; !rk.accepts(wall) {
		return drop(UnknownKey, "key id %08x was accepted until %s", id, rk.until.Format(time.RFC3339))
	}
	body := pkt[:n-TagSize]
	if !hmac.Equal(c.mac(k, body), pkt[n-TagSize:]) {
		return errBadMAC
	}
	if err := checkStructure(body, count); err != nil {
		return err
	}
	fill(m, body, count)
	return nil
}

// checkStructure refuses an authenticated body whose values the wire
// format forbids.
func checkStructure(body []byte, count int) error {
	be := binary.BigEndian
	if f := body[offFlags]; f&^flagsKnown != 0 {
		return drop(Malformed, "unknown flags %#02x", f)
	}
	if from := be.Uint16(body[offFrom:]); from >= MaxHosts {
		return drop(Malformed, "sender %d outside 0..%d", from, MaxHosts-1)
	}
	if l := body[offLink]; l >= MaxLinks {
		return drop(Malformed, "link %d outside 0..%d", l, MaxLinks-1)
	}
	if co := int16(be.Uint16(body[offCoordinator:])); co < -1 || co >= MaxHosts {
		return drop(Malformed, "coordinator %d outside -1..%d", co, MaxHosts-1)
	}
	for i := range count {
		a := body[headerSize+i*assignmentSize:]
		if h := be.Uint16(a[4:]); h >= MaxHosts {
			return drop(Malformed, "assignment %d: host %d outside 0..%d", i, h, MaxHosts-1)
		}
		if f := int16(be.Uint16(a[14:])); f < -1 || f >= MaxHosts {
			return drop(Malformed, "assignment %d: from %d outside -1..%d", i, f, MaxHosts-1)
		}
	}
	return nil
}

// fill decodes a checked body into m.
func fill(m *Message, body []byte, count int) {
	be := binary.BigEndian
	flags := body[offFlags]
	m.From = int(be.Uint16(body[offFrom:]))
	m.Link = int(body[offLink])
	m.Isolated = flags&flagIsolated != 0
	m.Maintenance = flags&flagMaintenance != 0
	m.Incarnation = be.Uint64(body[offInc:])
	m.Seq = be.Uint64(body[offSeq:])
	m.SentAt = time.Duration(be.Uint64(body[offSentAt:]))
	m.Hears = HostSet(be.Uint64(body[offHears:]))
	m.Coordinator = int(int16(be.Uint16(body[offCoordinator:])))
	m.Version = be.Uint64(body[offViewVersion:])
	if cap(m.Assignments) < count {
		m.Assignments = make([]Assignment, count)
	}
	m.Assignments = m.Assignments[:count]
	for i := range count {
		a := body[headerSize+i*assignmentSize:]
		m.Assignments[i] = Assignment{
			VM:        int(be.Uint32(a)),
			Host:      int(be.Uint16(a[4:])),
			Epoch:     be.Uint64(a[6:]),
			From:      int(int16(be.Uint16(a[14:]))),
			FromEpoch: be.Uint64(a[16:]),
			Inc:       be.Uint64(a[24:]),
		}
	}
}

// drop builds the DropError of a refused packet.
func drop(r DropReason, format string, args ...any) error {
	return &DropError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}
