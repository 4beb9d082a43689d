package usage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// A release naming many people — a large release's names records name
// thousands each — is not spread over their posting lists: adding it
// there would touch a page of the index per person, thousands of random
// pages in one transaction, whose copies bbolt holds in memory until it
// commits and which grow with the index (the gateway's heap followed the
// release it was naming: 515 MiB resident growth for a 500 MiB answer,
// and 43× the time of the same answer naming nobody). It is kept as a
// run instead: one value, the release's names sorted, under the
// release's posting in the runs bucket, written in a few sequential
// pages. A lookup reads the posting list and then searches each run of
// the period asked for (a binary search, a few pages each), so its cost
// grows with the number of large releases in the period, not with their
// size.
//
// A run is:
//
//	version (1 byte, runVersion)
//	dataset length (uvarint), dataset
//	units count, records count (uint32 each, big endian)
//	the units, then the records: each runName bytes, sorted, each once

const (
	// runMin is how many names an entry needs to be kept as a run: well
	// above an ordinary page of records (the demo's is at most 200), at
	// most the names of a large release's names record (4,096).
	runMin = 1024
	// runName is the width of a name in a run: the length of the
	// gateway's short keyed hashes (128 bits, base64url). An entry with
	// a name of another length goes to the posting lists.
	runName = 22
	// runVersion is the first byte of a run.
	runVersion = 1
)

// asRun reports whether e is kept as a run.
func asRun(e *Entry) bool {
	if len(e.Units)+len(e.Records) < runMin {
		return false
	}
	for _, list := range [...][]string{e.Units, e.Records} {
		for _, n := range list {
			if len(n) != runName {
				return false
			}
		}
	}
	return true
}

// encodeRun returns e's run.
func encodeRun(e *Entry) []byte {
	units, records := sortedNames(e.Units), sortedNames(e.Records)
	v := make([]byte, 0, 1+binary.MaxVarintLen64+len(e.Dataset)+8+(len(units)+len(records))*runName)
	v = append(v, runVersion)
	v = binary.AppendUvarint(v, uint64(len(e.Dataset)))
	v = append(v, e.Dataset...)
	v = binary.BigEndian.AppendUint32(v, uint32(len(units)))
	v = binary.BigEndian.AppendUint32(v, uint32(len(records)))
	for _, n := range units {
		v = append(v, n...)
	}
	for _, n := range records {
		v = append(v, n...)
	}
	return v
}

// sortedNames is names sorted, each once, in a new slice.
func sortedNames(names []string) []string {
	s := slices.Clone(names)
	slices.Sort(s)
	return slices.Compact(s)
}

// run is a decoded run's dataset and its two sorted sections of names.
type run struct {
	dataset, units, records []byte
}

// decodeRun reads a run's header; the sections stay in v (bbolt's memory,
// valid while its transaction is open).
func decodeRun(v []byte) (run, error) {
	var r run
	if len(v) == 0 || v[0] != runVersion {
		return r, fmt.Errorf("corrupt run: version %v", v[:min(1, len(v))])
	}
	v = v[1:]
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)-k) {
		return r, fmt.Errorf("corrupt run: dataset length")
	}
	r.dataset, v = v[k:k+int(n)], v[k+int(n):]
	if len(v) < 8 {
		return r, fmt.Errorf("corrupt run: counts")
	}
	nu, nr := uint64(binary.BigEndian.Uint32(v)), uint64(binary.BigEndian.Uint32(v[4:]))
	v = v[8:]
	if uint64(len(v)) != (nu+nr)*runName {
		return r, fmt.Errorf("corrupt run: %d bytes for %d names", len(v), nu+nr)
	}
	r.units, r.records = v[:nu*runName], v[nu*runName:]
	return r, nil
}

// runHolds reports whether a sorted section of names holds name.
func runHolds(section []byte, name []byte) bool {
	if len(name) != runName {
		return false
	}
	n := len(section) / runName
	i := sort.Search(n, func(i int) bool { return bytes.Compare(section[i*runName:(i+1)*runName], name) >= 0 })
	return i < n && bytes.Equal(section[i*runName:(i+1)*runName], name)
}

// runMatch says whether a run names what a lookup asks for.
type runMatch func(r *run) bool

// unitRuns matches the runs naming unit.
func unitRuns(unit string) runMatch {
	name := []byte(unit)
	return func(r *run) bool { return runHolds(r.units, name) }
}

// recordRuns matches the runs of dataset naming record.
func recordRuns(dataset, record string) runMatch {
	ds, name := []byte(dataset), []byte(record)
	return func(r *run) bool { return bytes.Equal(r.dataset, ds) && runHolds(r.records, name) }
}

// runsIn calls fn with the posting of each run in b whose time key lies
// in [since, until] and which match accepts, oldest first.
func runsIn(b *bolt.Bucket, since, until uint64, match runMatch, fn func(p *posting) error) error {
	var from posting
	binary.BigEndian.PutUint64(from[:8], since)
	c := b.Cursor()
	for k, v := c.Seek(from[:]); k != nil; k, v = c.Next() {
		if len(k) != postingSize {
			return fmt.Errorf("corrupt run key %q", k)
		}
		p := (*posting)(k)
		if p.time() > until {
			return nil
		}
		r, err := decodeRun(v)
		if err != nil {
			return fmt.Errorf("%w (key %x)", err, k)
		}
		if match(&r) {
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return nil
}
