package hub

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The cast of the state-machine tests: alice of the police asks for
// health's data; sam is a steward of health; cora is the coordinator.
var (
	alice = Actor{Subject: "alice", Dept: "police"}
	sam   = Actor{Subject: "sam", Dept: "health", Steward: true}
	cora  = Actor{Subject: "cora", Dept: "authority", Coordinator: true}

	// byRelation is an actor holding each relation to the test objects.
	byRelation = map[Relation]Actor{AsRequester: alice, AsOwnerSteward: sam, AsCoordinator: cora, AsSystem: System}
	// outsiders hold no relation to them.
	outsiders = map[string]Actor{
		"a colleague of the requester":      {Subject: "carl", Dept: "police"},
		"a steward of the requester's dept": {Subject: "paul", Dept: "police", Steward: true},
		"a steward of another dept":         {Subject: "oscar", Dept: "civil", Steward: true},
		"the requester's subject elsewhere": {Subject: "alice", Dept: "civil"},
		"a token without a subject":         {Dept: "health", Steward: true, Coordinator: true},
		"a token posing as the system":      {Subject: "sluice"},
	}
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, DefaultCalendar().Location()) // a Monday

// row is a transition table row as the tests spell it.
type row struct {
	from   State
	action Action
	to     State
	who    []Relation
	reason bool
}

func rowsOf(t *table) []row {
	out := make([]row, len(t.rows))
	for i, r := range t.rows {
		out[i] = row(r)
	}
	return out
}

var (
	requester, steward, coordinator, system = AsRequester, AsOwnerSteward, AsCoordinator, AsSystem
	recipient, dataSubject                  = AsRecipient, AsDataSubject
)

func TestTablesAreTheContract(t *testing.T) {
	for _, tc := range []struct {
		table *table
		want  []row
	}{
		{&requests, []row{
			{"", Submit, Submitted, []Relation{requester}, false},
			{Submitted, Approve, Approved, []Relation{steward, system}, false},
			{Submitted, Reject, Rejected, []Relation{steward}, true},
			{Submitted, NeedInfo, NeedsInfo, []Relation{steward}, true},
			{Submitted, Withdraw, Withdrawn, []Relation{requester}, false},
			{Submitted, Escalate, Escalated, []Relation{system}, false},
			{NeedsInfo, Reply, Submitted, []Relation{requester}, false},
			{NeedsInfo, Withdraw, Withdrawn, []Relation{requester}, false},
			{Escalated, Approve, Approved, []Relation{coordinator, steward}, false},
			{Escalated, Reject, Rejected, []Relation{coordinator, steward}, true},
			{Escalated, Withdraw, Withdrawn, []Relation{requester}, false},
		}},
		{&grants, []row{
			{"", Issue, Active, []Relation{system}, false},
			{Active, Suspend, Suspended, []Relation{steward, coordinator}, true},
			{Suspended, Resume, Active, []Relation{steward, coordinator}, true},
			{Active, Revoke, Revoked, []Relation{steward, coordinator}, true},
			{Suspended, Revoke, Revoked, []Relation{steward, coordinator}, true},
			{Active, Expire, Expired, []Relation{system}, false},
			{Suspended, Expire, Expired, []Relation{system}, false},
		}},
		{&demands, []row{
			{"", File, Open, []Relation{requester}, false},
			{Open, Publish, Published, []Relation{steward}, false},
			{Open, Refuse, Refused, []Relation{steward}, true},
			{Open, Escalate, Escalated, []Relation{system}, false},
			{Escalated, Publish, Published, []Relation{coordinator, steward}, false},
			{Escalated, Refuse, Refused, []Relation{coordinator, steward}, true},
		}},
		{&objections, []row{
			{"", File, Filed, []Relation{recipient, dataSubject}, false},
			{Filed, Accept, Accepted, []Relation{steward}, false},
			{Filed, Reject, Rejected, []Relation{steward}, true},
			{Filed, Escalate, Escalated, []Relation{system}, false},
			{Accepted, Correct, Corrected, []Relation{steward}, true},
			{Accepted, Uphold, Upheld, []Relation{steward}, true},
			{Accepted, Escalate, Escalated, []Relation{system}, false},
			{Escalated, Accept, Accepted, []Relation{coordinator, steward}, false},
			{Escalated, Reject, Rejected, []Relation{coordinator, steward}, true},
			{Escalated, Correct, Corrected, []Relation{coordinator, steward}, true},
			{Escalated, Uphold, Upheld, []Relation{coordinator, steward}, true},
		}},
		{&notices, []row{
			{"", Notify, Pending, []Relation{system}, false},
			{Pending, Acknowledge, Acknowledged, []Relation{recipient}, false},
		}},
	} {
		if diff := cmp.Diff(tc.want, rowsOf(tc.table), cmp.AllowUnexported(row{})); diff != "" {
			t.Errorf("%s table (-want +got):\n%s", tc.table.kind, diff)
		}
	}
}

// machine is one state machine under test: apply puts a fresh object in
// state from (ready for act: due, or lapsed, when act needs it), applies
// act by by, and returns the state after and the history's length. cast
// is an actor holding each relation to the object (nil: byRelation).
type machine struct {
	table   *table
	states  []State
	actions []Action
	apply   func(from State, act Act, by Actor) (State, []Transition, error)
	cast    map[Relation]Actor
}

// walk tries every action from every state by every actor. A row of the
// table whose relations the actor holds moves the object to the row's
// state and records the transition; anything else is refused, leaving
// the state as it was: a bad request for an action the machine does not
// know, forbidden when the actor holds none of the
// relations that may ever take the action, else a conflict when no row
// leads from this state, else forbidden.
func walk(t *testing.T, m machine) {
	actors := map[string]Actor{}
	held := map[string][]Relation{}
	cast := m.cast
	if cast == nil {
		cast = byRelation
	}
	for rel, a := range cast {
		actors[string(rel)], held[string(rel)] = a, []Relation{rel}
	}
	for name, a := range outsiders {
		actors[name] = a
	}
	for _, from := range m.states {
		for _, action := range m.actions {
			for name, by := range actors {
				t.Run(fmt.Sprintf("%s/%s/%s", from, action, name), func(t *testing.T) {
					act := Act{Action: action, Reason: "because", Dataset: "civil/assistance"}
					to, history, err := m.apply(from, act, by)
					var want *rule
					ever := false
					for i, r := range m.table.rows {
						may := slices.ContainsFunc(r.who, func(w Relation) bool { return slices.Contains(held[name], w) })
						ever = ever || (r.action == action && may)
						if r.from == from && r.action == action && may {
							want = &m.table.rows[i]
						}
					}
					switch {
					case !slices.ContainsFunc(m.table.rows, func(r rule) bool { return r.action == action }):
						expectClass(t, err, ErrBadRequest)
					case want != nil:
						if err != nil || to != want.to {
							t.Fatalf("got %s, %v; want %s", to, err, want.to)
						}
						last := history[len(history)-1]
						if last.From != from || last.To != to || last.Action != action || last.By.Subject != by.Subject {
							t.Errorf("recorded %+v", last)
						}
					case !ever:
						expectClass(t, err, ErrForbidden)
					case slices.ContainsFunc(m.table.rows, func(r rule) bool { return r.from == from && r.action == action }):
						expectClass(t, err, ErrForbidden)
					default:
						expectClass(t, err, ErrConflict)
					}
					if err != nil && to != from {
						t.Errorf("a refused action moved the state to %s", to)
					}
				})
			}
		}
	}
}

func expectClass(t *testing.T, err error, class error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, class) {
		t.Fatalf("error %v, want an *Error of class %v", err, class)
	}
}

// testRequest is a request by alice for health's data, in state s,
// submitted a week before t0 and due at t0.
func testRequest(s State) *Request {
	return &Request{ID: "req_test", State: s, Requester: Principal{Subject: "alice", Dept: "police"}, Owner: "health",
		Sharing: Unconditional, Created: t0.AddDate(0, 0, -7), Due: t0,
		Submission: Submission{Dataset: "health/visits", Fields: []string{"visit_id", "district"}, Purpose: "public-health",
			LegalBasis: "PHL art. 5", ValidUntil: t0.AddDate(1, 0, 0)}}
}

func testGrant(s State, validUntil time.Time) *Grant {
	return &Grant{ID: "grt_test", Request: "req_test", Dataset: "health/visits", Dept: "police", Owner: "health",
		Requester: Principal{Subject: "alice", Dept: "police"}, Purpose: "public-health",
		Fields: map[string]any{"district": "keep"}, ValidFrom: t0.AddDate(0, -1, 0), ValidUntil: validUntil, State: s}
}

func testDemand(s State) *Demand {
	return &Demand{ID: "dmd_test", DemandInput: DemandInput{Owner: "health", Description: "clinic queues", Purpose: "planning"},
		Requester: Principal{Subject: "alice", Dept: "police"}, State: s, Created: t0.AddDate(0, 0, -14), Due: t0}
}

func TestRequestMachineWalksItsTable(t *testing.T) {
	walk(t, machine{
		table:   &requests,
		states:  []State{Submitted, NeedsInfo, Approved, Rejected, Withdrawn, Escalated},
		actions: []Action{Submit, Approve, Reject, NeedInfo, Reply, Withdraw, Escalate, Revoke},
		apply: func(from State, act Act, by Actor) (State, []Transition, error) {
			r := testRequest(from)
			_, err := r.Apply(act, by, t0.Add(time.Hour), nil)
			return r.State, r.History, err
		},
	})
}

func TestGrantMachineWalksItsTable(t *testing.T) {
	walk(t, machine{
		table:   &grants,
		states:  []State{Active, Suspended, Revoked, Expired},
		actions: []Action{Issue, Suspend, Resume, Revoke, Expire, Approve},
		apply: func(from State, act Act, by Actor) (State, []Transition, error) {
			until := t0.AddDate(0, 1, 0)
			if act.Action == Expire {
				until = t0
			}
			g := testGrant(from, until)
			_, err := g.Apply(act, by, t0.Add(time.Hour))
			return g.State, g.History, err
		},
	})
}

func TestDemandMachineWalksItsTable(t *testing.T) {
	walk(t, machine{
		table:   &demands,
		states:  []State{Open, Published, Refused, Escalated},
		actions: []Action{File, Publish, Refuse, Escalate, Withdraw},
		apply: func(from State, act Act, by Actor) (State, []Transition, error) {
			d := testDemand(from)
			_, err := d.Apply(act, by, t0.Add(time.Hour))
			return d.State, d.History, err
		},
	})
}

func TestNoOneDecidesTheirOwnRequest(t *testing.T) {
	for name, by := range map[string]Actor{
		"a requester who is a steward of the owning dept": {Subject: "alice", Dept: "health", Steward: true},
		"a requester who is the coordinator":              {Subject: "alice", Dept: "police", Coordinator: true},
		"the requester's subject as a steward elsewhere":  {Subject: "alice", Dept: "health", Steward: true, Coordinator: true},
	} {
		for _, from := range []State{Submitted, Escalated} {
			for _, action := range []Action{Approve, Reject} {
				r := testRequest(from)
				if by.Dept == "health" {
					r.Requester.Dept = "health" // a department asking for its own other dataset
				}
				_, err := r.Apply(Act{Action: action, Reason: "mine"}, by, t0.Add(time.Hour), nil)
				expectClass(t, err, ErrForbidden)
				if !strings.Contains(err.Error(), "their own request") {
					t.Errorf("%s, %s a %s request: %v, want it to say why", name, action, from, err)
				}
			}
		}
	}
}

func TestRefusalsThatNeedAReason(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func() error
	}{
		{"reject", func() error {
			_, err := testRequest(Submitted).Apply(Act{Action: Reject, Reason: " "}, sam, t0, nil)
			return err
		}},
		{"need_info", func() error { _, err := testRequest(Submitted).Apply(Act{Action: NeedInfo}, sam, t0, nil); return err }},
		{"coordinator reject", func() error { _, err := testRequest(Escalated).Apply(Act{Action: Reject}, cora, t0, nil); return err }},
		{"suspend", func() error {
			_, err := testGrant(Active, t0.AddDate(1, 0, 0)).Apply(Act{Action: Suspend}, sam, t0)
			return err
		}},
		{"resume", func() error {
			_, err := testGrant(Suspended, t0.AddDate(1, 0, 0)).Apply(Act{Action: Resume}, sam, t0)
			return err
		}},
		{"revoke", func() error {
			_, err := testGrant(Active, t0.AddDate(1, 0, 0)).Apply(Act{Action: Revoke}, cora, t0)
			return err
		}},
		{"refuse", func() error { _, err := testDemand(Open).Apply(Act{Action: Refuse}, sam, t0); return err }},
		{"publish without a dataset", func() error { _, err := testDemand(Open).Apply(Act{Action: Publish}, sam, t0); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) { expectClass(t, tc.apply(), ErrBadRequest) })
	}
}

func TestClockGuards(t *testing.T) {
	early := t0.Add(-time.Hour)
	if _, err := testRequest(Submitted).Apply(Act{Action: Escalate}, System, early, nil); !errors.Is(err, ErrConflict) {
		t.Errorf("escalating a request before it is due: %v, want a conflict", err)
	}
	if _, err := testDemand(Open).Apply(Act{Action: Escalate}, System, early); !errors.Is(err, ErrConflict) {
		t.Errorf("escalating a demand before it is due: %v, want a conflict", err)
	}
	if _, err := testGrant(Active, t0).Apply(Act{Action: Expire}, System, early); !errors.Is(err, ErrConflict) {
		t.Errorf("expiring a grant before valid_until: %v, want a conflict", err)
	}
	if _, err := testGrant(Suspended, t0).Apply(Act{Action: Resume, Reason: "ok"}, sam, t0); !errors.Is(err, ErrConflict) {
		t.Errorf("resuming a lapsed grant: %v, want a conflict", err)
	}
	r := testRequest(Submitted)
	r.Sharing = Conditional
	if _, err := r.Apply(Act{Action: Approve}, System, t0, nil); !errors.Is(err, ErrForbidden) {
		t.Errorf("the system approving a conditional request: %v, want forbidden", err)
	}
}
