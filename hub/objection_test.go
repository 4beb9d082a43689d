package hub

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The objection fixtures: the police received health's visit
// V2025000001 and alice objects to its diagnosis; sam of health decides;
// the record also went to transport, where rita works.
var rita = Actor{Subject: "rita", Dept: "transport"}

const testClaim = "the diagnosis is another patient's"

var visits = Dataset{Name: "health/visits", Sharing: Conditional, Owner: "health"}

// testObjection is alice's objection in state s, filed a week before t0
// and due at t0, its claim sealed as a store keeps it. An escalated one
// was escalated from Filed.
func testObjection(s State) *Objection { return testObjectionID("obj_test", s) }

func testObjectionID(id string, s State) *Objection {
	o := &Objection{ID: id, ObjectionInput: ObjectionInput{Dataset: "health/visits", RecordID: "V2025000001", Field: "diagnosis"},
		Owner: "health", Filer: Party{Subject: "alice", Dept: "police", As: AsRecipient}, State: s,
		Created: t0.AddDate(0, 0, -7), Due: t0}
	o.SealedClaim = testSealer.Seal(id, claimField, testClaim)
	if s == Escalated {
		o.EscalatedFrom = Filed
	}
	return o
}

func TestObjectionMachineWalksItsTable(t *testing.T) {
	walk(t, machine{
		table:   &objections,
		states:  []State{Filed, Accepted, Rejected, Corrected, Upheld, Escalated},
		actions: []Action{File, Accept, Reject, Correct, Uphold, Escalate, Approve},
		apply: func(from State, act Act, by Actor) (State, []Transition, error) {
			o := testObjection(from)
			if act.Action == Correct || act.Action == Uphold {
				o.EscalatedFrom = Accepted
			}
			_, err := o.Apply(act, by, t0.Add(time.Hour), t0.AddDate(0, 0, 14))
			return o.State, o.History, err
		},
	})
}

func TestObjectionsAreFiledByAReceivingDepartmentOrTheRecordsSubjectOnly(t *testing.T) {
	citizen := Actor{Subject: "110101199003070011"}
	for name, tc := range map[string]struct {
		by    Actor
		e     Eligibility
		as    Relation // "" for refused
		dept  string
		class error
	}{
		"a department that received the record": {alice, Eligibility{Received: true}, AsRecipient, "police", nil},
		"the person the record is about":        {citizen, Eligibility{Subject: true}, AsDataSubject, "", nil},
		"the person, from their department":     {Actor{Subject: "carl", Dept: "police"}, Eligibility{Subject: true}, AsDataSubject, "", nil},
		"both: as the department":               {alice, Eligibility{Received: true, Subject: true}, AsRecipient, "police", nil},
		"neither":                               {alice, Eligibility{}, "", "", ErrForbidden},
		"a citizen claiming receipt":            {citizen, Eligibility{Received: true}, "", "", ErrForbidden},
		"the owning department":                 {sam, Eligibility{Received: true}, "", "", ErrForbidden},
		"the system":                            {System, Eligibility{Received: true, Subject: true}, "", "", ErrForbidden},
		"a token without a subject":             {Actor{Dept: "police"}, Eligibility{Received: true}, "", "", ErrForbidden},
	} {
		in := ObjectionInput{Dataset: "health/visits", RecordID: "V2025000001", Field: "diagnosis", Claim: testClaim}
		o, tr, err := NewObjection(in, visits, tc.by, tc.e, t0, t0.AddDate(0, 0, 3))
		if tc.class != nil {
			if !errors.Is(err, tc.class) || o != nil {
				t.Errorf("%s: %v, want %v", name, err, tc.class)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want := Party{Subject: tc.by.Subject, Dept: tc.dept, As: tc.as}
		if o.Filer != want || tr.By != want || o.State != Filed || tr.From != "" || tr.To != Filed || tr.Reason != "" {
			t.Errorf("%s: filer %+v, transition %+v; want filed by %+v", name, o.Filer, tr, want)
		}
		if !strings.HasPrefix(o.ID, "obj_") || len(o.ID) != 24 || o.Owner != "health" || !o.Due.Equal(t0.AddDate(0, 0, 3)) {
			t.Errorf("%s: %+v", name, o)
		}
	}
}

func TestObjectionsMustBeWellFormed(t *testing.T) {
	for name, mod := range map[string]func(*ObjectionInput, *Dataset){
		"no dataset slash":          func(in *ObjectionInput, _ *Dataset) { in.Dataset = "visits" },
		"another dataset's entry":   func(in *ObjectionInput, _ *Dataset) { in.Dataset = "health/beds" },
		"no record":                 func(in *ObjectionInput, _ *Dataset) { in.RecordID = " " },
		"no claim":                  func(in *ObjectionInput, _ *Dataset) { in.Claim = "\t" },
		"a dataset without owner":   func(_ *ObjectionInput, ds *Dataset) { ds.Owner = "" },
		"no claim, no record, both": func(in *ObjectionInput, _ *Dataset) { in.Claim, in.RecordID = "", "" },
	} {
		in, ds := ObjectionInput{Dataset: "health/visits", RecordID: "V1", Claim: "wrong"}, visits
		mod(&in, &ds)
		if _, _, err := NewObjection(in, ds, alice, Eligibility{Received: true}, t0, t0); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want a bad request", name, err)
		}
	}
	in := ObjectionInput{Dataset: "health/visits", RecordID: "V1", Claim: "the whole record is not mine"}
	if _, _, err := NewObjection(in, visits, alice, Eligibility{Received: true}, t0, t0); err != nil {
		t.Errorf("an objection to a whole record (no field): %v", err)
	}
}

func TestAnEscalatedObjectionTakesTheDecisionsOfTheStageItMissed(t *testing.T) {
	for _, tc := range []struct {
		from    State
		allowed []Action
		refused []Action
	}{
		{Filed, []Action{Accept, Reject}, []Action{Correct, Uphold}},
		{Accepted, []Action{Correct, Uphold}, []Action{Accept, Reject}},
	} {
		o := testObjection(Escalated)
		o.EscalatedFrom = tc.from
		if diff := cmp.Diff(tc.allowed, o.Allowed(cora)); diff != "" {
			t.Errorf("escalated from %s: the coordinator's actions (-want +got):\n%s", tc.from, diff)
		}
		for _, a := range tc.refused {
			o := testObjection(Escalated)
			o.EscalatedFrom = tc.from
			_, err := o.Apply(Act{Action: a, Reason: "late"}, cora, t0.Add(time.Hour), t0.AddDate(0, 0, 14))
			if !errors.Is(err, ErrConflict) || o.State != Escalated || len(o.History) != 0 {
				t.Errorf("escalated from %s, %s: %v (state %s), want a conflict", tc.from, a, err, o.State)
			}
		}
		for _, a := range tc.allowed {
			for _, by := range []Actor{cora, sam} {
				o := testObjection(Escalated)
				o.EscalatedFrom = tc.from
				if _, err := o.Apply(Act{Action: a, Reason: "late"}, by, t0.Add(time.Hour), t0.AddDate(0, 0, 14)); err != nil {
					t.Errorf("escalated from %s, %s by %s: %v", tc.from, a, by.Subject, err)
				}
				if o.EscalatedFrom != "" {
					t.Errorf("decided, it still says escalated from %s", o.EscalatedFrom)
				}
			}
		}
	}
	o := testObjection(Accepted)
	if _, err := o.Apply(Act{Action: Escalate}, System, t0, time.Time{}); err != nil || o.EscalatedFrom != Accepted {
		t.Errorf("escalating an accepted objection: %v, escalated from %q", err, o.EscalatedFrom)
	}
}

func TestAnAcceptanceStartsTheResolutionClock(t *testing.T) {
	resolveBy := t0.AddDate(0, 0, 14)
	for _, tc := range []struct {
		from State
		by   Actor
	}{{Filed, sam}, {Escalated, cora}} {
		o := testObjection(tc.from)
		if _, err := o.Apply(Act{Action: Accept}, tc.by, t0.Add(time.Hour), resolveBy); err != nil {
			t.Fatal(err)
		}
		if o.State != Accepted || !o.Due.Equal(resolveBy) {
			t.Errorf("accepted from %s: %s due %s, want accepted due %s", tc.from, o.State, o.Due, resolveBy)
		}
	}
	o := testObjection(Filed)
	if _, err := o.Apply(Act{Action: Escalate}, System, t0.Add(-time.Second), time.Time{}); !errors.Is(err, ErrConflict) {
		t.Errorf("escalating before the due time: %v, want a conflict", err)
	}
	if !o.Overdue(t0) || o.Overdue(t0.Add(-time.Second)) || testObjection(Escalated).Overdue(t0) {
		t.Error("Overdue disagrees with the due time")
	}
}

func TestNoOneDecidesTheirOwnObjection(t *testing.T) {
	for name, tc := range map[string]struct {
		filer Party
		by    Actor
	}{
		"a citizen who is a steward of the owner": {Party{Subject: "110101199003070011", As: AsDataSubject},
			Actor{Subject: "110101199003070011", Dept: "health", Steward: true}},
		"a filer who is the coordinator": {Party{Subject: "alice", Dept: "police", As: AsRecipient},
			Actor{Subject: "alice", Dept: "police", Coordinator: true}},
	} {
		for _, from := range []State{Filed, Accepted, Escalated} {
			o := testObjection(from)
			o.Filer = tc.filer
			act := Act{Action: Accept}
			if from == Accepted {
				act = Act{Action: Correct, Reason: "mine"}
			}
			_, err := o.Apply(act, tc.by, t0.Add(time.Hour), t0.AddDate(0, 0, 14))
			expectClass(t, err, ErrForbidden)
			if !strings.Contains(err.Error(), "their own objection") {
				t.Errorf("%s, %s: %v, want it to say why", name, from, err)
			}
		}
	}
}

func TestObjectionDecisionsThatNeedAReason(t *testing.T) {
	for _, tc := range []struct {
		from State
		act  Action
		by   Actor
	}{{Filed, Reject, sam}, {Accepted, Correct, sam}, {Accepted, Uphold, sam}, {Escalated, Reject, cora}} {
		_, err := testObjection(tc.from).Apply(Act{Action: tc.act, Reason: " "}, tc.by, t0, t0)
		expectClass(t, err, ErrBadRequest)
	}
	if _, err := testObjection(Filed).Apply(Act{Action: Accept}, sam, t0, t0.AddDate(0, 0, 14)); err != nil {
		t.Errorf("an acceptance without a reason: %v", err)
	}
}

func TestObjectionClocksRunOnTheCalendarsWorkingDays(t *testing.T) {
	ctx := context.Background()
	cal, err := ParseCalendar([]byte("holidays: [2026-03-03]\n"))
	if err != nil {
		t.Fatal(err)
	}
	now := t0 // Monday 2 March; Tuesday is a holiday
	loc := cal.Location()
	for _, tc := range []struct {
		accept, resolve       int
		acceptDue, resolveDue time.Time
		acceptedAt            time.Time
	}{
		// The defaults: 2 working days to accept (Wed, Thu), 10 to
		// resolve from Friday's acceptance (9–13, 16–20 March).
		{0, 0, time.Date(2026, 3, 6, 0, 0, 0, 0, loc), time.Date(2026, 3, 21, 0, 0, 0, 0, loc),
			time.Date(2026, 3, 6, 9, 0, 0, 0, loc)},
		{3, 1, time.Date(2026, 3, 7, 0, 0, 0, 0, loc), time.Date(2026, 3, 10, 0, 0, 0, 0, loc),
			time.Date(2026, 3, 6, 9, 0, 0, 0, loc)},
	} {
		now = t0
		h := New(NewMemory(), Options{Calendar: cal, Sealer: testSealer, ObjectionAccept: tc.accept,
			ObjectionResolve: tc.resolve, Now: func() time.Time { return now }})
		o, err := h.FileObjection(ctx, ObjectionInput{Dataset: "health/visits", RecordID: "V1", Claim: "wrong"}, visits, alice,
			Eligibility{Received: true})
		if err != nil {
			t.Fatal(err)
		}
		if !o.Objection.Due.Equal(tc.acceptDue) {
			t.Errorf("%d days to accept: due %s, want %s", tc.accept, o.Objection.Due, tc.acceptDue)
		}
		now = tc.acceptedAt
		a, err := h.ActOnObjection(ctx, o.Objection.ID, Act{Action: Accept}, sam, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Objection.Due.Equal(tc.resolveDue) {
			t.Errorf("%d days to resolve: due %s, want %s", tc.resolve, a.Objection.Due, tc.resolveDue)
		}
	}
}

func TestWithoutASealerObjectionsFailClosed(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	h := New(s, Options{Now: func() time.Time { return t0 }})
	in := ObjectionInput{Dataset: "health/visits", RecordID: "V1", Claim: testClaim}
	if _, err := h.FileObjection(ctx, in, visits, alice, Eligibility{Received: true}); !errors.Is(err, ErrNoSealer) {
		t.Errorf("filing: %v, want ErrNoSealer", err)
	}
	if obs, _ := s.Objections(ctx, Filter{}); len(obs) != 0 {
		t.Errorf("a hub without a sealer stored %d objections", len(obs))
	}
	o := testObjection(Filed)
	if err := s.CreateObjection(ctx, o); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ActOnObjection(ctx, o.ID, Act{Action: Reject, Reason: "not an error"}, sam, nil); !errors.Is(err, ErrNoSealer) {
		t.Errorf("deciding: %v, want ErrNoSealer", err)
	}
	if got, _ := s.Objection(ctx, o.ID); got.State != Filed {
		t.Errorf("a hub without a sealer decided the objection: %s", got.State)
	}
	if _, err := h.Open(o); !errors.Is(err, ErrNoSealer) {
		t.Errorf("opening: %v, want ErrNoSealer", err)
	}
}

func TestTheHubSealsWhatItStoresAndOpensItForItsReaders(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	h := New(s, Options{Sealer: testSealer, Now: func() time.Time { return t0 }})
	in := ObjectionInput{Dataset: "health/visits", RecordID: "V1", Field: "diagnosis", Claim: testClaim}
	filed, err := h.FileObjection(ctx, in, visits, alice, Eligibility{Received: true})
	if err != nil {
		t.Fatal(err)
	}
	if filed.Objection.Claim != testClaim || filed.Objection.SealedClaim != nil {
		t.Errorf("the filer's outcome: claim %q, sealed %x; want the claim open", filed.Objection.Claim, filed.Objection.SealedClaim)
	}
	id := filed.Objection.ID
	if _, err := h.ActOnObjection(ctx, id, Act{Action: Accept, Reason: "looking into it"}, sam, nil); err != nil {
		t.Fatal(err)
	}
	done, err := h.ActOnObjection(ctx, id, Act{Action: Correct, Reason: "the diagnosis was swapped"}, sam, []string{"police"})
	if err != nil {
		t.Fatal(err)
	}
	if tr := done.Transitions[0]; tr.Reason != "the diagnosis was swapped" || tr.SealedReason != nil {
		t.Errorf("the transition for the trail: %+v, want its reason in clear (the trail keyed-hashes it)", tr)
	}

	stored, err := s.Objection(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Claim != "" || stored.SealedClaim == nil {
		t.Errorf("stored claim %q, sealed %d bytes; want it sealed only", stored.Claim, len(stored.SealedClaim))
	}
	for i, tr := range stored.History {
		if tr.Reason != "" || (i > 0) != (tr.SealedReason != nil) {
			t.Errorf("stored history %d: reason %q, sealed %d bytes", i, tr.Reason, len(tr.SealedReason))
		}
	}
	opened, err := h.Open(stored)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, tr := range opened.History {
		reasons = append(reasons, tr.Reason)
	}
	if diff := cmp.Diff([]string{"", "looking into it", "the diagnosis was swapped"}, reasons); diff != "" || opened.Claim != testClaim {
		t.Errorf("opened claim %q, reasons (-want +got):\n%s", opened.Claim, diff)
	}
	if stored.Claim != "" || stored.History[1].Reason != "" {
		t.Error("opening changed the objection it opened")
	}

	// A sealed text moved to another objection, or to another place in
	// the same one, does not open, and nothing of it is shown.
	other := testObjectionID("obj_other", Filed)
	other.SealedClaim = stored.SealedClaim
	if got, err := h.Open(other); !errors.Is(err, errUnopenable) || got != nil {
		t.Errorf("a claim moved to another objection: %v", err)
	}
	swapped := *stored
	swapped.History = append([]Transition(nil), stored.History...)
	swapped.History[1].SealedReason, swapped.History[2].SealedReason = stored.History[2].SealedReason, stored.History[1].SealedReason
	if _, err := h.Open(&swapped); !errors.Is(err, errUnopenable) {
		t.Errorf("two reasons swapped: %v", err)
	}
	keyless := New(s, Options{Sealer: mustSealer(make([]byte, SealerKeySize))})
	if _, err := keyless.Open(stored); !errors.Is(err, errUnopenable) {
		t.Errorf("opened under another key: %v", err)
	}
}

func TestStoresRefuseObjectionTextInClear(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	o := testObjection(Filed)
	o.Claim = testClaim
	if err := s.CreateObjection(ctx, o); !errors.Is(err, errInClear) {
		t.Fatalf("creating with the claim in clear: %v", err)
	}
	if _, err := s.Objection(ctx, o.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused objection was stored: %v", err)
	}
	o.Claim = ""
	if err := s.CreateObjection(ctx, o); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateObjection(ctx, o.ID, func(o *Objection) ([]*Notice, error) {
		_, err := o.Apply(Act{Action: Reject, Reason: "not an error"}, sam, t0, t0)
		return nil, err
	})
	if !errors.Is(err, errInClear) {
		t.Errorf("updating with a reason in clear: %v", err)
	}
	if got, _ := s.Objection(ctx, o.ID); got.State != Filed || len(got.History) != 0 {
		t.Errorf("a refused update was stored: %s", got.State)
	}
}

// A person asks why a release of their data was made: an objection to
// the release rather than a record, which goes to the department the
// gateway names as owner (the one that received it). Only the person may
// ask, and never about a record and a release at once.
func TestAPersonAsksAboutAReleaseOfTheirData(t *testing.T) {
	person := Actor{Subject: "zhang"}
	bureau := Dataset{Name: "health/visits", Owner: "stats-bureau"}
	in := ObjectionInput{Dataset: "health/visits", Release: "4f1c0c5e9a", Claim: "why my diagnosis?"}
	o, tr, err := NewObjection(in, bureau, person, Eligibility{Subject: true}, t0, t0.AddDate(0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if o.Owner != "stats-bureau" || o.Filer.As != AsDataSubject || o.RecordID != "" || tr.To != Filed {
		t.Errorf("asked %+v", o)
	}
	for name, tc := range map[string]struct {
		in   ObjectionInput
		by   Actor
		e    Eligibility
		want error
	}{
		"by a department":        {in, Actor{Subject: "rita", Dept: "transport"}, Eligibility{Received: true}, ErrForbidden},
		"a record and a release": {ObjectionInput{Dataset: "health/visits", RecordID: "V1", Release: "r", Claim: "x"}, person, Eligibility{Subject: true}, ErrBadRequest},
		"neither":                {ObjectionInput{Dataset: "health/visits", Claim: "x"}, person, Eligibility{Subject: true}, ErrBadRequest},
	} {
		if _, _, err := NewObjection(tc.in, bureau, tc.by, tc.e, t0, t0); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}
