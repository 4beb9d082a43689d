package usage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The embedded index finds a person's releases through a posting list:
// the releases that held their records, each as a posting of 18 bytes,
// sorted. A list is kept in chunks of at most chunkPostings postings, each
// under the key "<list prefix><its first posting>", so that a lookup
// seeks to the chunk holding its since and reads on until its until, and
// an addition rewrites one chunk, not the person's whole history.
//
// One key per posting (the layout of a plain inverted index) was larger by
// the 16-byte element header and the repeated prefix bbolt stores with
// every key, and a bulk addition dirtied a page per posting.

const (
	// postingSize is a posting's length: the release's time (8 bytes,
	// see timeKey), its replica's number (2) and its seq (8), all big
	// endian, so that postings sort by time, then replica, then seq.
	postingSize = 8 + 2 + 8
	// chunkPostings bounds a chunk: small enough that adding a release
	// rewrites about a kilobyte per person, large enough that a
	// person's ~200 releases are a handful of keys.
	chunkPostings = 64
)

// posting is one release in a posting list.
type posting [postingSize]byte

// newPosting is the posting of the release of replica number rid and seq
// at time t.
func newPosting(t time.Time, rid uint16, seq uint64) posting {
	var p posting
	binary.BigEndian.PutUint64(p[:8], timeKey(t))
	binary.BigEndian.PutUint16(p[8:10], rid)
	binary.BigEndian.PutUint64(p[10:], seq)
	return p
}

// time is the posting's time key.
func (p *posting) time() uint64 { return binary.BigEndian.Uint64(p[:8]) }

// release is the key of the posting's release in the releases bucket.
func (p *posting) release() []byte { return p[8:] }

var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// timeKey orders times as unsigned big-endian bytes do: Unix nanoseconds
// with the sign bit flipped. Times outside the years 1678–2262 clamp to
// the ends, so that comparisons with them can tie; a lookup therefore
// filters the releases it reads by their exact time.
func timeKey(t time.Time) uint64 {
	switch {
	case t.Before(minNano):
		return 0
	case !t.Before(maxNano):
		return math.MaxUint64
	}
	return uint64(t.UnixNano()) ^ 1<<63
}

// addPostings adds ps, sorted and without duplicates, to the posting list
// under prefix in b. A posting the list holds already is not added again.
func addPostings(b *bolt.Bucket, prefix []byte, ps []posting) error {
	for len(ps) > 0 {
		target, next, err := chunkFor(b, prefix, &ps[0])
		if err != nil {
			return err
		}
		n := len(ps)
		if next != nil {
			// The postings before the next chunk's first go to target.
			n = 0
			for n < len(ps) && bytes.Compare(ps[n][:], next) < 0 {
				n++
			}
		}
		var old []byte
		if target != nil {
			if old = b.Get(target); len(old) == 0 || len(old)%postingSize != 0 {
				return fmt.Errorf("corrupt posting chunk %q (%d bytes)", target, len(old))
			}
		}
		merged := mergePostings(old, ps[:n])
		if target != nil && !bytes.Equal(merged[:postingSize], target[len(prefix):]) {
			// A posting older than the chunk's first: the chunk is
			// keyed anew below.
			if err := b.Delete(target); err != nil {
				return fmt.Errorf("delete posting chunk %q: %w", target, err)
			}
		}
		for len(merged) > 0 {
			chunk := merged[:min(len(merged), chunkPostings*postingSize)]
			merged = merged[len(chunk):]
			key := append(append(make([]byte, 0, len(prefix)+postingSize), prefix...), chunk[:postingSize]...)
			if err := b.Put(key, chunk); err != nil {
				return fmt.Errorf("write posting chunk %q: %w", key, err)
			}
		}
		ps = ps[n:]
	}
	return nil
}

// chunkFor finds the chunk of the list under prefix that p belongs in:
// the last whose first posting is not after p, or the list's first chunk
// when p is older than all, or nil for an empty list. next is the first
// posting of the chunk after it, nil when it is the last. Both are
// copies, valid after the bucket changes.
func chunkFor(b *bolt.Bucket, prefix []byte, p *posting) (target, next []byte, err error) {
	probe := append(append(make([]byte, 0, len(prefix)+postingSize), prefix...), p[:]...)
	c := b.Cursor()
	k, _ := c.Seek(probe)
	switch {
	case k != nil && bytes.Equal(k, probe):
		target = k
	default:
		var pk []byte
		if k == nil {
			pk, _ = c.Last()
		} else {
			pk, _ = c.Prev()
		}
		switch {
		case isChunkKey(pk, prefix):
			target = pk
		case isChunkKey(k, prefix):
			target = k
		default:
			return nil, nil, nil
		}
	}
	target = bytes.Clone(target)
	c.Seek(target)
	if nk, _ := c.Next(); nk != nil && bytes.HasPrefix(nk, prefix) {
		if !isChunkKey(nk, prefix) {
			return nil, nil, fmt.Errorf("corrupt posting chunk key %q", nk)
		}
		next = bytes.Clone(nk[len(prefix):])
	}
	return target, next, nil
}

// isChunkKey reports whether k is a key of the list under prefix.
func isChunkKey(k, prefix []byte) bool {
	return len(k) == len(prefix)+postingSize && bytes.HasPrefix(k, prefix)
}

// mergePostings returns a new slice holding the postings of old (a
// chunk's value) and ps, sorted, each once.
func mergePostings(old []byte, ps []posting) []byte {
	out := make([]byte, 0, len(old)+len(ps)*postingSize)
	last := func() []byte { return out[len(out)-postingSize:] }
	add := func(p []byte) {
		if len(out) == 0 || bytes.Compare(last(), p) < 0 {
			out = append(out, p...)
		}
	}
	i := 0
	for len(old) > 0 || i < len(ps) {
		switch {
		case len(old) == 0:
			add(ps[i][:])
			i++
		case i == len(ps) || bytes.Compare(old[:postingSize], ps[i][:]) <= 0:
			add(old[:postingSize])
			old = old[postingSize:]
		default:
			add(ps[i][:])
			i++
		}
	}
	return out
}

// postingsIn calls fn with each posting of the list under prefix whose
// time key lies in [since, until] (keys, see timeKey), oldest first.
func postingsIn(b *bolt.Bucket, prefix []byte, since, until uint64, fn func(p *posting) error) error {
	var from posting
	binary.BigEndian.PutUint64(from[:8], since)
	probe := append(append(make([]byte, 0, len(prefix)+postingSize), prefix...), from[:]...)
	c := b.Cursor()
	// The chunk before the one Seek finds may hold postings from since on.
	var k, v []byte
	if sk, _ := c.Seek(probe); sk == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if !isChunkKey(k, prefix) {
		k, v = c.Seek(probe)
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != len(prefix)+postingSize || len(v) == 0 || len(v)%postingSize != 0 {
			return fmt.Errorf("corrupt posting chunk %q (%d bytes)", k, len(v))
		}
		for ; len(v) > 0; v = v[postingSize:] {
			p := (*posting)(v[:postingSize])
			switch t := p.time(); {
			case t < since:
				continue
			case t > until:
				return nil
			}
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return nil
}
