// Package hb is vigil's heartbeat layer, pure: the heartbeat message that
// carries a host's view to its peers, and the per-peer, per-link failure
// detector whose timeout follows the observed jitter but never drops below
// the configured link timeout.
//
//	cfg := hb.DetectorConfig{Interval: 100 * time.Millisecond, Floor: 500 * time.Millisecond}
//	var p hb.Peer
//	p.Init(2, &cfg)          // a peer heard on two links
//	p.Link(0).Heard(now)     // a heartbeat arrived on link 0
//	if p.State(now, &cfg) == hb.Down {
//		// silent on every link: the decision table takes it from here
//	}
//
// Link states, by the silence s since the link was last heard and its
// current timeout T (T >= Floor):
//
//	s <= T/2        up
//	T/2 < s <= T    suspect
//	s > T           down (also: never heard, or the local NIC lost carrier)
package hb
