package hub

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// rawBytes returns every byte a backend holds for s, as an attacker
// reading its storage would see them: the bbolt file, every Redis value,
// the memory store's documents.
type rawBytes func(t *testing.T, s Store) []byte

// testObjectionStore is the conformance suite's part for objections and
// notices (testStore runs it).
func testObjectionStore(t *testing.T, newStore func(t *testing.T) Store, raw rawBytes) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	hubOn := func(s Store) *Hub { return New(s, Options{Sealer: testSealer, Now: func() time.Time { return now }}) }

	storedObjection := func(t *testing.T, s Store, state State) *Objection {
		t.Helper()
		o := testObjectionID(newID("obj_"), state)
		if err := s.CreateObjection(ctx, o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	// storedNotice is a pending notice to transport of a correction.
	storedNotice := func(t *testing.T, s Store) *Notice {
		t.Helper()
		o := storedObjection(t, s, Accepted)
		out, err := hubOn(s).ActOnObjection(ctx, o.ID, Act{Action: Correct, Reason: "fixed"}, sam, []string{"transport"})
		if err != nil {
			t.Fatal(err)
		}
		return out.Notices[0]
	}

	t.Run("a filed objection reads back sealed, with nothing else changed", func(t *testing.T) {
		s := newStore(t)
		in := ObjectionInput{Dataset: "health/visits", RecordID: "V2025000001", Field: "diagnosis", Claim: testClaim}
		o, err := hubOn(s).FileObjection(ctx, in, visits, alice, Eligibility{Received: true})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Objection(ctx, o.Objection.ID)
		if err != nil {
			t.Fatal(err)
		}
		opened, err := hubOn(s).Open(got)
		if err != nil {
			t.Fatal(err)
		}
		if got.Claim != "" || !opened.Due.Equal(DefaultCalendar().Due(now, DefaultObjectionAcceptDays)) ||
			opened.Claim != testClaim || opened.State != Filed || len(opened.History) != 1 {
			t.Errorf("stored %+v, opened %+v", got, opened)
		}
		if _, err := s.Objection(ctx, "obj_none"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an unknown objection: %v", err)
		}
		if _, err := s.Notice(ctx, "ntc_none"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an unknown notice: %v", err)
		}
		if err := s.CreateObjection(ctx, got); !errors.Is(err, ErrConflict) {
			t.Errorf("creating an objection again: %v, want a conflict", err)
		}
	})

	t.Run("every allowed objection and notice transition is stored", func(t *testing.T) {
		s := newStore(t)
		h := hubOn(s)
		for _, row := range objections.rows[1:] {
			o := testObjectionID(newID("obj_"), row.from)
			if row.from == Escalated && (row.action == Correct || row.action == Uphold) {
				o.EscalatedFrom = Accepted
			}
			if err := s.CreateObjection(ctx, o); err != nil {
				t.Fatal(err)
			}
			out, err := h.ActOnObjection(ctx, o.ID, Act{Action: row.action, Reason: "because"}, byRelation[row.who[0]], nil)
			if err != nil {
				t.Fatalf("%s → %s by %s: %v", row.from, row.action, row.who[0], err)
			}
			got, _ := s.Objection(ctx, o.ID)
			if got.State != row.to || out.Objection.State != row.to || len(got.History) != 1 {
				t.Errorf("%s → %s: stored %s with %d transitions, want %s", row.from, row.action, got.State, len(got.History), row.to)
			}
		}
		n := storedNotice(t, s)
		if _, err := h.AckNotice(ctx, n.ID, rita); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Notice(ctx, n.ID); got.State != Acknowledged || got.AckedBy == nil || got.AckedBy.Subject != "rita" {
			t.Errorf("stored notice %+v", got)
		}
	})

	t.Run("a correction stores its notices with the objection", func(t *testing.T) {
		s := newStore(t)
		o := storedObjection(t, s, Accepted)
		version, _ := s.GrantsVersion(ctx)
		out, err := hubOn(s).ActOnObjection(ctx, o.ID, Act{Action: Correct, Reason: "fixed"}, sam, []string{"police", "transport"})
		if err != nil {
			t.Fatal(err)
		}
		ns, err := s.Notices(ctx, Filter{Objection: o.ID})
		if err != nil || len(ns) != 2 {
			t.Fatalf("%d notices stored, %v; want 2", len(ns), err)
		}
		got, _ := s.Objection(ctx, o.ID)
		if got.State != Corrected || len(got.Recipients) != 2 || len(out.Transitions) != 3 {
			t.Errorf("stored %s to %v with %d transitions made", got.State, got.Recipients, len(out.Transitions))
		}
		// Replicas keep a copy of the records under objection, which the
		// version tells them to reload: a correction ends a dispute.
		if after, _ := s.GrantsVersion(ctx); after == version {
			t.Error("a correction left the version as it was")
		}
		before, _ := s.GrantsVersion(ctx)
		storedObjection(t, s, Filed)
		if after, _ := s.GrantsVersion(ctx); after == before {
			t.Error("filing an objection left the version as it was")
		}
	})

	t.Run("a refused objection decision stores nothing", func(t *testing.T) {
		s := newStore(t)
		h := hubOn(s)
		for _, tc := range []struct {
			from  State
			act   Act
			by    Actor
			class error
		}{
			{Corrected, Act{Action: Uphold, Reason: "late"}, sam, ErrConflict},
			{Filed, Act{Action: Accept}, alice, ErrForbidden},
			{Filed, Act{Action: Accept}, cora, ErrForbidden},
			{Filed, Act{Action: Reject}, sam, ErrBadRequest},
			{Escalated, Act{Action: Correct, Reason: "skip a stage"}, cora, ErrConflict},
		} {
			o := storedObjection(t, s, tc.from)
			before, _ := s.Objection(ctx, o.ID)
			_, err := h.ActOnObjection(ctx, o.ID, tc.act, tc.by, nil)
			if !errors.Is(err, tc.class) {
				t.Errorf("%s %s by %s: %v, want %v", tc.from, tc.act.Action, tc.by.Subject, err, tc.class)
			}
			after, _ := s.Objection(ctx, o.ID)
			if after.State != before.State || len(after.History) != len(before.History) {
				t.Errorf("%s %s by %s changed the stored objection", tc.from, tc.act.Action, tc.by.Subject)
			}
		}
		if ns, _ := s.Notices(ctx, Filter{}); len(ns) != 0 {
			t.Errorf("refusals made %d notices", len(ns))
		}
	})

	t.Run("an objection in clear is refused and nothing is stored", func(t *testing.T) {
		s := newStore(t)
		o := testObjectionID(newID("obj_"), Filed)
		o.Claim = testClaim
		if err := s.CreateObjection(ctx, o); !errors.Is(err, errInClear) {
			t.Errorf("created with its claim in clear: %v", err)
		}
		o = storedObjection(t, s, Accepted)
		_, err := s.UpdateObjection(ctx, o.ID, func(o *Objection) ([]*Notice, error) {
			_, err := o.Apply(Act{Action: Correct, Reason: testClaim}, sam, now, now)
			return []*Notice{testNotice(Pending)}, err
		})
		if !errors.Is(err, errInClear) {
			t.Errorf("updated with a reason in clear: %v", err)
		}
		if got, _ := s.Objection(ctx, o.ID); got.State != Accepted {
			t.Errorf("stored %s after a refused update", got.State)
		}
		if ns, _ := s.Notices(ctx, Filter{}); len(ns) != 0 {
			t.Errorf("a refused update stored %d notices", len(ns))
		}
		if bytes.Contains(raw(t, s), []byte(testClaim)) {
			t.Error("the refused text reached the backend")
		}
	})

	t.Run("the text of objections is sealed at rest", func(t *testing.T) {
		s := newStore(t)
		h := hubOn(s)
		const claim, reason, rejection = "CLAIM-zq7-not-my-diagnosis", "REASON-zq7-diagnosis-swapped", "REJECTION-zq7-no-error"
		in := ObjectionInput{Dataset: "health/visits", RecordID: "V-RAW-zq7", Field: "diagnosis", Claim: claim}
		one, err := h.FileObjection(ctx, in, visits, alice, Eligibility{Received: true})
		if err != nil {
			t.Fatal(err)
		}
		two, err := h.FileObjection(ctx, in, visits, Actor{Subject: "110101199003070011"}, Eligibility{Subject: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			id         string
			act        Act
			recipients []string
		}{
			{one.Objection.ID, Act{Action: Accept, Reason: reason + "-accept"}, nil},
			{one.Objection.ID, Act{Action: Correct, Reason: reason}, []string{"police", "transport"}},
			{two.Objection.ID, Act{Action: Reject, Reason: rejection}, nil},
		} {
			if _, err := h.ActOnObjection(ctx, step.id, step.act, sam, step.recipients); err != nil {
				t.Fatal(err)
			}
		}
		b := raw(t, s)
		for _, known := range []string{one.Objection.ID, two.Objection.ID, "V-RAW-zq7"} {
			if !bytes.Contains(b, []byte(known)) {
				t.Fatalf("the backend's bytes lack %q: the raw read misses what it should see", known)
			}
		}
		for _, secret := range []string{claim, reason, rejection, "zq7-"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("the backend holds %q in clear", secret)
			}
		}
		got, _ := h.Objection(ctx, one.Objection.ID)
		if opened, err := h.Open(got); err != nil || opened.Claim != claim || opened.History[2].Reason != reason {
			t.Errorf("opened %+v, %v", opened, err)
		}
	})

	t.Run("of two stewards deciding an objection at once exactly one wins", func(t *testing.T) {
		s := newStore(t)
		h := hubOn(s)
		sue := Actor{Subject: "sue", Dept: "health", Steward: true}
		for trial := range 30 {
			o := storedObjection(t, s, Accepted)
			acts := []Act{{Action: Correct, Reason: "fixed"}, {Action: Uphold, Reason: "right as it is"}}
			recipients := [][]string{{"police", "transport"}, nil}
			by := []Actor{sam, sue}
			errs := race(2, func(i int) error {
				_, err := h.ActOnObjection(ctx, o.ID, acts[i], by[i], recipients[i])
				return err
			})
			won := winner(t, trial, errs)
			got, _ := s.Objection(ctx, o.ID)
			if last := got.History[len(got.History)-1]; len(got.History) != 1 || last.By.Subject != by[won].Subject {
				t.Fatalf("trial %d: %s won but the stored objection holds %+v", trial, by[won].Subject, got.History)
			}
			ns, _ := s.Notices(ctx, Filter{Objection: o.ID})
			if want := map[Action]int{Correct: 2, Uphold: 0}[acts[won].Action]; len(ns) != want {
				t.Fatalf("trial %d: %d notices, want %d", trial, len(ns), want)
			}
		}
	})

	t.Run("of two people acknowledging a notice at once exactly one wins", func(t *testing.T) {
		s := newStore(t)
		h := hubOn(s)
		by := []Actor{rita, {Subject: "rob", Dept: "transport"}}
		for trial := range 30 {
			n := storedNotice(t, s)
			errs := race(2, func(i int) error { _, err := h.AckNotice(ctx, n.ID, by[i]); return err })
			won := winner(t, trial, errs)
			got, _ := s.Notice(ctx, n.ID)
			if got.AckedBy == nil || got.AckedBy.Subject != by[won].Subject || len(got.History) != 2 {
				t.Fatalf("trial %d: %s won but the stored notice holds %+v", trial, by[won].Subject, got.AckedBy)
			}
		}
	})

	t.Run("the sweep escalates objections by the calendar's working days", func(t *testing.T) {
		s := newStore(t)
		cal, err := ParseCalendar([]byte("holidays: [2026-03-03]\n"))
		if err != nil {
			t.Fatal(err)
		}
		clock := t0 // Monday 2 March 2026; Tuesday is a holiday
		h := New(s, Options{Calendar: cal, Sealer: testSealer, Now: func() time.Time { return clock }})
		in := ObjectionInput{Dataset: "health/visits", RecordID: "V1", Claim: "wrong"}
		o, err := h.FileObjection(ctx, in, visits, alice, Eligibility{Received: true})
		if err != nil {
			t.Fatal(err)
		}
		sweep := func(at time.Time) []Transition {
			t.Helper()
			clock = at
			made, err := h.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return made
		}
		acceptDue := time.Date(2026, 3, 6, 0, 0, 0, 0, cal.Location()) // Wednesday, Thursday
		if made := sweep(acceptDue.Add(-time.Second)); len(made) != 0 {
			t.Errorf("swept before the due time: %+v", made)
		}
		made := sweep(acceptDue)
		if len(made) != 1 || made[0].Object != o.Objection.ID || made[0].From != Filed || made[0].To != Escalated || made[0].By.As != AsSystem {
			t.Fatalf("swept at the due time: %+v, want the objection escalated", made)
		}
		if again := sweep(acceptDue.Add(time.Hour)); len(again) != 0 {
			t.Errorf("a second sweep made %d transitions", len(again))
		}
		clock = time.Date(2026, 3, 6, 9, 0, 0, 0, cal.Location())
		a, err := h.ActOnObjection(ctx, o.Objection.ID, Act{Action: Accept}, cora, nil)
		if err != nil {
			t.Fatal(err)
		}
		resolveDue := time.Date(2026, 3, 21, 0, 0, 0, 0, cal.Location()) // 9–13 and 16–20 March
		if !a.Objection.Due.Equal(resolveDue) {
			t.Errorf("accepted by the coordinator, due %s, want %s", a.Objection.Due, resolveDue)
		}
		if made := sweep(resolveDue.Add(-time.Second)); len(made) != 0 {
			t.Errorf("swept before the resolution was due: %+v", made)
		}
		if made := sweep(resolveDue); len(made) != 1 || made[0].From != Accepted {
			t.Fatalf("swept at the resolution's due time: %+v", made)
		}
		if _, err := h.ActOnObjection(ctx, o.Objection.ID, Act{Action: Uphold, Reason: "right"}, cora, nil); err != nil {
			t.Errorf("the coordinator upholding an objection escalated once accepted: %v", err)
		}
	})

	t.Run("objection and notice lists filter, oldest first", func(t *testing.T) {
		s := newStore(t)
		mk := func(state State, filer Party, record string, age int) string {
			o := testObjectionID(newID("obj_"), state)
			o.Filer, o.RecordID, o.Created = filer, record, t0.AddDate(0, 0, -age)
			if err := s.CreateObjection(ctx, o); err != nil {
				t.Fatal(err)
			}
			return o.ID
		}
		police := Party{Subject: "alice", Dept: "police", As: AsRecipient}
		citizen := Party{Subject: "110101199003070011", As: AsDataSubject}
		a := mk(Filed, police, "V1", 3)
		b := mk(Accepted, citizen, "V1", 5)
		c := mk(Filed, citizen, "V2", 1)
		for _, tc := range []struct {
			f    Filter
			want []string
		}{
			{Filter{}, []string{b, a, c}},
			{Filter{State: Filed}, []string{a, c}},
			{Filter{Dept: "police"}, []string{a}},
			{Filter{Subject: citizen.Subject}, []string{b, c}},
			{Filter{Dataset: "health/visits", RecordID: "V1"}, []string{b, a}},
			{Filter{Owner: "civil"}, nil},
		} {
			obs, err := s.Objections(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range obs {
				got = append(got, o.ID)
			}
			if !slices.Equal(tc.want, got) {
				t.Errorf("%+v: %v, want %v", tc.f, got, tc.want)
			}
		}
		n := storedNotice(t, s)
		for f, want := range map[Filter]int{
			{Dept: "transport"}: 1, {Dept: "police"}: 0, {Objection: n.Objection}: 1, {State: Acknowledged}: 0,
			{RecordID: n.RecordID, Dataset: n.Dataset}: 1, {Subject: "alice"}: 0,
		} {
			if ns, err := s.Notices(ctx, f); err != nil || len(ns) != want {
				t.Errorf("%+v: %d notices, %v; want %d", f, len(ns), err, want)
			}
		}
	})
}

// race runs fn(0) … fn(n-1) at once and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// winner is the one of errs that is nil, every other being a conflict.
func winner(t *testing.T, trial int, errs []error) int {
	t.Helper()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won < 0:
			won = i
		case err == nil:
			t.Fatalf("trial %d: two won", trial)
		case !errors.Is(err, ErrConflict):
			t.Fatalf("trial %d: a loser got %v, want a conflict", trial, err)
		}
	}
	if won < 0 {
		t.Fatalf("trial %d: none won: %v", trial, errs)
	}
	return won
}
