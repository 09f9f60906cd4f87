// # Wire format
//
// A Codec turns a Message into one authenticated UDP packet and back; a
// ReplayGuard then refuses packets seen before; Counters count the drops.
//
//	ring, err := hb.LoadKeyFile("/etc/vigil/cluster.key")
//	codec := hb.NewCodec(hb.ClusterID("prod"), ring)
//	pkt, err := codec.Encode(buf[:0], &msg)          // send pkt
//	err = codec.Decode(pkt, &in, wallNow)            // on receipt
//	if err == nil {
//		err = guard.Check(in.From, in.Link, in.Incarnation, in.Seq)
//	}
//	if drops.AddErr(err) { /* dropped, counted by reason */ }
//
// A packet is big-endian, at most MaxPacket bytes:
//
//	off size field
//	  0   3  magic "VGL"
//	  3   1  format version (WireVersion)
//	  4   8  cluster id (ClusterID of the cluster name)
//	 12   4  key id of the signing key (KeyID)
//	 16   2  sender host index, 0..MaxHosts-1
//	 18   1  link, 0..MaxLinks-1
//	 19   1  flags: bit 0 isolated, bit 1 maintenance, others zero
//	 20   8  incarnation
//	 28   8  sequence number
//	 36   8  SentAt, nanoseconds (signed)
//	 44   8  Hears, one bit per host
//	 52   2  coordinator (signed), -1 for none
//	 54   8  view version
//	 62   2  assignment count n, 0..MaxAssignments
//	 64 32n  assignments: VM u32, host u16, epoch u64,
//	         from i16 (-1: first power-on), from-epoch u64, incarnation u64
//	  .  16  HMAC-SHA-256 of every byte before it, first 16 bytes
//
// Decode checks the size, magic, version and the length the count implies,
// then the cluster and key ids, then the MAC (in constant time), and only
// then the values; a refusal is a *DropError whose DropReason says which
// check failed.
//
// # Keys and their rotation
//
// The key file (see ParseKeyFile) lists hex keys of 32 random bytes or
// more, one per line, mode 0600. The first key signs this host's
// heartbeats; every listed key is accepted, a key with accept-until=TIME
// only until that wall time. Every host of the cluster holds the same file.
// To replace key OLD by key NEW without a moment in which two hosts
// cannot hear each other:
//
//  1. Add NEW as the second line on every host, and reload: OLD still
//     signs, NEW is accepted everywhere.
//  2. Once every host has step 1, move NEW to the first line on every host,
//     and reload: NEW signs, OLD is still accepted from the hosts that have
//     not reloaded yet. Optionally give OLD an accept-until a little after
//     the time the last host will have reloaded, so that it stops being
//     accepted even where step 3 is late.
//  3. Once every host has step 2, remove OLD on every host, and reload.
//
// A host that misses a step is heard by the others as long as it signs
// with a key they accept: never move a key first (step 2) before every host
// accepts it (step 1).
package hb
