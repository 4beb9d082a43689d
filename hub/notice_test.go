package hub

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testNotice is a notice to transport of the correction of alice's
// objection, in state s.
func testNotice(s State) *Notice {
	return &Notice{ID: "ntc_test", Objection: "obj_test", Dataset: "health/visits", RecordID: "V2025000001",
		Field: "diagnosis", Owner: "health", Dept: "transport", State: s, Created: t0.AddDate(0, 0, -1)}
}

func TestNoticeMachineWalksItsTable(t *testing.T) {
	walk(t, machine{
		table:   &notices,
		states:  []State{Pending, Acknowledged},
		actions: []Action{Notify, Acknowledge, Accept},
		cast:    map[Relation]Actor{AsRecipient: rita, AsOwnerSteward: sam, AsCoordinator: cora, AsSystem: System},
		apply: func(from State, act Act, by Actor) (State, []Transition, error) {
			n := testNotice(from)
			_, err := n.Apply(act, by, t0)
			return n.State, n.History, err
		},
	})
}

// corrected files alice's objection on h and has sam accept and correct
// it, notifying depts.
func corrected(t *testing.T, h *Hub, depts ...string) Outcome {
	t.Helper()
	ctx := context.Background()
	in := ObjectionInput{Dataset: "health/visits", RecordID: "V2025000001", Field: "diagnosis", Claim: testClaim}
	o, err := h.FileObjection(ctx, in, visits, alice, Eligibility{Received: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ActOnObjection(ctx, o.Objection.ID, Act{Action: Accept}, sam, nil); err != nil {
		t.Fatal(err)
	}
	out, err := h.ActOnObjection(ctx, o.Objection.ID, Act{Action: Correct, Reason: "fixed"}, sam, depts)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestACorrectionNotifiesEachRecipientOnceAndNeverTheOwner(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	h := New(s, Options{Sealer: testSealer, Now: func() time.Time { return t0 }})
	out := corrected(t, h, "transport", "police", "health", "", "transport")
	if diff := cmp.Diff([]string{"police", "transport"}, out.Objection.Recipients); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	var got []string
	for _, tr := range out.Transitions {
		got = append(got, tr.Object[:4]+" "+string(tr.From)+"→"+string(tr.To)+" by "+string(tr.By.As))
	}
	want := "obj_ accepted→corrected by owner_steward, ntc_ →pending by system, ntc_ →pending by system"
	if strings.Join(got, ", ") != want {
		t.Errorf("transitions %q, want %q", strings.Join(got, ", "), want)
	}
	stored, err := s.Notices(ctx, Filter{Objection: out.Objection.ID})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(stored, func(a, b *Notice) int { return strings.Compare(a.Dept, b.Dept) })
	if diff := cmp.Diff(out.Notices, stored); diff != "" || len(stored) != 2 {
		t.Errorf("stored notices (-outcome +stored):\n%s", diff)
	}
	for _, n := range stored {
		if n.State != Pending || n.RecordID != "V2025000001" || n.Field != "diagnosis" || n.Dataset != "health/visits" ||
			n.Owner != "health" || !n.Created.Equal(t0) || n.AckedBy != nil {
			t.Errorf("notice %+v", n)
		}
	}
}

func TestOnlyACorrectionNotifies(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	h := New(s, Options{Sealer: testSealer, Now: func() time.Time { return t0 }})
	o := testObjection(Accepted)
	if err := s.CreateObjection(ctx, o); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ActOnObjection(ctx, o.ID, Act{Action: Uphold, Reason: "correct as it is"}, sam, []string{"police"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("upholding with recipients: %v, want a bad request", err)
	}
	if got, _ := s.Objection(ctx, o.ID); got.State != Accepted {
		t.Errorf("the refused decision was stored: %s", got.State)
	}
	out, err := h.ActOnObjection(ctx, o.ID, Act{Action: Correct, Reason: "fixed"}, sam, nil)
	if err != nil || len(out.Notices) != 0 || len(out.Transitions) != 1 {
		t.Errorf("a correction of a record no one received: %+v, %v", out, err)
	}
}

func TestANoticeIsAcknowledgedOnceByAPersonOfItsDepartment(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	now := t0
	h := New(s, Options{Sealer: testSealer, Now: func() time.Time { return now }})
	out := corrected(t, h, "transport", "police")
	toTransport := out.Notices[1]
	for name, by := range map[string]Actor{
		"a person of another recipient":  alice,
		"the owning steward":             sam,
		"the coordinator":                cora,
		"the system":                     System,
		"a transport token without name": {Dept: "transport"},
	} {
		if _, err := h.AckNotice(ctx, toTransport.ID, by); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: %v, want forbidden", name, err)
		}
	}
	now = t0.Add(time.Hour)
	acked, err := h.AckNotice(ctx, toTransport.ID, rita)
	if err != nil {
		t.Fatal(err)
	}
	n := acked.Notices[0]
	want := Party{Subject: "rita", Dept: "transport", As: AsRecipient}
	if n.State != Acknowledged || !n.AckedAt.Equal(now) || n.AckedBy == nil || *n.AckedBy != want {
		t.Errorf("acknowledged notice %+v", n)
	}
	if tr := acked.Transitions[0]; tr.Object != n.ID || tr.From != Pending || tr.To != Acknowledged || tr.By != want {
		t.Errorf("transition %+v", tr)
	}
	now = t0.Add(2 * time.Hour)
	_, err = h.AckNotice(ctx, toTransport.ID, Actor{Subject: "rob", Dept: "transport"})
	expectClass(t, err, ErrConflict)
	if got, _ := s.Notice(ctx, toTransport.ID); got.AckedBy.Subject != "rita" || !got.AckedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("a second acknowledgement replaced the first: %+v", got.AckedBy)
	}
	if _, err := h.AckNotice(ctx, "ntc_none", rita); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown notice: %v", err)
	}
}

func TestTheObjectionShowsWhoAcknowledged(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	h := New(s, Options{Sealer: testSealer, Now: func() time.Time { return t0 }})
	out := corrected(t, h, "transport", "police")
	if _, err := h.AckNotice(ctx, out.Notices[1].ID, rita); err != nil {
		t.Fatal(err)
	}
	want := []Ack{{Dept: "transport", Notice: out.Notices[1].ID, At: t0, By: Party{Subject: "rita", Dept: "transport", As: AsRecipient}}}
	one, err := h.Objection(ctx, out.Objection.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, one.Acks); diff != "" {
		t.Errorf("the objection's acks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"police", "transport"}, one.Recipients); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	if opened, err := h.Open(one); err != nil || len(opened.Acks) != 1 {
		t.Errorf("opened: %v, acks %+v", err, opened)
	}
	other := testObjectionID("obj_other", Filed)
	if err := s.CreateObjection(ctx, other); err != nil {
		t.Fatal(err)
	}
	all, err := h.Objections(ctx, Filter{Owner: "health"})
	if err != nil || len(all) != 2 {
		t.Fatalf("%d objections, %v", len(all), err)
	}
	for _, o := range all {
		if o.ID == out.Objection.ID && !cmp.Equal(want, o.Acks) || o.ID == other.ID && o.Acks != nil {
			t.Errorf("listed %s with acks %+v", o.ID, o.Acks)
		}
	}
	if stored, _ := s.Objection(ctx, out.Objection.ID); stored.Acks != nil {
		t.Error("the store keeps acks on the objection; they are the notices'")
	}
}

func TestNoticesAreTheirDepartments(t *testing.T) {
	ctx := context.Background()
	h := New(NewMemory(), Options{Sealer: testSealer, Now: func() time.Time { return t0 }})
	out := corrected(t, h, "transport", "police")
	got, err := h.Notices(ctx, "transport")
	if err != nil || len(got) != 1 || got[0].ID != out.Notices[1].ID {
		t.Errorf("transport's notices: %+v, %v", got, err)
	}
	if got, _ := h.Notices(ctx, "health"); len(got) != 0 {
		t.Errorf("the owner has %d notices", len(got))
	}
	if _, err := h.Notices(ctx, ""); !errors.Is(err, ErrForbidden) {
		t.Errorf("notices of no department: %v, want forbidden", err)
	}
}
