package hb

import (
	"math/bits"
	"time"
)

// HostSet is a set of host indexes (0..63): a cluster has at most 64 hosts.
type HostSet uint64

// MaxHosts is the largest cluster a HostSet can describe.
const MaxHosts = 64

// Has reports whether h is in the set.
func (s HostSet) Has(h int) bool { return s&(1<<uint(h)) != 0 }

// With returns the set with h added.
func (s HostSet) With(h int) HostSet { return s | 1<<uint(h) }

// Without returns the set with h removed.
func (s HostSet) Without(h int) HostSet { return s &^ (1 << uint(h)) }

// Len is the number of hosts in the set.
func (s HostSet) Len() int { return bits.OnesCount64(uint64(s)) }

// Min is the lowest host index in the set, or -1 when it is empty.
func (s HostSet) Min() int {
	if s == 0 {
		return -1
	}
	return bits.TrailingZeros64(uint64(s))
}

// Assignment tells a host to start a VM at an ownership epoch. The
// coordinator gossips its current assignments in every heartbeat so that a
// lost packet costs one interval, not a recovery.
type Assignment struct {
	VM    int    // index of the VM in the cluster spec
	Host  int    // index of the host that is to run it
	Epoch uint64 // ownership epoch the new owner claims
	// From and FromEpoch name the ownership this assignment supersedes
	// (From is -1 for a first power-on). A claimant treats every claim at
	// or below FromEpoch as settled by the coordinator's proof, and any
	// other live claim above it as a conflict.
	From      int
	FromEpoch uint64
	// Inc is the target's incarnation when the assignment was made: a
	// later incarnation of the target ignores it, and the coordinator may
	// then supersede it.
	Inc uint64
}

// Message is the content of one heartbeat: who sent it, on which link, and a
// digest of the sender's view. The wire encoding lives beside it; the core
// only ever sees this struct.
type Message struct {
	From        int           // sender host index
	Incarnation uint64        // changes at every agent start
	Seq         uint64        // per-sender sequence number
	Link        int           // link the packet was sent on
	SentAt      time.Duration // sender's monotonic clock at send time
	Hears       HostSet       // hosts the sender hears on at least one link
	Coordinator int           // host the sender takes for coordinator, -1 if none
	Isolated    bool          // sender has declared itself isolated
	Maintenance bool          // sender is in maintenance mode
	// Version changes whenever any of the fields below it change, so a
	// receiver can skip the digest of an unchanged view.
	Version     uint64
	Assignments []Assignment // only the coordinator sends these
}
