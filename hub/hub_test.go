package hub

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestUnconditionalSharingIsApprovedAtOnceWithAGrant(t *testing.T) {
	ctx := context.Background()
	h := New(NewMemory(), Options{Now: func() time.Time { return t0 }})
	o, err := h.Submit(ctx, testRequest("").Submission, Dataset{Name: "health/visits", Sharing: Unconditional, Owner: "health"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	if o.Request.State != Approved || o.Grant == nil || o.Request.Grant != o.Grant.ID || !o.Grant.Effective(t0) {
		t.Fatalf("outcome %+v", o)
	}
	var got []string
	for _, tr := range o.Transitions {
		got = append(got, string(tr.From)+"→"+string(tr.To)+" by "+string(tr.By.As))
	}
	if want := "→submitted by requester, submitted→approved by system, →active by system"; strings.Join(got, ", ") != want {
		t.Errorf("transitions %q, want %q", strings.Join(got, ", "), want)
	}
	if o.Grant.Fields["visit_id"] != TreatmentCeiling || len(o.Grant.Fields) != 2 {
		t.Errorf("grant fields %v, want each requested field at the ceiling", o.Grant.Fields)
	}
}

func TestDatasetsNotSharedRefuseWithTheirBasis(t *testing.T) {
	h := New(NewMemory(), Options{Now: func() time.Time { return t0 }})
	ds := Dataset{Name: "health/visits", Sharing: None, Owner: "health", Basis: "Medical Records Regulation art. 15"}
	_, err := h.Submit(context.Background(), testRequest("").Submission, ds, alice)
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "art. 15") {
		t.Fatalf("got %v, want forbidden naming the basis", err)
	}
	if rs, _ := h.Store().Requests(context.Background(), Filter{}); len(rs) != 0 {
		t.Errorf("a refused submission stored %d requests", len(rs))
	}
}

func TestSubmissionsMustBeWellFormed(t *testing.T) {
	ds := Dataset{Name: "health/visits", Sharing: Conditional, Owner: "health"}
	for name, mod := range map[string]func(*Submission){
		"no dataset slash":     func(s *Submission) { s.Dataset = "visits" },
		"no fields":            func(s *Submission) { s.Fields = nil },
		"a field twice":        func(s *Submission) { s.Fields = []string{"a", "a"} },
		"no purpose":           func(s *Submission) { s.Purpose = " " },
		"no legal basis":       func(s *Submission) { s.LegalBasis = "" },
		"valid until the past": func(s *Submission) { s.ValidUntil = t0.Add(-time.Hour) },
	} {
		in := testRequest("").Submission
		mod(&in)
		if _, _, err := NewRequest(in, ds, alice, t0, t0.AddDate(0, 0, 14)); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want a bad request", name, err)
		}
	}
	if _, _, err := NewRequest(testRequest("").Submission, ds, System, t0, t0); !errors.Is(err, ErrForbidden) {
		t.Errorf("the system submitting: %v, want forbidden", err)
	}
}

func TestAnApprovalNarrowsNeverWidens(t *testing.T) {
	for name, c := range map[string]*Conditions{
		"a field not requested":      {Fields: map[string]any{"diagnosis": "keep"}},
		"a field without treatment":  {Fields: map[string]any{"district": nil}},
		"a later end than requested": {ValidUntil: t0.AddDate(2, 0, 0)},
		"an end in the past":         {ValidUntil: t0.Add(-time.Hour)},
		"negative max rows":          {MaxRows: -1},
		"k of one":                   {MinK: 1},
		"l without k":                {MinL: 2},
	} {
		r := testRequest(Submitted)
		if _, err := r.Apply(Act{Action: Approve, Conditions: c}, sam, t0, nil); !errors.Is(err, ErrBadRequest) || r.State != Submitted {
			t.Errorf("%s: %v (state %s), want a bad request", name, err, r.State)
		}
	}
}

// An approval's k-anonymity reaches the grant.
func TestAnApprovalsKAnonymityIsTheGrants(t *testing.T) {
	r := testRequest(Submitted)
	if _, err := r.Apply(Act{Action: Approve, Conditions: &Conditions{MinK: 5, MinL: 3}}, sam, t0, nil); err != nil {
		t.Fatal(err)
	}
	g, _, err := NewGrant(r, t0)
	if err != nil || g.MinK != 5 || g.MinL != 3 {
		t.Errorf("grant %+v, %v: want min_k 5, min_l 3", g, err)
	}
}

func TestSweepEscalatesOverdueWorkAndExpiresLapsedGrants(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	now := t0.Add(time.Minute)
	h := New(s, Options{Now: func() time.Time { return now }})
	overdue, fresh := testRequest(Submitted), testRequest(Submitted)
	fresh.ID, fresh.Due = "req_fresh", now.Add(time.Hour)
	paused := testRequest(NeedsInfo)
	paused.ID = "req_paused"
	lapsed, valid := testGrant(Active, now), testGrant(Suspended, now.Add(time.Hour))
	valid.ID = "grt_valid"
	approved := testRequest(Approved)
	approved.ID = "req_approved"
	for _, err := range []error{
		s.CreateRequest(ctx, overdue, nil), s.CreateRequest(ctx, fresh, nil), s.CreateRequest(ctx, paused, nil),
		s.CreateRequest(ctx, approved, lapsed), s.CreateRequest(ctx, &Request{ID: "req_other", Created: t0}, valid),
		s.CreateDemand(ctx, testDemand(Open)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	made, err := h.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range made {
		got = append(got, tr.Object+" "+string(tr.To))
	}
	if want := "req_test escalated, dmd_test escalated, grt_test expired"; strings.Join(got, ", ") != want {
		t.Errorf("sweep made %q, want %q", strings.Join(got, ", "), want)
	}
	if again, _ := h.Sweep(ctx); len(again) != 0 {
		t.Errorf("a second sweep made %d transitions", len(again))
	}
}

func TestApplicableGrantsMatchDeptDatasetPurposeAndTime(t *testing.T) {
	g := testGrant(Active, t0.AddDate(0, 1, 0))
	suspended := testGrant(Suspended, t0.AddDate(0, 1, 0))
	for name, tc := range map[string]struct {
		dept, dataset, purpose string
		at                     time.Time
		want                   int
	}{
		"the grant's own terms": {"police", "health/visits", "public-health", t0, 1},
		"another department":    {"civil", "health/visits", "public-health", t0, 0},
		"another purpose":       {"police", "health/visits", "marketing", t0, 0},
		"another dataset":       {"police", "health/beds", "public-health", t0, 0},
		"after valid_until":     {"police", "health/visits", "public-health", t0.AddDate(0, 1, 0), 0},
		"before valid_from":     {"police", "health/visits", "public-health", t0.AddDate(0, -2, 0), 0},
	} {
		if got := Applicable([]*Grant{g, suspended}, tc.dept, tc.dataset, tc.purpose, tc.at); len(got) != tc.want {
			t.Errorf("%s: %d grants apply, want %d", name, len(got), tc.want)
		}
	}
}
