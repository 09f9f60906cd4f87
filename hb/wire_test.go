package hb

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// testKey is a fixed 32-byte key derived from label.
func testKey(label string) []byte {
	s := sha256.Sum256([]byte("vigil test key " + label))
	return s[:]
}

// testRing builds a ring of the keys, the first signing.
func testRing(t testing.TB, keys ...[]byte) *Keyring {
	t.Helper()
	lines := make([]KeyLine, len(keys))
	for i, k := range keys {
		lines[i] = KeyLine{Key: k}
	}
	r, err := NewKeyring(lines...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var testCluster = ClusterID("prod")

// randMessage is a message with n assignments and random values in every
// field, within what the wire format carries.
func randMessage(r *rand.Rand, n int) Message {
	m := Message{
		From:        r.IntN(MaxHosts),
		Incarnation: r.Uint64(),
		Seq:         r.Uint64(),
		Link:        r.IntN(MaxLinks),
		SentAt:      time.Duration(r.Int64() - math.MaxInt64/2),
		Hears:       HostSet(r.Uint64()),
		Coordinator: r.IntN(MaxHosts+1) - 1,
		Isolated:    r.IntN(2) == 0,
		Maintenance: r.IntN(2) == 0,
		Version:     r.Uint64(),
	}
	for range n {
		m.Assignments = append(m.Assignments, Assignment{
			VM:        int(r.Uint32()),
			Host:      r.IntN(MaxHosts),
			Epoch:     r.Uint64(),
			From:      r.IntN(MaxHosts+1) - 1,
			FromEpoch: r.Uint64(),
			Inc:       r.Uint64(),
		})
	}
	return m
}

// messageDiff lists the fields in which got differs from want.
func messageDiff(got, want *Message) []string {
	var d []string
	cmp := func(name string, g, w any) {
		if g != w {
			d = append(d, fmt.Sprintf("%s: got %v, want %v", name, g, w))
		}
	}
	cmp("From", got.From, want.From)
	cmp("Incarnation", got.Incarnation, want.Incarnation)
	cmp("Seq", got.Seq, want.Seq)
	cmp("Link", got.Link, want.Link)
	cmp("SentAt", got.SentAt, want.SentAt)
	cmp("Hears", got.Hears, want.Hears)
	cmp("Coordinator", got.Coordinator, want.Coordinator)
	cmp("Isolated", got.Isolated, want.Isolated)
	cmp("Maintenance", got.Maintenance, want.Maintenance)
	cmp("Version", got.Version, want.Version)
	cmp("len(Assignments)", len(got.Assignments), len(want.Assignments))
	for i := range min(len(got.Assignments), len(want.Assignments)) {
		cmp(fmt.Sprintf("Assignments[%d]", i), got.Assignments[i], want.Assignments[i])
	}
	return d
}

// resign rewrites the tag of pkt for key, as a sender holding key would.
func resign(pkt, key []byte) {
	h := hmac.New(sha256.New, key)
	h.Write(pkt[:len(pkt)-TagSize])
	copy(pkt[len(pkt)-TagSize:], h.Sum(nil))
}

// goldenPacket was computed outside Go from the layout in the package
// documentation, for goldenMessage, cluster "prod" and key 00 01 .. 1f.
const goldenPacket = "56474c016754af9632a2745e630dcd29" +
	"00030101010203040506070800000000" +
	"0000002afffffffffffffffb00000000" +
	"0000000bffff00000000000000070001" +
	"0000000900020000000000000005ffff" +
	"00000000000000000000000000001122" +
	"a5c9a6750e693ee33b9038d068838c7e"

var goldenMessage = Message{
	From: 3, Link: 1, Isolated: true, Incarnation: 0x0102030405060708, Seq: 42,
	SentAt: -5, Hears: 0b1011, Coordinator: -1, Version: 7,
	Assignments: []Assignment{{VM: 9, Host: 2, Epoch: 5, From: -1, FromEpoch: 0, Inc: 0x1122}},
}

func goldenKey() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

func TestWireGolden(t *testing.T) {
	want, _ := hex.DecodeString(goldenPacket)
	c := NewCodec(ClusterID("prod"), testRing(t, goldenKey()))
	got, err := c.Encode([]byte("prefix"), &goldenMessage)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], want) {
		t.Fatalf("Encode appended\n%x\nwant\n%x", got[6:], want)
	}
	var m Message
	if err := c.Decode(want, &m, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if d := messageDiff(&m, &goldenMessage); d != nil {
		t.Fatalf("Decode(golden): %v", d)
	}
}

func TestWireRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := NewCodec(testCluster, testRing(t, testKey("a")))
	edge := Message{From: MaxHosts - 1, Link: MaxLinks - 1, Coordinator: MaxHosts - 1,
		SentAt: math.MinInt64, Incarnation: math.MaxUint64, Seq: math.MaxUint64, Hears: math.MaxUint64,
		Version: math.MaxUint64, Isolated: true, Maintenance: true,
		Assignments: []Assignment{{VM: math.MaxUint32, Host: MaxHosts - 1, Epoch: math.MaxUint64,
			From: MaxHosts - 1, FromEpoch: math.MaxUint64, Inc: math.MaxUint64}}}
	tests := []struct {
		name string
		m    Message
	}{
		{"zero", Message{}},
		{"edge values", edge},
		{"max assignments", randMessage(r, MaxAssignments)},
	}
	for i := range 500 {
		tests = append(tests, struct {
			name string
			m    Message
		}{fmt.Sprintf("random %d", i), randMessage(r, r.IntN(41))})
	}
	var buf []byte
	var got Message
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt, err := c.Encode(buf[:0], &tt.m)
			if err != nil {
				t.Fatal(err)
			}
			buf = pkt
			if want := MinPacket + assignmentSize*len(tt.m.Assignments); len(pkt) != want || len(pkt) > MaxPacket {
				t.Fatalf("packet of %d bytes, want %d (at most %d)", len(pkt), want, MaxPacket)
			}
			if err := c.Decode(pkt, &got, time.Time{}); err != nil {
				t.Fatal(err)
			}
			if d := messageDiff(&got, &tt.m); d != nil {
				t.Fatal(d)
			}
		})
	}
}

// TestWireBitFlips flips every bit of a valid packet in turn: each flip is
// refused by the check that guards the flipped field.
func TestWireBitFlips(t *testing.T) {
	key := testKey("a")
	c := NewCodec(testCluster, testRing(t, key))
	m := randMessage(rand.New(rand.NewPCG(3, 4)), 3)
	pkt, err := c.Encode(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	for bit := range len(pkt) * 8 {
		i := bit / 8
		p := bytes.Clone(pkt)
		p[i] ^= 1 << (bit % 8)
		var want DropReason
		switch {
		case i < offVersion:
			want = BadMagic
		case i == offVersion:
			want = WrongVersion
		case i < offKeyID:
			want = WrongCluster
		case i < offFrom:
			want = UnknownKey
		case i == offCount || i == offCount+1:
			// The count no longer matches the length: more assignments
			// than the packet holds, or fewer and trailing bytes.
			want = Truncated
			if binary.BigEndian.Uint16(p[offCount:]) < binary.BigEndian.Uint16(pkt[offCount:]) {
				want = Malformed
			}
		default:
			want = BadMAC
		}
		var got Message
		err := c.Decode(p, &got, time.Time{})
		if r := Reason(err); r != want {
			t.Errorf("bit %d (byte %d) flipped: %v, want %v", bit, i, err, want)
		}
	}
}

func TestWireTruncation(t *testing.T) {
	c := NewCodec(testCluster, testRing(t, testKey("a")))
	m := randMessage(rand.New(rand.NewPCG(5, 6)), 4)
	pkt, err := c.Encode(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(pkt) {
		var got Message
		if err := c.Decode(pkt[:n], &got, time.Time{}); Reason(err) != Truncated {
			t.Errorf("first %d of %d bytes: %v, want truncated", n, len(pkt), err)
		}
	}
	long := append(bytes.Clone(pkt), 0)
	if err := c.Decode(long, &m, time.Time{}); Reason(err) != Malformed {
		t.Errorf("one trailing byte: %v, want malformed", err)
	}
	huge := make([]byte, MaxPacket+1)
	copy(huge, pkt)
	if err := c.Decode(huge, &m, time.Time{}); Reason(err) != Malformed {
		t.Errorf("%d bytes: %v, want malformed", len(huge), err)
	}
}

// TestWireRefusals covers each check Decode makes, on packets that pass
// every earlier check (re-signed where the change is behind the MAC).
func TestWireRefusals(t *testing.T) {
	key, other := testKey("a"), testKey("b")
	base := randMessage(rand.New(rand.NewPCG(7, 8)), 2)
	tests := []struct {
		name  string
		ring  *Keyring
		edit  func(p []byte)
		want  DropReason
		match string // in the error text
	}{
		{"wrong cluster", testRing(t, key), func(p []byte) { p[offCluster] ^= 0xff }, WrongCluster, "cluster id"},
		{"wrong version", testRing(t, key), func(p []byte) { p[offVersion] = 2; resign(p, key) }, WrongVersion, "version 2"},
		{"bad magic", testRing(t, key), func(p []byte) { copy(p, "XYZ") }, BadMagic, "not a vigil"},
		{"unknown key", testRing(t, other), nil, UnknownKey, "not in the key file"},
		{"no keyring", nil, nil, UnknownKey, "not in the key file"},
		{"forged with another key", testRing(t, key), func(p []byte) { resign(p, other) }, BadMAC, "tag"},
		{"unknown flag", testRing(t, key), func(p []byte) { p[offFlags] |= 4; resign(p, key) }, Malformed, "flags"},
		{"sender beyond MaxHosts", testRing(t, key), func(p []byte) {
			binary.BigEndian.PutUint16(p[offFrom:], MaxHosts)
			resign(p, key)
		}, Malformed, "sender 64"},
		{"link beyond MaxLinks", testRing(t, key), func(p []byte) { p[offLink] = MaxLinks; resign(p, key) }, Malformed, "link 8"},
		{"coordinator -2", testRing(t, key), func(p []byte) {
			binary.BigEndian.PutUint16(p[offCoordinator:], 0xfffe)
			resign(p, key)
		}, Malformed, "coordinator -2"},
		{"coordinator beyond MaxHosts", testRing(t, key), func(p []byte) {
			binary.BigEndian.PutUint16(p[offCoordinator:], MaxHosts)
			resign(p, key)
		}, Malformed, "coordinator 64"},
		{"assignment host beyond MaxHosts", testRing(t, key), func(p []byte) {
			binary.BigEndian.PutUint16(p[headerSize+assignmentSize+4:], 300)
			resign(p, key)
		}, Malformed, "assignment 1: host 300"},
		{"assignment from -2", testRing(t, key), func(p []byte) {
			binary.BigEndian.PutUint16(p[headerSize+14:], 0xfffe)
			resign(p, key)
		}, Malformed, "assignment 0: from -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt, err := NewCodec(testCluster, testRing(t, key)).Encode(nil, &base)
			if err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				tt.edit(pkt)
			}
			got := Message{From: 9, Assignments: make([]Assignment, 1, 4)}
			before := got
			err = NewCodec(testCluster, tt.ring).Decode(pkt, &got, time.Time{})
			if Reason(err) != tt.want || !bytes.Contains([]byte(fmt.Sprint(err)), []byte(tt.match)) {
				t.Fatalf("Decode: %v, want %v mentioning %q", err, tt.want, tt.match)
			}
			if d := messageDiff(&got, &before); d != nil {
				t.Errorf("refused packet changed the message: %v", d)
			}
		})
	}
}

func TestWireReusesAssignments(t *testing.T) {
	c := NewCodec(testCluster, testRing(t, testKey("a")))
	r := rand.New(rand.NewPCG(9, 10))
	big, small := randMessage(r, 8), randMessage(r, 3)
	var got Message
	for _, m := range []*Message{&big, &small, &big} {
		pkt, err := c.Encode(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		var first *Assignment
		if cap(got.Assignments) > 0 {
			first = &got.Assignments[:1][0]
		}
		if err := c.Decode(pkt, &got, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if first != nil && &got.Assignments[0] != first {
			t.Errorf("decoding %d assignments into capacity %d allocated new storage", len(m.Assignments), cap(got.Assignments))
		}
		if d := messageDiff(&got, m); d != nil {
			t.Fatal(d)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	ok := Message{Coordinator: -1}
	many := ok
	many.Assignments = make([]Assignment, MaxAssignments+1)
	with := func(a Assignment) Message { m := ok; m.Assignments = []Assignment{{}, a}; return m }
	tests := []struct {
		name  string
		ring  bool
		m     Message
		match string
	}{
		{"no keyring", false, ok, "no keyring"},
		{"negative sender", true, Message{From: -1}, "sender -1"},
		{"sender beyond MaxHosts", true, Message{From: MaxHosts}, "sender 64"},
		{"link beyond MaxLinks", true, Message{Link: MaxLinks}, "link 8"},
		{"negative link", true, Message{Link: -1}, "link -1"},
		{"coordinator -2", true, Message{Coordinator: -2}, "coordinator -2"},
		{"coordinator beyond MaxHosts", true, Message{Coordinator: MaxHosts}, "coordinator 64"},
		{"too many assignments", true, many, "at most 2028"},
		{"negative VM", true, with(Assignment{VM: -1}), "assignment 1: VM -1"},
		{"VM beyond 32 bits", true, with(Assignment{VM: 1 << 32}), "VM 4294967296"},
		{"assignment host beyond MaxHosts", true, with(Assignment{Host: MaxHosts}), "host 64"},
		{"assignment from -2", true, with(Assignment{From: -2}), "from -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ring *Keyring
			if tt.ring {
				ring = testRing(t, testKey("a"))
			}
			dst := []byte("keep")
			got, err := NewCodec(testCluster, ring).Encode(dst, &tt.m)
			if !errors.Is(err, ErrUnencodable) || !bytes.Contains([]byte(err.Error()), []byte(tt.match)) {
				t.Fatalf("Encode: %v, want ErrUnencodable mentioning %q", err, tt.match)
			}
			if string(got) != "keep" {
				t.Errorf("Encode changed dst to %q", got)
			}
		})
	}
}

func TestWireAllocs(t *testing.T) {
	for _, n := range []int{0, 32} {
		c := NewCodec(testCluster, testRing(t, testKey("a"), testKey("b")))
		m := randMessage(rand.New(rand.NewPCG(13, 14)), n)
		var got Message
		buf := make([]byte, 0, MaxPacket)
		wall := time.Now()
		allocs := testing.AllocsPerRun(100, func() {
			pkt, err := c.Encode(buf[:0], &m)
			if err == nil {
				err = c.Decode(pkt, &got, wall)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%d assignments: %v allocations per round trip, want 0", n, allocs)
		}
	}
}
