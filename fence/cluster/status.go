package cluster

import "time"

// Status is a snapshot of what a host knows, for operators: `vigil status`,
// `vigil peers`, `vigil links`. It shares nothing with the node.
type Status struct {
	Host        string
	Incarnation uint64
	Self        string // healthy, isolated, datastore-lost, starting
	Coordinator string // "none" when there is none
	Lease       string // none, fresh, held, lapsed
	Maintenance bool
	Stopping    bool
	Carrier     []bool // per link, the local NIC's carrier
	Peers       []PeerStatus
	Datastores  []DatastoreStatus
	VMs         []VMStatus
	Local       LocalStatus // this host's own stall (local.go)
}

// PeerStatus is one peer.
type PeerStatus struct {
	Name        string
	Verdict     string
	Maintenance bool
	Links       []LinkStatus
	// Silent is how long the peer has been silent on every link (0 while
	// it is heard on one).
	Silent time.Duration
}

// LinkStatus is one peer's link as this host sees it.
type LinkStatus struct {
	State   string        // up, suspect, down
	Heard   bool          // heard at least once
	Ago     time.Duration // since the last heartbeat on it
	Timeout time.Duration // the adaptive timeout now in force
	Mean    time.Duration // smoothed gap between heartbeats
	Jitter  time.Duration // smoothed deviation of that gap
}

// DatastoreStatus is one datastore as this host sees it.
type DatastoreStatus struct {
	Failing bool
	// Down is the kernel's judgement (StoreIO): every request stuck or
	// failing; DownWhy says which.
	Down    bool
	DownWhy string
	// Renewed is how long ago the last counted renewal of this host's
	// lease started (-1: never).
	Renewed time.Duration
}

// VMStatus is one VM this host claims.
type VMStatus struct {
	Name   string
	Epoch  uint64
	State  string
	Reason string
}

var leaseNames = [...]string{"none", "fresh", "held", "lapsed"}

// Status returns the snapshot at now.
func (n *Node) Status(now time.Duration) Status {
	s := Status{Host: n.name(n.self), Incarnation: n.inc, Self: n.self0.String(), Coordinator: n.name(n.coord),
		Lease: leaseNames[n.lease], Maintenance: n.maint, Stopping: n.shutdown, Carrier: append([]bool(nil), n.carrier...)}
	for h := range n.peers {
		if h == n.self {
			continue
		}
		p := &n.peers[h]
		ps := PeerStatus{Name: n.name(h), Verdict: p.verdict.String(), Maintenance: p.maint}
		if _, ok := p.h.net.LastHeard(); ok && !n.hears.Has(h) {
			ps.Silent = p.h.net.SilentFor(now)
		}
		for l := range p.h.net.Links() {
			lk := p.h.net.Link(l)
			last, heard := lk.LastHeard()
			mean, dev := lk.Estimate(&n.det)
			ls := LinkStatus{State: lk.State(now, &n.det).String(), Heard: heard, Timeout: lk.Timeout(&n.det), Mean: mean, Jitter: dev}
			if heard {
				ls.Ago = now - last
			}
			ps.Links = append(ps.Links, ls)
		}
		s.Peers = append(s.Peers, ps)
	}
	s.Local = n.localStatus(now)
	for d := range n.ds {
		ds := &n.ds[d]
		st := DatastoreStatus{Failing: ds.failing, Down: ds.apd, DownWhy: ds.apdWhy, Renewed: -1}
		if ds.hasCounted {
			st.Renewed = now - ds.counted
		}
		s.Datastores = append(s.Datastores, st)
	}
	for _, v := range n.sortedClaims() {
		lc := n.claims[v]
		vs := VMStatus{Name: n.vmName(v), Epoch: lc.Epoch, State: lc.State.String()}
		if lc.State == Released {
			vs.Reason = lc.Reason.String()
		}
		s.VMs = append(s.VMs, vs)
	}
	return s
}

// HostIndex returns the index of the host called name, or -1.
func (n *Node) HostIndex(name string) int {
	for h, x := range n.names {
		if x == name {
			return h
		}
	}
	return -1
}
