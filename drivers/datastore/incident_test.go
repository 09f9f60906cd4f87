package datastore

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

// sampleIncident is incident seq of coordinator h (incarnation 7), every
// field set.
func sampleIncident(h int, seq uint64) *cluster.Incident {
	return &cluster.Incident{
		ID: cluster.IncidentID{Host: h, Incarnation: 7, Seq: seq}, Version: 3, Host: 2, Incarnation: 5, Kind: cluster.IncidentFailed,
		Closed: true, Outcome: "2 of 2 VMs running again", Wall: 1_796_000_000_123_456_789,
		Detected: 20 * time.Second, Suspect: []string{"network: link0 down", "storage: ds0 advancing (counter 11)"},
		Decided: 22 * time.Second, Verdict: []string{"network: link0 down", "storage: ds0 silent 3099ms (counter 11)"},
		Fence: cluster.IncidentFence{Started: 22 * time.Second, Plan: fence.BMC, Requests: 3, Stuck: true, Attempts: []fence.Attempt{
			{Op: fence.PowerOff, At: 22 * time.Second, Done: 22*time.Second + 50*time.Millisecond, Result: "accepted"},
			{Op: fence.Status, At: 22*time.Second + 50*time.Millisecond, Result: ""},
		}},
		Proof: cluster.Proof{Kind: cluster.ProofLease, Host: 2, Incarnation: 5, Counter: 11, At: 28 * time.Second, Detail: "lease counter 11 still"},
		Placements: []cluster.Placement{
			{VM: 1, To: 0, Epoch: 2, State: cluster.PlacementRunning, Assigned: 28 * time.Second, Running: 29 * time.Second},
			{VM: 5, To: -1, State: cluster.PlacementWaiting, Reason: "needs 4 vCPU"},
		},
	}
}

func TestIncidentRoundTrip(t *testing.T) {
	id := hb.ClusterID("lab")
	for _, x := range []*cluster.Incident{
		{ID: cluster.IncidentID{Host: 0, Seq: 1}, Kind: cluster.IncidentReleased},
		sampleIncident(3, 9),
		{ID: cluster.IncidentID{Host: 63, Incarnation: 1<<63 + 1, Seq: 1 << 40}, Kind: cluster.IncidentIsolated, Wall: -5, Detected: -time.Second,
			Proof: cluster.Proof{Kind: cluster.ProofReleased, Host: 1, At: -3}},
	} {
		b, err := AppendIncident(nil, id, x)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeIncident(b, id, x.ID.Host)
		if err != nil {
			t.Fatalf("%s: %v", IncidentName(x.ID), err)
		}
		if !reflect.DeepEqual(got, x) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", IncidentName(x.ID), got, x)
		}
		slot := append(b, make([]byte, SlotSize-len(b))...)
		if got, err := DecodeIncident(slot, id, x.ID.Host); err != nil || !reflect.DeepEqual(got, x) {
			t.Errorf("%s in a zero-padded slot: %+v, %v", IncidentName(x.ID), got, err)
		}
	}
}

// resum puts the right checksum back after a change to the body, so that
// the body's own checks are what fails.
func resum(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[28:], recordSum(b))
	return b
}

func TestIncidentChecks(t *testing.T) {
	id := hb.ClusterID("lab")
	good, err := AppendIncident(nil, id, sampleIncident(1, 4))
	if err != nil {
		t.Fatal(err)
	}
	slot, _ := AppendRecord(nil, id, &cluster.Record{Host: 1})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	kindAt := headerSize + 1 + 1 + 1 + 9 + 1 + 1 // seq, version, flags, wall (9 bytes), host, incarnation
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"torn: the body's end never landed", mut(func(b []byte) []byte { clear(b[len(b)-20:]); return b }), "checksum mismatch"},
		{"a flipped bit", mut(func(b []byte) []byte { b[headerSize+5] ^= 4; return b }), "checksum mismatch"},
		{"the writer's incarnation is covered", mut(func(b []byte) []byte { b[20] ^= 1; return b }), "checksum mismatch"},
		{"cut", good[:len(good)-1], "torn"},
		{"header only, cut", good[:10], "truncated"},
		{"a slot record", slot, "no incident record magic"},
		{"newer format", mut(func(b []byte) []byte { b[4] = 2; return b }), "incident record format 2"},
		{"another cluster", func() []byte { b, _ := AppendIncident(nil, hb.ClusterID("prod"), sampleIncident(1, 4)); return b }(), "another cluster"},
		{"another writer", func() []byte { b, _ := AppendIncident(nil, id, sampleIncident(2, 4)); return b }(), "holds host 2's incident, not host 1's"},
		{"unknown kind", mut(func(b []byte) []byte { b[kindAt] = 9; return resum(b) }), "kind 9 unknown"},
		{"unknown flags", mut(func(b []byte) []byte { b[headerSize+2] |= 0x80; return resum(b) }), "unknown flags"},
		{"a varint longer than it needs", mut(func(b []byte) []byte {
			b = append(b[:headerSize+1], append([]byte{0x83, 0x00}, b[headerSize+2:]...)...) // the version, 3, in two bytes
			binary.LittleEndian.PutUint16(b[6:], uint16(len(b)-headerSize))
			return resum(b)
		}), "varint longer than it needs to be"},
		{"trailing bytes", mut(func(b []byte) []byte {
			b = append(b, 0)
			binary.LittleEndian.PutUint16(b[6:], uint16(len(b)-headerSize))
			return resum(b)
		}), "after the last field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := DecodeIncident(tc.data, id, 1)
			if err == nil || x != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeIncident = %+v, %v; want an error saying %q", x, err, tc.want)
			}
		})
	}
	if x, err := DecodeIncident(make([]byte, SlotSize), id, 0); x != nil || err != nil {
		t.Errorf("an all-zero slot decodes to %+v, %v; want nil, nil (empty)", x, err)
	}
}

func TestIncidentFit(t *testing.T) {
	id := hb.ClusterID("lab")
	x := sampleIncident(1, 1)
	x.Suspect = []string{strings.Repeat("network: link0 down ", 40)}
	for vm := range 400 {
		x.Placements = append(x.Placements, cluster.Placement{VM: vm, To: 2, Epoch: 1 << 20, State: cluster.PlacementRunning, Assigned: time.Hour, Running: time.Hour})
	}
	if b, err := AppendIncident([]byte("keep"), id, x); err == nil || string(b) != "keep" || !strings.Contains(err.Error(), "402 placements") {
		t.Fatalf("AppendIncident of 402 placements = %d bytes, %v; want the buffer untouched and an error naming the placements", len(b), err)
	}
	b, err := appendIncidentFit(nil, id, x)
	if err != nil || len(b) > MaxIncident {
		t.Fatalf("fit: %d bytes, %v", len(b), err)
	}
	got, err := DecodeIncident(b, id, 1)
	if err != nil {
		t.Fatal(err)
	}
	n := len(got.Placements)
	if n < 100 || n >= len(x.Placements) || !strings.Contains(got.Outcome, "of 402 placements stored") || len(got.Suspect[0]) > maxFitString+3 ||
		!reflect.DeepEqual(got.Placements, x.Placements[:n]) {
		t.Errorf("cut to fit: %d placements, outcome %q, evidence of %d bytes", n, got.Outcome, len(got.Suspect[0]))
	}
	if x.Outcome != "2 of 2 VMs running again" || len(x.Suspect[0]) < 800 {
		t.Error("fitting changed the incident it was given")
	}
}

// FuzzDecodeIncident feeds the decoder arbitrary records, with the right
// checksum put back so that the body's checks are reached: it must never
// panic, and whatever it accepts must encode back to the same bytes.
func FuzzDecodeIncident(f *testing.F) {
	id := hb.ClusterID("lab")
	for _, x := range []*cluster.Incident{{ID: cluster.IncidentID{Host: 1}, Kind: cluster.IncidentFailed}, sampleIncident(1, 2)} {
		b, _ := AppendIncident(nil, id, x)
		f.Add(b)
	}
	f.Add(make([]byte, SlotSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= headerSize {
			n := int(binary.LittleEndian.Uint16(data[6:]))
			if headerSize+n <= len(data) {
				resum(data[:headerSize+n])
			}
		}
		x, err := DecodeIncident(data, id, 1)
		if err != nil || x == nil {
			return
		}
		b, err := AppendIncident(nil, id, x)
		if err != nil {
			t.Fatalf("an accepted incident does not encode: %v", err)
		}
		if string(b) != string(data[:len(b)]) {
			t.Fatalf("accepted incident re-encodes differently:\n in % x\nout % x", data[:len(b)], b)
		}
	})
}
