package agentd

import (
	"time"

	"github.com/vigil-ha/vigil/hb"
)

// reader authenticates the datagrams of one link, on the loop: forged,
// replayed or malformed packets are counted and dropped, good heartbeats go
// to the core, counted from their arrival.
type reader struct {
	d      *daemon
	link   int
	codec  *hb.Codec
	keyGen int
	guard  *hb.ReplayGuard
	m      hb.Message
}

func (d *daemon) newReader(link int) *reader {
	ring, gen := d.keys.get()
	return &reader{d: d, link: link, codec: hb.NewCodec(hb.ClusterID(d.cfg.Cluster.Name), ring), keyGen: gen,
		guard: hb.NewReplayGuard(len(d.cfg.Hosts), len(d.cfg.Links))}
}

func (r *reader) packet(data []byte, at time.Duration) {
	d := r.d
	if ring, gen := d.keys.get(); gen != r.keyGen {
		r.codec.SetKeyring(ring)
		r.keyGen = gen
	}
	if err := r.codec.Decode(data, &r.m, time.Now()); err != nil {
		d.drops.AddErr(err)
		return
	}
	if r.m.Link != r.link || r.m.From == d.self || r.m.From >= len(d.cfg.Hosts) {
		d.drops.Add(hb.Malformed) // sent on another link than it says, or not from a peer
		return
	}
	if err := r.guard.Check(r.m.From, r.m.Link, r.m.Incarnation, r.m.Seq); err != nil {
		d.drops.AddErr(err)
		return
	}
	d.ag.HeartbeatAt(at, &r.m)
}
