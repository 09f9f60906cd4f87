package hb

import (
	"errors"
	"strconv"
	"sync/atomic"
)

// DropReason says why a received heartbeat packet was thrown away. The zero
// value means "not dropped" (see Reason).
type DropReason uint8

const (
	_ DropReason = iota
	// Truncated: shorter than the fixed header and tag, or shorter than its
	// assignment count says.
	Truncated
	// BadMagic: not a vigil heartbeat at all.
	BadMagic
	// WrongVersion: a wire format version this binary does not speak.
	WrongVersion
	// WrongCluster: a heartbeat of another cluster on the same network.
	WrongCluster
	// UnknownKey: signed with a key that is not in the ring, or whose
	// accept-until has passed.
	UnknownKey
	// BadMAC: the tag does not authenticate the packet.
	BadMAC
	// Malformed: authenticated but impossible, or longer than its header
	// says: trailing bytes, unknown flags, an index out of range.
	Malformed
	// Replayed: a sequence number seen before, older than the replay
	// window, or from an earlier incarnation of the sender.
	Replayed

	numReasons
)

var reasonNames = [numReasons]string{
	"none", "truncated", "bad-magic", "wrong-version", "wrong-cluster",
	"unknown-key", "bad-mac", "malformed", "replayed",
}

// String is the reason's name as counters and logs show it, e.g. "bad-mac".
func (r DropReason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}

// DropError is the error Decode and ReplayGuard.Check return for a packet
// they refuse. Compare it with errors.Is against the sentinel of its reason
// (ErrBadMAC, ...), or read the reason with Reason.
type DropError struct {
	Reason DropReason
	Detail string // what exactly was wrong, for the log; may be empty
}

func (e *DropError) Error() string {
	if e.Detail == "" {
		return "heartbeat dropped: " + e.Reason.String()
	}
	return "heartbeat dropped: " + e.Reason.String() + ": " + e.Detail
}

// Is reports whether target is a *DropError with the same reason, so that
// errors.Is(err, hb.ErrBadMAC) holds for every BadMAC drop.
func (e *DropError) Is(target error) bool {
	t, ok := target.(*DropError)
	return ok && t.Reason == e.Reason
}

// Sentinels, one per drop reason, for errors.Is.
var (
	ErrTruncated    = &DropError{Reason: Truncated}
	ErrBadMagic     = &DropError{Reason: BadMagic}
	ErrWrongVersion = &DropError{Reason: WrongVersion}
	ErrWrongCluster = &DropError{Reason: WrongCluster}
	ErrUnknownKey   = &DropError{Reason: UnknownKey}
	ErrBadMAC       = &DropError{Reason: BadMAC}
	ErrMalformed    = &DropError{Reason: Malformed}
	ErrReplayed     = &DropError{Reason: Replayed}
)

// Reason is the drop reason of err, or 0 ("none") if err is nil or not a
// drop.
func Reason(err error) DropReason {
	if d, ok := err.(*DropError); ok { // no allocation on the hot path
		return d.Reason
	}
	var d *DropError
	if errors.As(err, &d) {
		return d.Reason
	}
	return 0
}

// Counters counts dropped packets by reason. The zero value is ready; every
// method is safe for concurrent use, so one Counters may serve every socket.
type Counters struct {
	n [numReasons]atomic.Uint64
}

// Add counts one drop for reason r; an unknown reason is not counted.
func (c *Counters) Add(r DropReason) {
	if r > 0 && r < numReasons {
		c.n[r].Add(1)
	}
}

// AddErr counts err if it is a drop (see Reason) and reports whether it was.
func (c *Counters) AddErr(err error) bool {
	r := Reason(err)
	c.Add(r)
	return r != 0
}

// Get is the number of drops counted for reason r.
func (c *Counters) Get(r DropReason) uint64 {
	if r > 0 && r < numReasons {
		return c.n[r].Load()
	}
	return 0
}

// Snapshot is every reason's count by name ("bad-mac": 3, ...), zeros
// included, for status output.
func (c *Counters) Snapshot() map[string]uint64 {
	m := make(map[string]uint64, numReasons-1)
	for r := DropReason(1); r < numReasons; r++ {
		m[r.String()] = c.n[r].Load()
	}
	return m
}
