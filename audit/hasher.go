package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"net/url"
	"sync"
)

// minHasherKey is the shortest key NewHasher accepts: HMAC-SHA256 gains
// nothing from more, and a shorter key would weaken it.
const minHasherKey = 32

// hashPrefix names the algorithm in every keyed hash, so that a trail stays
// readable if the algorithm ever changes.
const hashPrefix = "hmac-sha256:"

// Hasher keyed-hashes personal data before it reaches the trail or the logs,
// as HashiCorp Vault does for its audit devices. The same value and key
// always give the same hash, so an auditor who holds the key can search the
// trail for a value without the trail ever containing it. A Hasher is safe
// for concurrent use.
type Hasher struct {
	pool sync.Pool // of *hmacState
}

type hmacState struct {
	mac   hash.Hash
	chunk [256]byte
	sum   [sha256.Size]byte
}

// NewHasher returns a Hasher keyed with key, which must be at least 32
// bytes. The key is copied.
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < minHasherKey {
		return nil, fmt.Errorf("audit: hasher key is %d bytes, need at least %d", len(key), minHasherKey)
	}
	k := append([]byte(nil), key...)
	h := &Hasher{}
	h.pool.New = func() any { return &hmacState{mac: hmac.New(sha256.New, k)} }
	return h, nil
}

// Sum returns "hmac-sha256:" followed by the lowercase hex HMAC-SHA256 of
// value under the Hasher's key.
func (h *Hasher) Sum(value string) string {
	s := h.pool.Get().(*hmacState)
	s.mac.Reset()
	// Copying through a fixed chunk avoids allocating a []byte for value.
	for len(value) > 0 {
		n := copy(s.chunk[:], value)
		s.mac.Write(s.chunk[:n])
		value = value[n:]
	}
	sum := s.mac.Sum(s.sum[:0])
	var out [len(hashPrefix) + 2*sha256.Size]byte
	copy(out[:], hashPrefix)
	hex.Encode(out[len(hashPrefix):], sum)
	h.pool.Put(s)
	return string(out[:])
}

// Unit returns the short keyed hash of a privacy-unit value (a person's
// ID number) as a record release's audit record holds it ([Released]):
// the first 128 bits of HMAC-SHA256 over "unit" and the value, in
// unpadded base64url (22 characters). Short, because a release holds one
// per person; 128 bits, because collisions among 10^12 people are still
// far less likely than a disk error. A value hashes alike in every
// dataset, so one lookup finds a person's releases across all of them.
func (h *Hasher) Unit(value string) string { return h.short("unit", "", value) }

// Record returns the short keyed hash of a record's id within dataset
// ("source/dataset"), as [Hasher.Unit] does for a privacy unit.
func (h *Hasher) Record(dataset, id string) string { return h.short("record", dataset, id) }

func (h *Hasher) short(domain, scope, value string) string {
	s := h.pool.Get().(*hmacState)
	s.mac.Reset()
	// The message is domain, scope and value, each after its length, so
	// that no two of them run into each other; it is assembled in the
	// state's chunk (one Write, no allocation) as far as it fits.
	buf := s.chunk[:0]
	buf = append(buf, byte(len(domain)))
	buf = append(buf, domain...)
	for _, part := range [2]string{scope, value} {
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(part)))
		for len(part) > 0 {
			if len(buf) == cap(buf) {
				s.mac.Write(buf)
				buf = s.chunk[:0]
			}
			n := copy(buf[len(buf):cap(buf)], part)
			buf, part = buf[:len(buf)+n], part[n:]
		}
		if cap(buf)-len(buf) < 8 {
			s.mac.Write(buf)
			buf = s.chunk[:0]
		}
	}
	s.mac.Write(buf)
	sum := s.mac.Sum(s.sum[:0])
	var out [22]byte
	base64.RawURLEncoding.Encode(out[:], sum[:16])
	h.pool.Put(s)
	return string(out[:])
}

// Values returns q with every value replaced by its Sum and the keys kept,
// or nil when q is empty.
func (h *Hasher) Values(q url.Values) map[string][]string {
	if len(q) == 0 {
		return nil
	}
	out := make(map[string][]string, len(q))
	for k, vs := range q {
		hv := make([]string, len(vs))
		for i, v := range vs {
			hv[i] = h.Sum(v)
		}
		out[k] = hv
	}
	return out
}
