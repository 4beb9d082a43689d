package usage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bolt is the embedded [Index]: a bbolt file beside the trail, for one
// gateway. An Add is one transaction, fsync'd before it returns;
// concurrent Adds share one (bbolt's Batch), so that request goroutines
// adding their releases at once pay for one fsync between them.
//
// Buckets:
//
//   - releases: replica number (2 bytes) + seq (8) → the Release as JSON.
//     A release is keyed by the trail position of its outcome record, so
//     adding it again finds it and changes nothing.
//   - units: unit hash + NUL + a posting → a chunk of the person's
//     posting list, the chunk that starts with that posting (see
//     postings.go); a posting is time + replica number + seq.
//   - records: dataset + NUL + record hash + NUL + a posting → a chunk of
//     the record's posting list, the same way.
//   - replicas: NUL + replica name → its number (2 bytes), given in order
//     of first use, so that postings do not repeat the name. (The NUL
//     because bbolt refuses an empty key, and a gateway without replicas
//     is replica "".)
//   - heads: NUL + replica name → the highest seq added from its trail (8
//     bytes).
//   - runs: a posting → the names of a release naming more than runMin
//     people and records, sorted (see runs.go), instead of its postings
//     in the units and records buckets.
type Bolt struct {
	db *bolt.DB
}

var _ Index = (*Bolt)(nil)

var (
	releasesBucket = []byte("releases")
	unitsBucket    = []byte("units")
	recordsBucket  = []byte("records")
	replicasBucket = []byte("replicas")
	headsBucket    = []byte("heads")
	runsBucket     = []byte("runs")
	allBuckets     = [][]byte{releasesBucket, unitsBucket, recordsBucket, replicasBucket, headsBucket, runsBucket}
)

// batchDelay is how long bbolt's Batch waits for more Adds to share a
// transaction with. Its default, 10 ms, is added to every lone Add (13.7
// ms an Add against 2.5 ms without batching, on the test VM); 1 ms cost a
// lone Add nothing measurable and let 32 goroutines adding at once take
// 0.14–0.4 ms an Add, against 2.7 ms each without batching.
const batchDelay = time.Millisecond

// releasesFill is how full bbolt packs the pages of the releases bucket,
// whose keys (replica number, seq) mostly grow: at bbolt's default of
// half-full pages the bucket took twice the space (measured with
// BenchmarkIndex's releases). The posting lists, updated all over, keep
// the default: fuller pages did not make them smaller.
const releasesFill = 1.0

// OpenBolt opens (creating it and its directory if needed) the index file
// at path. It fails after a few seconds when another process holds the
// file, as a running gateway does.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("usage: open %s: %w", path, err)
	}
	db.MaxBatchDelay = batchDelay
	if err := db.Update(createBuckets); err != nil {
		db.Close()
		return nil, fmt.Errorf("usage: initialise %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the file.
func (b *Bolt) Close() error { return b.db.Close() }

// Add implements [Index]. Entries are added in one transaction, all or
// none; one already in the index is skipped.
func (b *Bolt) Add(ctx context.Context, entries ...Entry) error {
	if err := checkAll(entries); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	// Batch may run the function more than once, each time in a fresh
	// transaction: it keeps nothing between runs.
	err := b.db.Batch(func(tx *bolt.Tx) error { return addTx(tx, entries) })
	if err != nil {
		return fmt.Errorf("usage: add %d release(s): %w", len(entries), err)
	}
	return nil
}

// addTx adds entries in tx: each new release, its postings, grouped by
// list so that a list's chunks are rewritten once, or its run, and the
// heads.
func addTx(tx *bolt.Tx, entries []Entry) error {
	releases, heads, runs := tx.Bucket(releasesBucket), tx.Bucket(headsBucket), tx.Bucket(runsBucket)
	runs.FillPercent = releasesFill // keyed by time, mostly growing
	releases.FillPercent = releasesFill
	// List prefix → the list's new postings.
	unitLists, recordLists := map[string][]posting{}, map[string][]posting{}
	rids := map[string]uint16{}
	for i := range entries {
		e := &entries[i]
		rid, ok := rids[e.Replica]
		if !ok {
			var err error
			if rid, err = replicaNumber(tx, e.Replica); err != nil {
				return err
			}
			rids[e.Replica] = rid
		}
		if err := raiseHead(heads, e.Replica, e.Seq); err != nil {
			return err
		}
		p := newPosting(e.Time, rid, e.Seq)
		if releases.Get(p.release()) != nil {
			continue
		}
		v, err := json.Marshal(&e.Release)
		if err != nil {
			return fmt.Errorf("encode release %s: %w", e.key(), err)
		}
		if err := releases.Put(bytes.Clone(p.release()), v); err != nil {
			return fmt.Errorf("write release %s: %w", e.key(), err)
		}
		if asRun(e) {
			if err := runs.Put(bytes.Clone(p[:]), encodeRun(e)); err != nil {
				return fmt.Errorf("write the run of release %s: %w", e.key(), err)
			}
			continue
		}
		for _, u := range e.Units {
			k := string(unitPrefix(u))
			unitLists[k] = append(unitLists[k], p)
		}
		for _, r := range e.Records {
			k := string(recordPrefix(e.Dataset, r))
			recordLists[k] = append(recordLists[k], p)
		}
	}
	if err := addLists(tx.Bucket(unitsBucket), unitLists); err != nil {
		return err
	}
	return addLists(tx.Bucket(recordsBucket), recordLists)
}

// addLists adds to each posting list in bk its new postings, in key order
// so that bbolt's cursor moves forward.
func addLists(bk *bolt.Bucket, lists map[string][]posting) error {
	for _, prefix := range slices.Sorted(maps.Keys(lists)) {
		ps := lists[prefix]
		slices.SortFunc(ps, func(a, b posting) int { return bytes.Compare(a[:], b[:]) })
		ps = slices.CompactFunc(ps, func(a, b posting) bool { return a == b })
		if err := addPostings(bk, []byte(prefix), ps); err != nil {
			return err
		}
	}
	return nil
}

// replicaKey is replica's key in the replicas and heads buckets.
func replicaKey(replica string) []byte { return append([]byte{0}, replica...) }

// unitPrefix is the key prefix of unit's posting list.
func unitPrefix(unit string) []byte { return append([]byte(unit), 0) }

// recordPrefix is the key prefix of the posting list of record in dataset.
func recordPrefix(dataset, record string) []byte {
	k := make([]byte, 0, len(dataset)+len(record)+2)
	k = append(append(k, dataset...), 0)
	return append(append(k, record...), 0)
}

// replicaNumber is replica's number, given it when it has none.
func replicaNumber(tx *bolt.Tx, replica string) (uint16, error) {
	bk := tx.Bucket(replicasBucket)
	if v := bk.Get(replicaKey(replica)); v != nil {
		if len(v) != 2 {
			return 0, fmt.Errorf("corrupt number of replica %q (%d bytes)", replica, len(v))
		}
		return binary.BigEndian.Uint16(v), nil
	}
	n, err := bk.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("number replica %q: %w", replica, err)
	}
	if n > math.MaxUint16 {
		return 0, fmt.Errorf("number replica %q: more than %d replicas", replica, math.MaxUint16)
	}
	if err := bk.Put(replicaKey(replica), binary.BigEndian.AppendUint16(nil, uint16(n))); err != nil {
		return 0, fmt.Errorf("number replica %q: %w", replica, err)
	}
	return uint16(n), nil
}

// raiseHead sets replica's head to seq when seq is higher.
func raiseHead(heads *bolt.Bucket, replica string, seq uint64) error {
	cur, err := readHead(heads, replica)
	if err != nil || seq <= cur {
		return err
	}
	if err := heads.Put(replicaKey(replica), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		return fmt.Errorf("write head of replica %q: %w", replica, err)
	}
	return nil
}

func readHead(heads *bolt.Bucket, replica string) (uint64, error) {
	v := heads.Get(replicaKey(replica))
	switch len(v) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(v), nil
	}
	return 0, fmt.Errorf("corrupt head of replica %q (%d bytes)", replica, len(v))
}

// ByUnit implements [Index]. It reads the postings of unit from since's
// and decodes only the releases up to until. An unknown unit has none: an
// empty, non-nil slice.
func (b *Bolt) ByUnit(ctx context.Context, unit string, since, until time.Time) ([]Release, error) {
	rels, err := b.lookup(ctx, unitsBucket, unitPrefix(unit), unitRuns(unit), since, until)
	if err != nil {
		return nil, fmt.Errorf("usage: releases of unit %s: %w", unit, err)
	}
	return rels, nil
}

// ByRecord implements [Index].
func (b *Bolt) ByRecord(ctx context.Context, dataset, record string) ([]Release, error) {
	rels, err := b.lookup(ctx, recordsBucket, recordPrefix(dataset, record), recordRuns(dataset, record), time.Time{}, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("usage: releases of record %s in %s: %w", record, dataset, err)
	}
	return rels, nil
}

// lookup reads the releases of the posting list under prefix in bucket,
// and of the runs match accepts, with since <= Time < until.
func (b *Bolt) lookup(ctx context.Context, bucket, prefix []byte, match runMatch, since, until time.Time) ([]Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	from, to := uint64(0), uint64(math.MaxUint64)
	if !since.IsZero() {
		from = timeKey(since)
	}
	if !until.IsZero() {
		to = timeKey(until)
	}
	rels := []Release{}
	err := b.db.View(func(tx *bolt.Tx) error {
		releases := tx.Bucket(releasesBucket)
		found := func(p *posting) error {
			v := releases.Get(p.release())
			if v == nil {
				return fmt.Errorf("the index lists release %s, which it does not hold", describe(tx, p))
			}
			var r Release
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("corrupt release %s: %w", describe(tx, p), err)
			}
			if within(r.Time, since, until) {
				rels = append(rels, r)
			}
			return nil
		}
		if err := postingsIn(tx.Bucket(bucket), prefix, from, to, found); err != nil {
			return err
		}
		return runsIn(tx.Bucket(runsBucket), from, to, match, found)
	})
	if err != nil {
		return nil, err
	}
	return Ordered(rels), nil
}

// describe names p's release for an error: its replica and seq.
func describe(tx *bolt.Tx, p *posting) string {
	rid := binary.BigEndian.Uint16(p[8:10])
	seq := strconv.FormatUint(binary.BigEndian.Uint64(p[10:]), 10)
	name := "#" + strconv.Itoa(int(rid))
	c := tx.Bucket(replicasBucket).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) > 0 && len(v) == 2 && binary.BigEndian.Uint16(v) == rid {
			name = string(k[1:])
			break
		}
	}
	return strconv.Quote(name) + ":" + seq
}

// Head implements [Index].
func (b *Bolt) Head(ctx context.Context, replica string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var seq uint64
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		seq, err = readHead(tx.Bucket(headsBucket), replica)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("usage: %w", err)
	}
	return seq, nil
}

// Reset implements [Index], in one transaction. The file keeps its size:
// bbolt reuses the freed pages.
func (b *Bolt) Reset(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				continue
			}
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return createBuckets(tx)
	})
	if err != nil {
		return fmt.Errorf("usage: reset: %w", err)
	}
	return nil
}
