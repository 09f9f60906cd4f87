package hb

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// TestKeyRotation follows the rotation in the package documentation: a
// packet signed with the old key is accepted while the old key is listed
// (and before its accept-until), refused after.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey := testKey("old"), testKey("new")
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	withExpiry, err := NewKeyring(KeyLine{Key: newKey}, KeyLine{Key: oldKey, AcceptUntil: until})
	if err != nil {
		t.Fatal(err)
	}
	m := randMessage(rand.New(rand.NewPCG(11, 12)), 1)
	oldPkt, err := NewCodec(testCluster, testRing(t, oldKey)).Encode(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ring *Keyring
		wall time.Time
		want DropReason // 0: accepted
	}{
		{"step 0: {old}", testRing(t, oldKey), until, 0},
		{"step 1: {old, new}", testRing(t, oldKey, newKey), until, 0},
		{"step 2: {new, old}", testRing(t, newKey, oldKey), until.Add(time.Hour), 0},
		{"step 2 with expiry, before", withExpiry, until.Add(-time.Hour), 0},
		{"step 2 with expiry, at accept-until", withExpiry, until, 0},
		{"step 2 with expiry, after", withExpiry, until.Add(time.Nanosecond), UnknownKey},
		{"step 3: {new}", testRing(t, newKey), until, UnknownKey},
	}
	c := NewCodec(testCluster, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.SetKeyring(tt.ring) // one codec, reloaded at every step
			var got Message
			if err := c.Decode(oldPkt, &got, tt.wall); Reason(err) != tt.want {
				t.Fatalf("Decode: %v, want reason %v", err, tt.want)
			}
			// Whatever it accepts, the codec signs with the ring's first key.
			pkt, err := c.Encode(nil, &m)
			if err != nil {
				t.Fatal(err)
			}
			if id := binary.BigEndian.Uint32(pkt[offKeyID:]); id != tt.ring.SigningID() {
				t.Errorf("signed with key id %08x, want %08x", id, tt.ring.SigningID())
			}
		})
	}
}

// TestCodecWithoutKeys: a codec whose ring is nil or empty signs nothing
// and accepts nothing.
func TestCodecWithoutKeys(t *testing.T) {
	m := randMessage(rand.New(rand.NewPCG(21, 22)), 1)
	pkt, err := NewCodec(testCluster, testRing(t, testKey("a"))).Encode(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ring *Keyring
	}{{"nil", nil}, {"zero Keyring", &Keyring{}}} {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCodec(testCluster, tt.ring)
			if _, err := c.Encode(nil, &m); !errors.Is(err, ErrUnencodable) {
				t.Errorf("Encode: %v, want ErrUnencodable", err)
			}
			var got Message
			if err := c.Decode(pkt, &got, time.Time{}); Reason(err) != UnknownKey {
				t.Errorf("Decode: %v, want unknown-key", err)
			}
			if tt.ring != nil && tt.ring.SigningID() != 0 {
				t.Errorf("SigningID of an empty ring = %08x, want 0", tt.ring.SigningID())
			}
		})
	}
}
