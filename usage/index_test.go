package usage

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/audit"
)

// readOutcome is the outcome record of an answered read of civil/persons
// that released the records of units (and of records, when given).
func readOutcome(id string, at time.Time, units []string, records ...string) *audit.Event {
	return &audit.Event{
		Time:      at,
		RequestID: id,
		Subject:   "officer-7",
		Roles:     []string{"registrar"},
		Purpose:   "benefit-check",
		Client:    "10.0.0.9",
		Org:       "civil-affairs",
		Action:    "read",
		Phase:     audit.PhaseOutcome,
		Source:    "civil",
		Dataset:   "persons",
		Grant:     "grt_1",
		Method:    "GET",
		Path:      "/v1/civil/persons",
		Decision:  "allow",
		Reason:    "registrars read persons for benefit checks",
		Obligations: &audit.Obligations{
			Fields: map[string]string{"name": "keep", "id_number": "pseudonymize"},
		},
		Rows:     len(units),
		Status:   200,
		Released: &audit.Released{Units: units, Records: records},
	}
}

func TestFromRecordFillsTheReleaseFromTheOutcomeRecord(t *testing.T) {
	ev := readOutcome("req-1", t0, []string{"alice", "bob"}, "rec-1")
	ev.Seq = 42
	got, ok := FromRecord(&audit.Record{Event: *ev}, "gw-1")
	if !ok {
		t.Fatal("FromRecord refused an answered read that released records")
	}
	want := Entry{
		Release: Release{
			RequestID: "req-1", Replica: "gw-1", Seq: 42, Time: t0,
			Dept: "civil-affairs", Roles: []string{"registrar"}, Subject: "officer-7", Purpose: "benefit-check",
			Grant: "grt_1", Basis: "registrars read persons for benefit checks", Dataset: "civil/persons",
			Fields: map[string]string{"name": "keep", "id_number": "pseudonymize"}, Rows: 2,
		},
		Units:   []string{"alice", "bob"},
		Records: []string{"rec-1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromRecord (-want +got):\n%s", diff)
	}
}

func TestFromRecordTakesOnlyAnsweredReadsThatReleasedSomeone(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(e *audit.Event)
		want   bool
	}{
		{"a read's outcome", func(e *audit.Event) {}, true},
		{"records without units", func(e *audit.Event) { e.Released.Units = nil }, true},
		{"without obligations", func(e *audit.Event) { e.Obligations = nil }, true},
		{"the decision record", func(e *audit.Event) { e.Phase, e.Released = audit.PhaseDecision, nil }, false},
		{"an outcome named decision", func(e *audit.Event) { e.Phase = audit.PhaseDecision }, false},
		{"a refusal", func(e *audit.Event) { e.Decision = "deny" }, false},
		{"a failure", func(e *audit.Event) { e.Decision = "error" }, false},
		{"statistics", func(e *audit.Event) { e.Action = "stats" }, false},
		{"nobody released", func(e *audit.Event) { e.Released = nil }, false},
		{"an empty Released", func(e *audit.Event) { e.Released = &audit.Released{Disputed: 1} }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev := readOutcome("req-1", t0, []string{"alice"}, "rec-1")
			ev.Seq = 1
			c.change(ev)
			if _, ok := FromRecord(&audit.Record{Event: *ev}, ""); ok != c.want {
				t.Errorf("FromRecord ok = %v, want %v", ok, c.want)
			}
		})
	}
	if _, ok := FromRecord(nil, ""); ok {
		t.Error("FromRecord(nil) ok")
	}
}

// recorder is an Index that notes the seqs added to it.
type recorder struct {
	Index
	mu    sync.Mutex
	added []uint64
}

func (r *recorder) Add(ctx context.Context, entries ...Entry) error {
	r.mu.Lock()
	for _, e := range entries {
		r.added = append(r.added, e.Seq)
	}
	r.mu.Unlock()
	return r.Index.Add(ctx, entries...)
}

func (r *recorder) take() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.added
	r.added = nil
	return out
}

// trail is an audit trail being written, and the releases it holds.
type trail struct {
	t    *testing.T
	dir  string
	log  *audit.Log
	n    int
	want map[string][]uint64 // unit → seqs of its releases
}

func newTrail(t *testing.T) *trail {
	dir := t.TempDir()
	// Small segments, so that the trail is read across several.
	l, err := audit.Open(dir, audit.Options{SegmentMaxBytes: 8 << 10, CheckpointInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &trail{t: t, dir: dir, log: l, want: map[string][]uint64{}}
}

func (tr *trail) append(e *audit.Event) uint64 {
	tr.t.Helper()
	if err := tr.log.Append(context.Background(), e); err != nil {
		tr.t.Fatal(err)
	}
	return e.Seq
}

// requests appends k requests: each a read's decision and outcome (a
// release of two people), a refused read and a statistics release. It
// returns the seqs of the releases.
func (tr *trail) requests(k int) []uint64 {
	tr.t.Helper()
	var seqs []uint64
	for range k {
		i := tr.n
		tr.n++
		at := t0.Add(time.Duration(i) * time.Minute)
		units := []string{fmt.Sprintf("p%d", i%5), "everyone"}
		id := fmt.Sprintf("req-%d", i)

		decision := readOutcome(id, at, nil)
		decision.Phase, decision.Released, decision.Status = audit.PhaseDecision, nil, 0
		tr.append(decision)
		seq := tr.append(readOutcome(id, at, units))
		for _, u := range units {
			tr.want[u] = append(tr.want[u], seq)
		}
		seqs = append(seqs, seq)

		denied := readOutcome(id+"-denied", at, units)
		denied.Phase, denied.Decision, denied.Released, denied.Status = "", "deny", nil, 403
		tr.append(denied)
		stats := readOutcome(id+"-stats", at, units)
		stats.Action, stats.Phase = "stats", ""
		tr.append(stats)
	}
	return seqs
}

// check fails unless idx holds exactly the trail's releases.
func (tr *trail) check(idx Index) {
	tr.t.Helper()
	for u, want := range tr.want {
		var got []uint64
		for _, r := range byUnit(tr.t, idx, u, time.Time{}, time.Time{}) {
			got = append(got, r.Seq)
		}
		if !slices.Equal(got, want) {
			tr.t.Errorf("ByUnit(%s) = %v, want %v", u, got, want)
		}
	}
}

func TestRebuildIndexesExactlyTheReleasesOfTheTrail(t *testing.T) {
	tr := newTrail(t)
	want := tr.requests(30)
	idx := &recorder{Index: openBolt(t, filepath.Join(t.TempDir(), "usage.db"))}
	// What the index held before is gone after.
	add(t, idx, entry("gw-1", 9999, 0, "stranger"))
	idx.take()

	n, err := Rebuild(context.Background(), tr.dir, idx, "gw-1")
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if n != len(want) {
		t.Errorf("Rebuild added %d releases, want %d", n, len(want))
	}
	if got := idx.take(); !slices.Equal(got, want) {
		t.Errorf("Rebuild added seqs %v, want %v", got, want)
	}
	tr.check(idx)
	if got := byUnit(t, idx, "stranger", time.Time{}, time.Time{}); len(got) != 0 {
		t.Errorf("after Rebuild the index still holds %v", seqs(got))
	}
	rels := byUnit(t, idx, "p0", time.Time{}, time.Time{})
	if r := rels[0]; r.Replica != "gw-1" || r.RequestID != "req-0" || r.Dept != "civil-affairs" || r.Dataset != "civil/persons" {
		t.Errorf("first release of p0 = %+v", r)
	}
	if got := head(t, idx, "gw-1"); got != want[len(want)-1] {
		t.Errorf("Head = %d, want %d", got, want[len(want)-1])
	}
}

func TestCatchUpAddsOnlyTheReleasesAfterTheHead(t *testing.T) {
	for _, c := range []struct {
		name   string
		memory int // catchUpMemory
	}{
		{"a few behind: the trail is read backwards", 1000},
		{"far behind: the trail is read forwards", 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func(m int) { catchUpMemory = m }(catchUpMemory)
			catchUpMemory = c.memory
			ctx := context.Background()
			tr := newTrail(t)
			idx := &recorder{Index: openBolt(t, filepath.Join(t.TempDir(), "usage.db"))}

			first := tr.requests(10)
			n, err := CatchUp(ctx, tr.dir, idx, "")
			if err != nil || n != len(first) {
				t.Fatalf("CatchUp of an empty index = %d, %v; want %d", n, err, len(first))
			}
			if got := idx.take(); !slices.Equal(got, first) {
				t.Errorf("first CatchUp added %v, want %v", got, first)
			}

			if n, err := CatchUp(ctx, tr.dir, idx, ""); err != nil || n != 0 {
				t.Errorf("CatchUp of an index up to date = %d, %v; want 0", n, err)
			}

			more := tr.requests(7)
			n, err = CatchUp(ctx, tr.dir, idx, "")
			if err != nil || n != len(more) {
				t.Fatalf("CatchUp = %d, %v; want %d", n, err, len(more))
			}
			if got := idx.take(); !slices.Equal(got, more) {
				t.Errorf("CatchUp added %v, want only the new %v, oldest first", got, more)
			}
			tr.check(idx)
		})
	}
}
