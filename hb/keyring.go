package hb

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// MinKeySize is the shortest key a Keyring takes, in bytes: the output size
// of SHA-256, as RFC 2104 advises for HMAC-SHA-256.
const MinKeySize = 32

// Key errors. The errors a Keyring constructor returns wrap one of these and
// say what to change.
var (
	// ErrNoKeys: a keyring needs at least one key, the one that signs.
	ErrNoKeys = errors.New("no heartbeat key")
	// ErrShortKey: a key is shorter than MinKeySize.
	ErrShortKey = errors.New("heartbeat key too short")
	// ErrDuplicateKey: the same key, or two keys with the same key id,
	// listed twice.
	ErrDuplicateKey = errors.New("duplicate heartbeat key")
	// ErrSignerExpires: the first key, which signs, carries an
	// accept-until; the host's own heartbeats would be refused after it.
	ErrSignerExpires = errors.New("signing key has an accept-until")
)

// KeyLine is one key of a keyring, as one line of a key file holds it.
type KeyLine struct {
	// Key is the secret: MinKeySize random bytes or more.
	Key []byte
	// AcceptUntil, if not zero, is the wall time after which packets
	// signed with Key are refused. Only keys after the first may have one.
	AcceptUntil time.Time
}

// KeyInfo describes one key of a ring without its secret, for status
// output.
type KeyInfo struct {
	ID          uint32    // key id carried in every packet it signs
	Signs       bool      // the first key: it signs this host's heartbeats
	AcceptUntil time.Time // zero: accepted for as long as it is listed
}

// Keyring is the set of cluster keys a host holds: the first key signs
// outgoing heartbeats and every key is accepted on incoming ones (until its
// AcceptUntil, if it has one). A Keyring does not change once built, so one
// may be shared by every Codec; reloading means building a new one and
// handing it to each Codec's SetKeyring.
type Keyring struct {
	keys []ringKey
}

type ringKey struct {
	id     uint32
	secret []byte
	until  time.Time
}

// KeyID is the id of key on the wire: the first 4 bytes of SHA-256(key).
// It names the key without revealing it.
func KeyID(key []byte) uint32 {
	s := sha256.Sum256(key)
	return binary.BigEndian.Uint32(s[:4])
}

// ClusterID is the id of the cluster named name on the wire: the first 8
// bytes of SHA-256(name). Two clusters sharing a network ignore each other's
// heartbeats by it, before any MAC is computed.
func ClusterID(name string) uint64 {
	s := sha256.Sum256([]byte(name))
	return binary.BigEndian.Uint64(s[:8])
}

// GenerateKey returns a new random key of MinKeySize bytes.
func GenerateKey() ([]byte, error) {
	k := make([]byte, MinKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate heartbeat key: read random bytes: %w", err)
	}
	return k, nil
}

// NewKeyring builds a ring from keys in order: the first signs. It copies
// the secrets. It refuses an empty list, a key shorter than MinKeySize, a key
// listed twice (or two keys with one id), and an AcceptUntil on the first.
func NewKeyring(keys ...KeyLine) (*Keyring, error) {
	r := &Keyring{keys: make([]ringKey, 0, len(keys))}
	for i, k := range keys {
		if _, err := r.add(k); err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
	}
	if len(r.keys) == 0 {
		return nil, fmt.Errorf("%w: a keyring needs the key that signs; create one with GenerateKey", ErrNoKeys)
	}
	return r, nil
}

// add appends k to the ring. On a duplicate it also returns the index of the
// key already there.
func (r *Keyring) add(k KeyLine) (int, error) {
	if len(k.Key) < MinKeySize {
		return -1, fmt.Errorf("%w: %d bytes; use %d random bytes or more (%d hex digits), e.g. a new key from GenerateKey",
			ErrShortKey, len(k.Key), MinKeySize, 2*MinKeySize)
	}
	if len(r.keys) == 0 && !k.AcceptUntil.IsZero() {
		return -1, fmt.Errorf("%w: the first key signs this host's heartbeats, and peers would refuse them after %s; "+
			"put accept-until on an old key listed after the signing one",
			ErrSignerExpires, k.AcceptUntil.Format(time.RFC3339))
	}
	id := KeyID(k.Key)
	for i, o := range r.keys {
		if string(o.secret) == string(k.Key) {
			return i, fmt.Errorf("%w: the same key as key %d; remove one of them", ErrDuplicateKey, i+1)
		}
		if o.id == id {
			return i, fmt.Errorf("%w: key id %08x is also key %d's; generate a new key", ErrDuplicateKey, id, i+1)
		}
	}
	r.keys = append(r.keys, ringKey{id: id, secret: append([]byte(nil), k.Key...), until: k.AcceptUntil})
	return -1, nil
}

// Len is the number of keys in the ring.
func (r *Keyring) Len() int { return len(r.keys) }

// SigningID is the id of the key that signs this host's heartbeats, 0 for
// a ring with no key (the zero Keyring).
func (r *Keyring) SigningID() uint32 {
	if len(r.keys) == 0 {
		return 0
	}
	return r.keys[0].id
}

// Info describes every key in order, the signing key first.
func (r *Keyring) Info() []KeyInfo {
	out := make([]KeyInfo, len(r.keys))
	for i, k := range r.keys {
		out[i] = KeyInfo{ID: k.id, Signs: i == 0, AcceptUntil: k.until}
	}
	return out
}

// find is the index of the key with id, or -1.
func (r *Keyring) find(id uint32) int {
	for i := range r.keys {
		if r.keys[i].id == id {
			return i
		}
	}
	return -1
}

// accepts reports whether key i is still accepted at wall time wall.
func (k *ringKey) accepts(wall time.Time) bool {
	return k.until.IsZero() || !wall.After(k.until)
}
