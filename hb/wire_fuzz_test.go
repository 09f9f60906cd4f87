package hb

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"
)

// FuzzDecode feeds Decode arbitrary packets, each twice: as it is, and
// repaired so that it passes every check before the structure (magic,
// version, cluster, key and MAC), which lets the fuzzer reach the value
// checks behind the MAC. Decode must never panic, and every packet it
// accepts must encode back to the same bytes.
func FuzzDecode(f *testing.F) {
	key := testKey("a")
	c := NewCodec(testCluster, testRing(f, key))
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range []int{0, 1, 40} {
		m := randMessage(r, n)
		pkt, err := c.Encode(nil, &m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pkt)
	}
	f.Add([]byte{})
	f.Add([]byte("VGL"))
	f.Add(bytes.Repeat([]byte{0xff}, MinPacket))
	f.Add(append([]byte("VGL\x01"), make([]byte, 200)...))

	var m Message
	var buf []byte
	f.Fuzz(func(t *testing.T, pkt []byte) {
		check := func(pkt []byte, repaired bool) {
			err := c.Decode(pkt, &m, time.Time{})
			if err != nil {
				r := Reason(err)
				if r == 0 {
					t.Fatalf("Decode returned %v, not a drop", err)
				}
				if repaired && r != Truncated && r != Malformed {
					t.Fatalf("repaired packet dropped as %v: %v", r, err)
				}
				return
			}
			buf, err = c.Encode(buf[:0], &m)
			if err != nil {
				t.Fatalf("accepted packet does not encode: %v", err)
			}
			if !bytes.Equal(buf, pkt) {
				t.Fatalf("accepted packet re-encodes differently:\n%x\n%x", pkt, buf)
			}
		}
		check(pkt, false)
		if len(pkt) >= MinPacket && len(pkt) <= MaxPacket {
			p := bytes.Clone(pkt)
			copy(p, magic)
			p[offVersion] = WireVersion
			binary.BigEndian.PutUint64(p[offCluster:], testCluster)
			binary.BigEndian.PutUint32(p[offKeyID:], KeyID(key))
			resign(p, key)
			check(p, true)
		}
	})
}
