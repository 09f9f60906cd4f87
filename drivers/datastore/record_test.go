package datastore

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

func TestRecordRoundTrip(t *testing.T) {
	id := hb.ClusterID("lab")
	for _, r := range []*cluster.Record{
		{Host: 0},
		sample(1),
		{Host: 63, Incarnation: 1<<63 + 5, Counter: 1 << 40, Isolated: true, Maintenance: true, DatastoreLost: true, Hears: ^hb.HostSet(0),
			Assignments: []hb.Assignment{{VM: 9, Host: 2, Epoch: 4, From: -1, Inc: 3}},
			Fenced:      []cluster.Proof{{Kind: cluster.ProofBMCOff, Host: 2, At: -5}}},
	} {
		b, err := AppendRecord(nil, id, r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRecord(b, id, r.Host)
		if err != nil {
			t.Fatalf("host %d: %v", r.Host, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip of host %d:\n got %+v\nwant %+v", r.Host, got, r)
		}
		// A slot runs on past the record with zeros: still the same record.
		slot := append(b, make([]byte, SlotSize-len(b))...)
		if got, err := DecodeRecord(slot, id, r.Host); err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("host %d in a zero-padded slot: %+v, %v", r.Host, got, err)
		}
	}
}

func TestRecordChecks(t *testing.T) {
	id := hb.ClusterID("lab")
	good, err := AppendRecord(nil, id, sample(1))
	if err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		data []byte
		host int
		want string
	}{
		{"every bit of the body is covered", mut(func(b []byte) []byte { b[headerSize+2] ^= 1; return b }), 1, "checksum mismatch"},
		{"the incarnation is covered", mut(func(b []byte) []byte { b[20] ^= 1; return b }), 1, "checksum mismatch"},
		{"cut", good[:len(good)-1], 1, "torn"},
		{"header only, cut", good[:10], 1, "truncated"},
		{"not a record", []byte(strings.Repeat("x", 64)), 1, "no record magic"},
		{"newer format", mut(func(b []byte) []byte { b[4] = 2; return b }), 1, "format 2"},
		{"another cluster", func() []byte { b, _ := AppendRecord(nil, hb.ClusterID("prod"), sample(1)); return b }(), 1, "another cluster"},
		{"another slot", good, 2, "holds host 1's record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeRecord(tc.data, id, tc.host)
			if err == nil || r != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeRecord = %+v, %v; want an error saying %q", r, err, tc.want)
			}
		})
	}
	if r, err := DecodeRecord(make([]byte, SlotSize), id, 0); r != nil || err != nil {
		t.Errorf("an all-zero slot decodes to %+v, %v; want nil, nil (empty)", r, err)
	}
}

func TestRecordTooLarge(t *testing.T) {
	r := &cluster.Record{Host: 3}
	for vm := range 2000 {
		r.Claims = append(r.Claims, cluster.Claim{VM: vm, Epoch: 1 << 30, State: cluster.Running})
	}
	b, err := AppendRecord([]byte("keep"), hb.ClusterID("lab"), r)
	if err == nil || !strings.Contains(err.Error(), "2000 claims") || string(b) != "keep" {
		t.Fatalf("AppendRecord of 2,000 claims = %d bytes, %v; want the buffer untouched and an error naming the claims", len(b), err)
	}
}

// FuzzDecodeRecord feeds the decoder arbitrary slots: it must never panic,
// and whatever it accepts must encode back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	id := hb.ClusterID("lab")
	for _, r := range []*cluster.Record{{Host: 1}, sample(1)} {
		b, _ := AppendRecord(nil, id, r)
		f.Add(b)
	}
	f.Add(make([]byte, SlotSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRecord(data, id, 1)
		if err != nil || r == nil {
			return
		}
		b, err := AppendRecord(nil, id, r)
		if err != nil {
			t.Fatalf("an accepted record does not encode: %v", err)
		}
		if string(b) != string(data[:len(b)]) {
			t.Fatalf("accepted record re-encodes differently:\n in % x\nout % x", data[:len(b)], b)
		}
	})
}

func BenchmarkRecordRoundTrip(b *testing.B) {
	id := hb.ClusterID("lab")
	r := sample(1)
	buf := make([]byte, 0, SlotSize)
	for b.Loop() {
		enc, _ := AppendRecord(buf[:0], id, r)
		if _, err := DecodeRecord(enc, id, 1); err != nil {
			b.Fatal(err)
		}
	}
}
