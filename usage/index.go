package usage

import (
	"context"
	"fmt"
	"slices"

	"github.com/sluicegw/sluice/audit"
)

// FromRecord is the entry of the release rec records, from the trail of
// replica: ok is false unless rec is the outcome record of an answered
// read that released someone's records (Action "read", Phase outcome,
// Decision "allow", and Released naming a unit or a record), or one of
// the names records a large release writes before its outcome (Phase
// names), which is an entry of its own with the release's Part. The entry
// shares rec's slices.
func FromRecord(rec *audit.Record, replica string) (e Entry, ok bool) {
	switch {
	case rec == nil, rec.Action != "read", rec.Phase != audit.PhaseOutcome && rec.Phase != audit.PhaseNames,
		rec.Decision != "allow", rec.Released == nil, len(rec.Released.Units) == 0 && len(rec.Released.Records) == 0,
		rec.Phase == audit.PhaseNames && rec.Released.Part <= 0:
		return Entry{}, false
	}
	e = Entry{
		Release: Release{
			RequestID: rec.RequestID,
			Replica:   replica,
			Seq:       rec.Seq,
			Time:      rec.Time,
			Dept:      rec.Org,
			Roles:     rec.Roles,
			Subject:   rec.Subject,
			Purpose:   rec.Purpose,
			Grant:     rec.Grant,
			Basis:     rec.Reason,
			Dataset:   rec.Source + "/" + rec.Dataset,
			Rows:      rec.Rows,
			Part:      rec.Released.Part,
		},
		Units:   rec.Released.Units,
		Records: rec.Released.Records,
	}
	if rec.Obligations != nil {
		e.Fields = rec.Obligations.Fields
	}
	return e, true
}

// addBatch is how many entries Rebuild and CatchUp add at once (some
// 40 MB of entries). An Add to the embedded index is one transaction,
// which rewrites every posting chunk it touches: adding 2×10^5 releases
// of 20 people each (of 2×10^4) took 58 s a thousand at a time, 11–13 s
// 2×10^4 at a time and 9 s 5×10^4 at a time.
const addBatch = 20_000

// catchUpMemory is how many entries CatchUp gathers reading the trail
// backwards; an index further behind is caught up reading it forwards. A
// variable, so that a test can take the far-behind path.
var catchUpMemory = 10_000

// releases is the part of the trail FromRecord may take something from.
var releases = audit.Query{Action: "read", Decision: "allow"}

// Rebuild empties idx and adds every release of the trail in dir, the
// trail of replica. It returns how many it added. The trail is read as far
// as it is durable, and not verified.
func Rebuild(ctx context.Context, dir string, idx Index, replica string) (n int, err error) {
	if err := idx.Reset(ctx); err != nil {
		return 0, err
	}
	n, err = addFrom(ctx, dir, idx, replica, 0)
	if err != nil {
		return n, fmt.Errorf("usage: rebuild from %s: %w", dir, err)
	}
	return n, nil
}

// CatchUp adds to idx the releases of the trail in dir (the trail of
// replica) after the last it holds, idx.Head(replica), and returns how
// many. It reads the trail backwards from its end to the head, so that
// an index a few releases behind costs a few records' reading, and
// forwards when it is far behind. Entries are added oldest first, so that
// a catch-up stopped half-way leaves a head from which the next one
// continues.
func CatchUp(ctx context.Context, dir string, idx Index, replica string) (n int, err error) {
	head, err := idx.Head(ctx, replica)
	if err != nil {
		return 0, err
	}
	var newer []Entry // newest first
	q := releases
	q.Newest = true
	far := false
	for rec, err := range audit.Scan(ctx, dir, q) {
		if err != nil {
			return 0, fmt.Errorf("usage: catch up from %s: %w", dir, err)
		}
		if rec.Seq <= head {
			break
		}
		if e, ok := FromRecord(rec, replica); ok {
			if newer = append(newer, e); len(newer) > catchUpMemory {
				far = true
				break
			}
		}
	}
	if far {
		n, err = addFrom(ctx, dir, idx, replica, head)
	} else {
		slices.Reverse(newer)
		for len(newer) > 0 && err == nil {
			k := min(len(newer), addBatch)
			if err = idx.Add(ctx, newer[:k]...); err == nil {
				n += k
			}
			newer = newer[k:]
		}
	}
	if err != nil {
		return n, fmt.Errorf("usage: catch up from %s: %w", dir, err)
	}
	return n, nil
}

// addFrom adds the releases of the trail in dir with Seq > after, reading
// it forwards, addBatch at a time.
func addFrom(ctx context.Context, dir string, idx Index, replica string, after uint64) (n int, err error) {
	batch := make([]Entry, 0, addBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := idx.Add(ctx, batch...); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for rec, err := range audit.Scan(ctx, dir, releases) {
		if err != nil {
			return n, err
		}
		if rec.Seq <= after {
			continue
		}
		if e, ok := FromRecord(rec, replica); ok {
			if batch = append(batch, e); len(batch) == addBatch {
				if err := flush(); err != nil {
					return n, err
				}
			}
		}
	}
	return n, flush()
}
