package usage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The conformance suite: what every Index does, run against each backend
// (bolt_test.go, redis_test.go). newIndex returns a fresh, empty index.

// t0 is the suite's epoch; releases are minutes after it.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// release is a release of replica's trail at seq, made at.
func release(replica string, seq uint64, at time.Time) Release {
	return Release{
		RequestID: fmt.Sprintf("req-%s-%d", replica, seq),
		Replica:   replica,
		Seq:       seq,
		Time:      at,
		Dept:      "civil",
		Roles:     []string{"registrar"},
		Subject:   "officer-7",
		Purpose:   "benefit-check",
		Basis:     "registrars read civil records for benefit checks",
		Dataset:   "civil/persons",
		Fields:    map[string]string{"name": "keep", "id_number": "pseudonymize"},
		Rows:      3,
	}
}

// entry is the release of replica's seq at minute m, holding units.
func entry(replica string, seq uint64, m int, units ...string) Entry {
	return Entry{Release: release(replica, seq, t0.Add(time.Duration(m)*time.Minute)), Units: units}
}

// releasesOf is what the index should answer for entries.
func releasesOf(entries ...Entry) []Release {
	out := []Release{}
	for _, e := range entries {
		out = append(out, e.Release)
	}
	return out
}

// seqs names releases by replica:seq, for short failure messages.
func seqs(rels []Release) []string {
	out := []string{}
	for _, r := range rels {
		out = append(out, r.key())
	}
	return out
}

func add(t *testing.T, idx Index, entries ...Entry) {
	t.Helper()
	if err := idx.Add(context.Background(), entries...); err != nil {
		t.Fatalf("Add: %v", err)
	}
}

func byUnit(t *testing.T, idx Index, unit string, since, until time.Time) []Release {
	t.Helper()
	rels, err := idx.ByUnit(context.Background(), unit, since, until)
	if err != nil {
		t.Fatalf("ByUnit(%s): %v", unit, err)
	}
	return rels
}

func byRecord(t *testing.T, idx Index, dataset, record string) []Release {
	t.Helper()
	rels, err := idx.ByRecord(context.Background(), dataset, record)
	if err != nil {
		t.Fatalf("ByRecord(%s, %s): %v", dataset, record, err)
	}
	return rels
}

func head(t *testing.T, idx Index, replica string) uint64 {
	t.Helper()
	seq, err := idx.Head(context.Background(), replica)
	if err != nil {
		t.Fatalf("Head(%q): %v", replica, err)
	}
	return seq
}

func testIndex(t *testing.T, newIndex func(t *testing.T) Index) {
	ctx := context.Background()

	t.Run("FindsAReleaseByEachPersonAndRecordItHeld", func(t *testing.T) {
		idx := newIndex(t)
		a := entry("", 1, 0, "alice", "bob")
		a.Records = []string{"rec-1", "rec-2"}
		b := entry("", 2, 1, "bob")
		add(t, idx, a, b)
		for _, c := range []struct {
			unit string
			want []Release
		}{
			{"alice", releasesOf(a)},
			{"bob", releasesOf(a, b)},
		} {
			if diff := cmp.Diff(c.want, byUnit(t, idx, c.unit, time.Time{}, time.Time{})); diff != "" {
				t.Errorf("ByUnit(%s) (-want +got):\n%s", c.unit, diff)
			}
		}
		for _, rec := range a.Records {
			if diff := cmp.Diff(releasesOf(a), byRecord(t, idx, "civil/persons", rec)); diff != "" {
				t.Errorf("ByRecord(%s) (-want +got):\n%s", rec, diff)
			}
		}
	})

	t.Run("AnUnknownPersonOrRecordHasAnEmptyNonNilList", func(t *testing.T) {
		idx := newIndex(t)
		add(t, idx, entry("", 1, 0, "alice"))
		if got := byUnit(t, idx, "nobody", time.Time{}, time.Time{}); got == nil || len(got) != 0 {
			t.Errorf("ByUnit(nobody) = %#v, want an empty non-nil slice", got)
		}
		if got := byRecord(t, idx, "civil/persons", "nothing"); got == nil || len(got) != 0 {
			t.Errorf("ByRecord(nothing) = %#v, want an empty non-nil slice", got)
		}
	})

	t.Run("KeepsRecordsOfDatasetsApart", func(t *testing.T) {
		idx := newIndex(t)
		a := entry("", 1, 0, "alice")
		a.Records = []string{"rec-1"}
		b := entry("", 2, 1, "alice")
		b.Dataset, b.Records = "health/visits", []string{"rec-1"}
		add(t, idx, a, b)
		if got := seqs(byRecord(t, idx, "civil/persons", "rec-1")); !slices.Equal(got, []string{":1"}) {
			t.Errorf("ByRecord(civil/persons) = %v, want [:1]", got)
		}
		if got := seqs(byRecord(t, idx, "health/visits", "rec-1")); !slices.Equal(got, []string{":2"}) {
			t.Errorf("ByRecord(health/visits) = %v, want [:2]", got)
		}
	})

	t.Run("KeepsToSinceInclusiveAndUntilExclusive", func(t *testing.T) {
		idx := newIndex(t)
		// Nanoseconds apart within one millisecond, and a millisecond
		// apart: bounds hold to the nanosecond whatever a backend keys by.
		base := t0.Add(123*time.Millisecond + 400*time.Microsecond)
		var entries []Entry
		for i, d := range []time.Duration{0, 1, 2, time.Millisecond, time.Millisecond + 1, time.Hour} {
			e := entry("", uint64(i+1), 0, "alice")
			e.Time = base.Add(d)
			entries = append(entries, e)
		}
		add(t, idx, entries...)
		for _, c := range []struct {
			name         string
			since, until time.Time
			want         []string
		}{
			{"no bounds", time.Time{}, time.Time{}, []string{":1", ":2", ":3", ":4", ":5", ":6"}},
			{"since a release: it is in", base.Add(1), time.Time{}, []string{":2", ":3", ":4", ":5", ":6"}},
			{"until a release: it is out", time.Time{}, base.Add(2), []string{":1", ":2"}},
			{"within a millisecond", base.Add(1), base.Add(time.Millisecond + 1), []string{":2", ":3", ":4"}},
			{"a nanosecond", base.Add(time.Millisecond), base.Add(time.Millisecond + 1), []string{":4"}},
			{"between releases", base.Add(3), base.Add(time.Millisecond), []string{}},
			{"after all", base.Add(2 * time.Hour), time.Time{}, []string{}},
			{"before all", time.Time{}, base, []string{}},
		} {
			if got := seqs(byUnit(t, idx, "alice", c.since, c.until)); !slices.Equal(got, c.want) {
				t.Errorf("%s: ByUnit = %v, want %v", c.name, got, c.want)
			}
		}
	})

	t.Run("ListsReleasesByTimeThenReplicaThenSeq", func(t *testing.T) {
		idx := newIndex(t)
		add(t, idx,
			entry("gw-2", 9, 5, "alice"),
			entry("gw-1", 4, 5, "alice"),
			entry("gw-1", 3, 5, "alice"),
			entry("gw-2", 1, 7, "alice"),
			entry("gw-2", 2, 1, "alice"),
		)
		want := []string{"gw-2:2", "gw-1:3", "gw-1:4", "gw-2:9", "gw-2:1"}
		if got := seqs(byUnit(t, idx, "alice", time.Time{}, time.Time{})); !slices.Equal(got, want) {
			t.Errorf("ByUnit = %v, want %v", got, want)
		}
	})

	t.Run("AddingAReleaseAgainChangesNothing", func(t *testing.T) {
		idx := newIndex(t)
		first := entry("gw-1", 5, 0, "alice")
		first.Records = []string{"rec-1"}
		add(t, idx, first)
		// The same trail position again, as a catch-up would add it, and
		// once with different data, which the index ignores.
		again := first
		changed := entry("gw-1", 5, 30, "carol")
		changed.RequestID = "other"
		add(t, idx, again, again)
		add(t, idx, changed)
		if diff := cmp.Diff(releasesOf(first), byUnit(t, idx, "alice", time.Time{}, time.Time{})); diff != "" {
			t.Errorf("ByUnit(alice) (-want +got):\n%s", diff)
		}
		if got := byUnit(t, idx, "carol", time.Time{}, time.Time{}); len(got) != 0 {
			t.Errorf("ByUnit(carol) = %v, want none: the release was in the index already", seqs(got))
		}
		if diff := cmp.Diff(releasesOf(first), byRecord(t, idx, "civil/persons", "rec-1")); diff != "" {
			t.Errorf("ByRecord (-want +got):\n%s", diff)
		}
	})

	t.Run("AnswersALargeReleaseOnceByItsOutcome", func(t *testing.T) {
		idx := newIndex(t)
		// A release too large for one record: two names records (seq 7
		// and 8) before its outcome (seq 9), alice named in the first and
		// the outcome, bob only in the second; and another release's
		// names record (seq 11) whose outcome was never written.
		part := func(seq uint64, n int, units ...string) Entry {
			e := entry("gw-1", seq, 10, units...)
			e.RequestID, e.Part = "req-large", n
			e.Records = units
			return e
		}
		outcome := part(9, 0, "alice", "carol")
		cut := entry("gw-1", 11, 20, "bob")
		cut.Part = 1
		before := entry("gw-1", 3, 5, "bob")
		add(t, idx, part(7, 1, "alice"), part(8, 2, "bob"), before)
		add(t, idx, outcome, cut)
		for _, who := range []string{"alice", "carol"} {
			if diff := cmp.Diff(releasesOf(outcome), byUnit(t, idx, who, time.Time{}, time.Time{})); diff != "" {
				t.Errorf("ByUnit(%s) (-want +got):\n%s", who, diff)
			}
		}
		second := part(8, 2, "bob")
		if diff := cmp.Diff(releasesOf(before, second, cut), byUnit(t, idx, "bob", time.Time{}, time.Time{})); diff != "" {
			t.Errorf("ByUnit(bob): want the earlier release, then the large one and the cut one by the names records naming bob (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(releasesOf(outcome), byRecord(t, idx, "civil/persons", "alice")); diff != "" {
			t.Errorf("ByRecord(alice) (-want +got):\n%s", diff)
		}
	})

	t.Run("FindsEveryoneOfReleasesNamingThousands", func(t *testing.T) {
		idx := newIndex(t)
		// Releases naming thousands (as a large release's names records
		// do, with the gateway's 22-character hashes) beside small ones
		// naming some of the same people, of two datasets, at random
		// times; one large release is added twice, one names a person by
		// a hash of another length. Every person's and record's answer
		// is the brute-force one.
		rng := rand.New(rand.NewPCG(3, 4))
		person := func(i int) string { return fmt.Sprintf("u%021d", i) }
		record := func(i int) string { return fmt.Sprintf("r%021d", i) }
		var all []Entry
		for i := range 12 {
			e := entry("gw-1", uint64(100+i), rng.IntN(24*60))
			if i%3 == 0 {
				e.Dataset = "health/visits"
			}
			for range 1500 + rng.IntN(1500) {
				e.Units = append(e.Units, person(rng.IntN(5000)))
			}
			for range 500 + rng.IntN(1000) {
				e.Records = append(e.Records, record(rng.IntN(5000)))
			}
			all = append(all, e)
		}
		all[5].Units = append(all[5].Units, "short")
		for i := range 300 {
			e := entry("gw-2", uint64(i+1), rng.IntN(24*60), person(rng.IntN(5000)), person(rng.IntN(5000)))
			e.Records = []string{record(rng.IntN(5000))}
			all = append(all, e)
		}
		shuffled := slices.Clone(all)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for rest := shuffled; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(40))
			add(t, idx, rest[:n]...)
			rest = rest[n:]
		}
		add(t, idx, all[2])
		want := func(keep func(e *Entry) bool, since, until time.Time) []Release {
			out := []Release{}
			for i := range all {
				if e := &all[i]; keep(e) && within(e.Time, since, until) {
					out = append(out, e.Release)
				}
			}
			return Ordered(out)
		}
		names := []string{"short", person(5001)}
		for range 60 {
			names = append(names, person(rng.IntN(5000)))
		}
		for _, who := range names {
			a, b := rng.IntN(24*60), rng.IntN(24*60)
			for _, p := range [][2]time.Time{{}, {t0.Add(time.Duration(min(a, b)) * time.Minute), t0.Add(time.Duration(max(a, b)) * time.Minute)}} {
				w := want(func(e *Entry) bool { return slices.Contains(e.Units, who) }, p[0], p[1])
				if diff := cmp.Diff(seqs(w), seqs(byUnit(t, idx, who, p[0], p[1]))); diff != "" {
					t.Fatalf("ByUnit(%s, %v, %v) (-want +got):\n%s", who, p[0], p[1], diff)
				}
			}
		}
		for range 60 {
			rec := record(rng.IntN(5000))
			for _, ds := range []string{"civil/persons", "health/visits"} {
				w := want(func(e *Entry) bool { return e.Dataset == ds && slices.Contains(e.Records, rec) }, time.Time{}, time.Time{})
				if diff := cmp.Diff(seqs(w), seqs(byRecord(t, idx, ds, rec))); diff != "" {
					t.Fatalf("ByRecord(%s, %s) (-want +got):\n%s", ds, rec, diff)
				}
			}
		}
	})

	t.Run("HeadIsTheHighestSeqOfEachReplica", func(t *testing.T) {
		idx := newIndex(t)
		if got := head(t, idx, "gw-1"); got != 0 {
			t.Errorf("Head of an empty index = %d, want 0", got)
		}
		add(t, idx, entry("gw-1", 7, 0, "alice"), entry("gw-1", 3, 0, "alice"))
		add(t, idx, entry("gw-1", 5, 0, "bob"))
		add(t, idx, entry("gw-2", 2, 0, "bob"), entry("", 11, 0, "bob"))
		for replica, want := range map[string]uint64{"gw-1": 7, "gw-2": 2, "": 11, "gw-3": 0} {
			if got := head(t, idx, replica); got != want {
				t.Errorf("Head(%q) = %d, want %d", replica, got, want)
			}
		}
	})

	t.Run("KeepsReplicasApart", func(t *testing.T) {
		idx := newIndex(t)
		a, b := entry("gw-1", 1, 0, "alice"), entry("gw-2", 1, 0, "alice")
		add(t, idx, a)
		add(t, idx, b)
		if diff := cmp.Diff(releasesOf(a, b), byUnit(t, idx, "alice", time.Time{}, time.Time{})); diff != "" {
			t.Errorf("ByUnit (-want +got):\n%s", diff)
		}
	})

	t.Run("ResetEmptiesTheIndex", func(t *testing.T) {
		idx := newIndex(t)
		a := entry("gw-1", 4, 0, "alice")
		a.Records = []string{"rec-1"}
		add(t, idx, a)
		if err := idx.Reset(ctx); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		if got := byUnit(t, idx, "alice", time.Time{}, time.Time{}); len(got) != 0 {
			t.Errorf("after Reset, ByUnit = %v", seqs(got))
		}
		if got := byRecord(t, idx, "civil/persons", "rec-1"); len(got) != 0 {
			t.Errorf("after Reset, ByRecord = %v", seqs(got))
		}
		if got := head(t, idx, "gw-1"); got != 0 {
			t.Errorf("after Reset, Head = %d", got)
		}
		// What was in it may be added again.
		add(t, idx, a)
		if got := seqs(byUnit(t, idx, "alice", time.Time{}, time.Time{})); !slices.Equal(got, []string{"gw-1:4"}) {
			t.Errorf("added again after Reset, ByUnit = %v", got)
		}
	})

	t.Run("RefusesAMalformedEntryAndAddsNothingOfItsCall", func(t *testing.T) {
		good := entry("", 1, 0, "alice")
		for _, c := range []struct {
			name string
			bad  func(e *Entry)
			msg  string
		}{
			{"no seq", func(e *Entry) { e.Seq = 0 }, "no seq"},
			{"unit not a hash", func(e *Entry) { e.Units = []string{"ali ce"} }, "not a short keyed hash"},
			{"empty unit", func(e *Entry) { e.Units = []string{""} }, "not a short keyed hash"},
			{"record with a colon", func(e *Entry) { e.Records = []string{"a:b"} }, "not a short keyed hash"},
			{"NUL in dataset", func(e *Entry) { e.Dataset = "civil\x00persons" }, "dataset"},
			{"NUL in replica", func(e *Entry) { e.Replica = "gw\x00" }, "replica"},
		} {
			t.Run(c.name, func(t *testing.T) {
				idx := newIndex(t)
				bad := entry("", 2, 1, "bob")
				c.bad(&bad)
				err := idx.Add(ctx, good, bad)
				if err == nil || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("Add = %v, want an error saying %q", err, c.msg)
				}
				if got := byUnit(t, idx, "alice", time.Time{}, time.Time{}); len(got) != 0 {
					t.Errorf("the good entry of a refused call was added: %v", seqs(got))
				}
			})
		}
	})

	t.Run("FindsAPersonsManyReleasesInAnyPeriod", func(t *testing.T) {
		idx := newIndex(t)
		// One person in 600 releases, added in a random order and in
		// calls of random size beside other people's: enough to fill
		// several chunks of a posting list and to insert between them.
		rng := rand.New(rand.NewPCG(1, 2))
		var all []Entry
		for i := range 600 {
			e := entry("gw-1", uint64(i+1), rng.IntN(24*60), "alice", fmt.Sprintf("p%d", rng.IntN(50)))
			if i%7 == 0 {
				e.Replica = "gw-2"
			}
			all = append(all, e)
		}
		shuffled := slices.Clone(all)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for rest := shuffled; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(80))
			add(t, idx, rest[:n]...)
			rest = rest[n:]
		}
		want := func(since, until time.Time) []Release {
			var out []Release
			for _, e := range all {
				if within(e.Time, since, until) {
					out = append(out, e.Release)
				}
			}
			out = Ordered(out)
			if out == nil {
				out = []Release{}
			}
			return out
		}
		periods := [][2]time.Time{{}, {t0, {}}, {{}, t0.Add(time.Hour)}, {t0.Add(24 * time.Hour), {}}}
		for range 40 {
			a, b := rng.IntN(24*60), rng.IntN(24*60)
			periods = append(periods, [2]time.Time{t0.Add(time.Duration(min(a, b)) * time.Minute), t0.Add(time.Duration(max(a, b)) * time.Minute)})
		}
		for _, p := range periods {
			if diff := cmp.Diff(want(p[0], p[1]), byUnit(t, idx, "alice", p[0], p[1])); diff != "" {
				t.Fatalf("ByUnit(alice, %v, %v) (-want +got):\n%s", p[0], p[1], diff)
			}
		}
	})

	t.Run("ConcurrentAddsAllLand", func(t *testing.T) {
		idx := newIndex(t)
		const writers, each = 32, 20
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					seq := uint64(w*each + i + 1)
					e := entry("gw-1", seq, int(seq), "everyone", fmt.Sprintf("w%d", w))
					e.Records = []string{fmt.Sprintf("rec-%d", seq)}
					if err := idx.Add(ctx, e); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Add: %v", err)
		}
		if got := len(byUnit(t, idx, "everyone", time.Time{}, time.Time{})); got != writers*each {
			t.Errorf("ByUnit(everyone) has %d releases, want %d", got, writers*each)
		}
		for w := range writers {
			if got := len(byUnit(t, idx, fmt.Sprintf("w%d", w), time.Time{}, time.Time{})); got != each {
				t.Errorf("ByUnit(w%d) has %d releases, want %d", w, got, each)
			}
		}
		if got := seqs(byRecord(t, idx, "civil/persons", "rec-17")); !slices.Equal(got, []string{"gw-1:17"}) {
			t.Errorf("ByRecord(rec-17) = %v", got)
		}
		if got := head(t, idx, "gw-1"); got != writers*each {
			t.Errorf("Head = %d, want %d", got, writers*each)
		}
	})
}
