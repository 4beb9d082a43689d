package hub

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testStore is the conformance suite every backend runs; newStore returns
// a fresh, empty store, and raw every byte the backend holds for one.
func testStore(t *testing.T, newStore func(t *testing.T) Store, raw rawBytes) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	hubOn := func(s Store) *Hub { return New(s, Options{Now: func() time.Time { return now }}) }

	// stored puts a fixture in state s into the store under a fresh id.
	storedRequest := func(t *testing.T, s Store, state State) *Request {
		t.Helper()
		r := testRequest(state)
		r.ID = newID("req_")
		if err := s.CreateRequest(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
		return r
	}
	storedGrant := func(t *testing.T, s Store, state State, until time.Time) *Grant {
		t.Helper()
		r := testRequest(Approved)
		r.ID = newID("req_")
		g := testGrant(state, until)
		g.ID, g.Request, r.Grant = newID("grt_"), r.ID, g.ID
		if err := s.CreateRequest(ctx, r, g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	storedDemand := func(t *testing.T, s Store, state State) *Demand {
		t.Helper()
		d := testDemand(state)
		d.ID = newID("dmd_")
		if err := s.CreateDemand(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("a submitted request reads back as it was stored", func(t *testing.T) {
		s := newStore(t)
		o, err := hubOn(s).Submit(ctx, testRequest("").Submission, Dataset{Name: "health/visits", Sharing: Conditional, Owner: "health"}, alice)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Request(ctx, o.Request.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(o.Request, got); diff != "" {
			t.Errorf("read back (-stored +read):\n%s", diff)
		}
		if got.State != Submitted || !got.Due.Equal(DefaultCalendar().Due(now, DefaultRequestDays)) || len(got.History) != 1 {
			t.Errorf("submitted request: %+v", got)
		}
	})

	t.Run("unknown ids are not found and taken ids are not created again", func(t *testing.T) {
		s := newStore(t)
		for name, err := range map[string]error{
			"request": func() error { _, err := s.Request(ctx, "req_none"); return err }(),
			"grant":   func() error { _, err := s.Grant(ctx, "grt_none"); return err }(),
			"demand":  func() error { _, err := s.Demand(ctx, "dmd_none"); return err }(),
			"empty":   func() error { _, err := s.Request(ctx, ""); return err }(),
			"update": func() error {
				_, err := s.UpdateGrant(ctx, "grt_none", func(*Grant) error { return nil })
				return err
			}(),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: %v, want not found", name, err)
			}
		}
		r := storedRequest(t, s, Submitted)
		if err := s.CreateRequest(ctx, r, nil); !errors.Is(err, ErrConflict) {
			t.Errorf("creating a request again: %v, want a conflict", err)
		}
	})

	t.Run("every allowed request transition is stored", func(t *testing.T) {
		s := newStore(t)
		h := hubOn(s)
		for _, row := range requests.rows[1:] {
			r := storedRequest(t, s, row.from)
			o, err := h.ActOnRequest(ctx, r.ID, Act{Action: row.action, Reason: "because"}, byRelation[row.who[0]])
			if err != nil {
				t.Fatalf("%s → %s by %s: %v", row.from, row.action, row.who[0], err)
			}
			got, _ := s.Request(ctx, r.ID)
			if got.State != row.to || o.Request.State != row.to || len(got.History) != 1 {
				t.Errorf("%s → %s: stored %s with %d transitions, want %s", row.from, row.action, got.State, len(got.History), row.to)
			}
		}
	})

	t.Run("every allowed grant and demand transition is stored", func(t *testing.T) {
		s := newStore(t)
		h := hubOn(s)
		for _, row := range grants.rows[1:] {
			until := now.AddDate(0, 1, 0)
			if row.action == Expire {
				until = now
			}
			g := storedGrant(t, s, row.from, until)
			if _, err := h.ActOnGrant(ctx, g.ID, Act{Action: row.action, Reason: "because"}, byRelation[row.who[0]]); err != nil {
				t.Fatalf("%s → %s: %v", row.from, row.action, err)
			}
			if got, _ := s.Grant(ctx, g.ID); got.State != row.to {
				t.Errorf("%s → %s: stored %s, want %s", row.from, row.action, got.State, row.to)
			}
		}
		for _, row := range demands.rows[1:] {
			d := storedDemand(t, s, row.from)
			act := Act{Action: row.action, Reason: "because", Dataset: "health/queues"}
			if _, err := h.ActOnDemand(ctx, d.ID, act, byRelation[row.who[0]]); err != nil {
				t.Fatalf("%s → %s: %v", row.from, row.action, err)
			}
			if got, _ := s.Demand(ctx, d.ID); got.State != row.to {
				t.Errorf("%s → %s: stored %s, want %s", row.from, row.action, got.State, row.to)
			}
		}
	})

	t.Run("a refused transition stores nothing", func(t *testing.T) {
		s := newStore(t)
		h := hubOn(s)
		for _, tc := range []struct {
			from  State
			act   Act
			by    Actor
			class error
		}{
			{Approved, Act{Action: Reject, Reason: "late"}, sam, ErrConflict},
			{Submitted, Act{Action: Approve}, alice, ErrForbidden},
			{Submitted, Act{Action: Approve}, cora, ErrForbidden},
			{Submitted, Act{Action: Reject}, sam, ErrBadRequest},
			{Withdrawn, Act{Action: Reply}, alice, ErrConflict},
		} {
			r := storedRequest(t, s, tc.from)
			before, _ := s.Request(ctx, r.ID)
			_, err := h.ActOnRequest(ctx, r.ID, tc.act, tc.by)
			if !errors.Is(err, tc.class) {
				t.Errorf("%s %s by %s: %v, want %v", tc.from, tc.act.Action, tc.by.Subject, err, tc.class)
			}
			if after, _ := s.Request(ctx, r.ID); !cmp.Equal(before, after) {
				t.Errorf("%s %s by %s changed the stored request", tc.from, tc.act.Action, tc.by.Subject)
			}
		}
		if gs, _ := s.Grants(ctx, Filter{}); len(gs) != 0 {
			t.Errorf("refusals made %d grants", len(gs))
		}
	})

	t.Run("an approval stores its grant with the request", func(t *testing.T) {
		s := newStore(t)
		r := storedRequest(t, s, Submitted)
		before, _ := s.GrantsVersion(ctx)
		o, err := hubOn(s).ActOnRequest(ctx, r.ID, Act{Action: Approve, Conditions: &Conditions{
			Fields: map[string]any{"district": map[string]any{"op": "generalize", "to": "city"}}, MaxRows: 500}}, sam)
		if err != nil {
			t.Fatal(err)
		}
		g, err := s.Grant(ctx, o.Request.Grant)
		if err != nil {
			t.Fatalf("the approval's grant %q: %v", o.Request.Grant, err)
		}
		want := &Grant{ID: g.ID, Request: r.ID, Dataset: "health/visits", Dept: "police", Owner: "health",
			Requester: r.Requester, Purpose: "public-health",
			Fields:    map[string]any{"district": map[string]any{"op": "generalize", "to": "city"}},
			ValidFrom: now, ValidUntil: r.ValidUntil, MaxRows: 500, State: Active, History: o.Grant.History}
		if diff := cmp.Diff(want, g); diff != "" {
			t.Errorf("grant (-want +got):\n%s", diff)
		}
		if len(o.Transitions) != 2 || o.Transitions[0].To != Approved || o.Transitions[1].To != Active {
			t.Errorf("transitions %+v, want the approval then the grant's issue", o.Transitions)
		}
		if after, _ := s.GrantsVersion(ctx); after == before {
			t.Error("an approval did not change the grants version")
		}
	})

	t.Run("of two stewards deciding at once exactly one wins", func(t *testing.T) {
		s := newStore(t)
		h := hubOn(s)
		sue := Actor{Subject: "sue", Dept: "health", Steward: true}
		for trial := range 50 {
			r := storedRequest(t, s, Submitted)
			acts := []Act{{Action: Approve}, {Action: Reject, Reason: "no"}}
			by := []Actor{sam, sue}
			errs := make([]error, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 2 {
				wg.Go(func() {
					<-start
					_, errs[i] = h.ActOnRequest(ctx, r.ID, acts[i], by[i])
				})
			}
			close(start)
			wg.Wait()
			won := -1
			for i, err := range errs {
				switch {
				case err == nil && won < 0:
					won = i
				case err == nil:
					t.Fatalf("trial %d: both decisions won", trial)
				case !errors.Is(err, ErrConflict):
					t.Fatalf("trial %d: the losing decision got %v, want a conflict", trial, err)
				}
			}
			if won < 0 {
				t.Fatalf("trial %d: neither decision won: %v", trial, errs)
			}
			got, _ := s.Request(ctx, r.ID)
			if got.Decision == nil || got.Decision.Action != acts[won].Action || got.Decision.By.Subject != by[won].Subject || len(got.History) != 1 {
				t.Fatalf("trial %d: %s won but the stored request holds %+v", trial, by[won].Subject, got.Decision)
			}
			grants, _ := s.Grants(ctx, Filter{Dataset: "health/visits"})
			n := 0
			for _, g := range grants {
				if g.Request == r.ID {
					n++
				}
			}
			if want := map[Action]int{Approve: 1, Reject: 0}[acts[won].Action]; n != want {
				t.Fatalf("trial %d: %d grants for the request, want %d", trial, n, want)
			}
		}
	})

	t.Run("lists filter by state, department, owner and dataset, oldest first", func(t *testing.T) {
		s := newStore(t)
		mk := func(state State, dept, dataset string, age int) string {
			r := testRequest(state)
			r.ID, r.Requester.Dept, r.Dataset, r.Created = newID("req_"), dept, dataset, t0.AddDate(0, 0, -age)
			if err := s.CreateRequest(ctx, r, nil); err != nil {
				t.Fatal(err)
			}
			return r.ID
		}
		a := mk(Submitted, "police", "health/visits", 3)
		b := mk(Submitted, "civil", "health/visits", 5)
		c := mk(Approved, "police", "health/beds", 4)
		d := mk(Escalated, "police", "health/visits", 1)
		for _, tc := range []struct {
			f    Filter
			want []string
		}{
			{Filter{}, []string{b, c, a, d}},
			{Filter{State: Submitted}, []string{b, a}},
			{Filter{Dept: "police"}, []string{c, a, d}},
			{Filter{Dataset: "health/visits", Dept: "police"}, []string{a, d}},
			{Filter{Owner: "health", State: Approved}, []string{c}},
			{Filter{Owner: "civil"}, []string{}},
		} {
			rs, err := s.Requests(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, r := range rs {
				got = append(got, r.ID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%+v (-want +got):\n%s", tc.f, diff)
			}
		}
		storedGrant(t, s, Suspended, now.AddDate(0, 1, 0))
		storedDemand(t, s, Open)
		if gs, _ := s.Grants(ctx, Filter{State: Suspended, Dept: "police"}); len(gs) != 1 {
			t.Errorf("%d suspended grants to the police, want 1", len(gs))
		}
		if ds, _ := s.Demands(ctx, Filter{State: Open, Owner: "health"}); len(ds) != 1 {
			t.Errorf("%d open demands of health, want 1", len(ds))
		}
	})

	t.Run("the grants version changes with every grant transition and only then", func(t *testing.T) {
		s := newStore(t)
		h := hubOn(s)
		seen := map[string]bool{}
		version := func() string {
			t.Helper()
			v, err := s.GrantsVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		changed := func(what string) {
			t.Helper()
			v := version()
			if seen[v] {
				t.Errorf("after %s the grants version %q is one seen before", what, v)
			}
			seen[v] = true
		}
		seen[version()] = true
		r := storedRequest(t, s, Submitted)
		if v := version(); !seen[v] {
			t.Error("storing a request changed the grants version")
		}
		o, err := h.ActOnRequest(ctx, r.ID, Act{Action: Approve}, sam)
		if err != nil {
			t.Fatal(err)
		}
		changed("an approval")
		for _, act := range []Act{{Action: Suspend, Reason: "audit"}, {Action: Resume, Reason: "ok"}, {Action: Revoke, Reason: "done"}} {
			if _, err := h.ActOnGrant(ctx, o.Grant.ID, act, cora); err != nil {
				t.Fatal(err)
			}
			changed(string(act.Action))
		}
		storedDemand(t, s, Open)
		if _, err := h.ActOnGrant(ctx, o.Grant.ID, Act{Action: Resume, Reason: "again"}, sam); !errors.Is(err, ErrConflict) {
			t.Errorf("resuming a revoked grant: %v", err)
		}
		if v := version(); !seen[v] {
			t.Error("a demand or a refused grant transition changed the grants version")
		}
	})

	t.Run("an update that fails stores nothing", func(t *testing.T) {
		s := newStore(t)
		g := storedGrant(t, s, Active, now.AddDate(0, 1, 0))
		v, _ := s.GrantsVersion(ctx)
		boom := errors.New("boom")
		_, err := s.UpdateGrant(ctx, g.ID, func(g *Grant) error { g.State = Revoked; return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want the function's error", err)
		}
		if got, _ := s.Grant(ctx, g.ID); got.State != Active {
			t.Errorf("stored %s after a failed update", got.State)
		}
		if after, _ := s.GrantsVersion(ctx); after != v {
			t.Error("a failed update changed the grants version")
		}
	})

	t.Run("objections and notices", func(t *testing.T) { testObjectionStore(t, newStore, raw) })
}
