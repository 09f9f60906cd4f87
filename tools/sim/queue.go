package sim

import (
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

// kind says what an event does when its time comes.
type kind uint8

const (
	kTick     kind = iota + 1 // a host's heartbeat timer
	kBcast                    // a heartbeat reaches every receiver of its link
	kDeliver                  // a delayed heartbeat reaches one receiver
	kReply                    // a completion reaches a host's agent
	kWrite                    // a slot write lands on a datastore, then replies
	kRead                     // a datastore read completes
	kBMC                      // a BMC carries out a request
	kVMDone                   // a hypervisor operation completes
	kWatchdog                 // a watchdog deadline check
	kBoot                     // a host finishes booting
	kCmd                      // a script command
	kSettle                   // the liveness check after the last fault
)

// event is one entry of the world's queue. It is a plain value (no
// allocation per event) whose fields mean what its kind says.
type event struct {
	at   time.Duration
	seq  uint64
	kind kind
	host int32  // the host concerned (receiver, writer, BMC target...)
	x, y int32  // datastore, link, VM, operation, requester
	gen  uint64 // agent generation the completion belongs to
	pgen uint64 // power generation the effect belongs to
	tok  uint32 // hypervisor operation token (kVMDone)
	op   uint64 // the agent's request number, echoed in VMDone
	msg  *hb.Message
	rec  *cluster.Record
	ev   cluster.Event // the completion to deliver (kReply)
}

// queue is a binary min-heap of events ordered by (at, seq): events at the
// same instant run in the order they were scheduled.
type queue struct {
	ev  []event
	seq uint64
}

func (q *queue) less(i, j int) bool {
	a, b := &q.ev[i], &q.ev[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.ev = append(q.ev, e)
	i := len(q.ev) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.ev[i], q.ev[p] = q.ev[p], q.ev[i]
		i = p
	}
}

func (q *queue) len() int { return len(q.ev) }

// peek is the next event's time; the queue must not be empty.
func (q *queue) peek() time.Duration { return q.ev[0].at }

func (q *queue) pop() event {
	top := q.ev[0]
	n := len(q.ev) - 1
	q.ev[0] = q.ev[n]
	q.ev[n] = event{} // drop the references
	q.ev = q.ev[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			break
		}
		q.ev[i], q.ev[m] = q.ev[m], q.ev[i]
		i = m
	}
	return top
}
