package hub

import (
	"slices"
	"strings"
	"time"
)

// notices is the notice state machine. A correction of a record sends
// one notice to each department that had received the record; a person
// of that department acknowledges it, once: a second acknowledgement is
// a conflict (409) that names no one, and the first stands. (Not
// idempotent: the trail and the objection say who acknowledged and when,
// and a retry by someone else must not seem to have done it.)
var notices = table{kind: "notice", rows: []rule{
	{"", Notify, Pending, []Relation{AsSystem}, false},
	{Pending, Acknowledge, Acknowledged, []Relation{AsRecipient}, false},
}}

// Notice tells a department that a record it received was corrected.
// It holds no free text: the objection's claim and reasons are for the
// filer, the owning stewards and the coordinator only.
type Notice struct {
	// ID is "ntc_" and 20 random base-32 characters.
	ID string `json:"id"`
	// Objection is the id of the objection whose correction sent it.
	Objection string `json:"objection"`
	// Dataset is "source/dataset".
	Dataset string `json:"dataset"`
	// RecordID is the record corrected, as the dataset names it.
	RecordID string `json:"record_id"`
	// Field is the field corrected; "" for the record as a whole.
	Field string `json:"field,omitempty"`
	// Owner is the department owning the dataset, which corrected it.
	Owner string `json:"owner"`
	// Dept is the department it is sent to.
	Dept string `json:"dept"`
	// State is Pending until acknowledged.
	State State `json:"state"`
	// Created is when the correction sent it.
	Created time.Time `json:"created"`
	// AckedAt is when it was acknowledged; zero until then.
	AckedAt time.Time `json:"acked_at,omitzero"`
	// AckedBy is who acknowledged it; nil until then.
	AckedBy *Party `json:"acked_by,omitempty"`
	// History is every transition, oldest first.
	History []Transition `json:"history"`
}

// NewNotices makes the notices a correction of o sends at now, one to
// each department of depts, and the transitions that sent them (by
// [System]). depts are taken as [Recipients] gives them.
func NewNotices(o *Objection, depts []string, now time.Time) ([]*Notice, []Transition, error) {
	var ns []*Notice
	var ts []Transition
	for _, dept := range Recipients(depts, o.Owner) {
		n := &Notice{ID: newID("ntc_"), Objection: o.ID, Dataset: o.Dataset, RecordID: o.RecordID, Field: o.Field,
			Owner: o.Owner, Dept: dept, Created: now}
		t, err := n.Apply(Act{Action: Notify}, System, now)
		if err != nil {
			return nil, nil, err
		}
		ns, ts = append(ns, n), append(ts, t)
	}
	return ns, ts, nil
}

// Recipients are the departments of depts a correction notifies: each
// once, in order, without "" and without owner, which made the
// correction.
func Recipients(depts []string, owner string) []string {
	out := slices.DeleteFunc(slices.Clone(depts), func(d string) bool { return strings.TrimSpace(d) == "" || d == owner })
	slices.Sort(out)
	return slices.Compact(out)
}

// Apply takes act on n by by at now, and returns the transition, which
// is also appended to n.History. A refusal is an [*Error] and leaves n
// as it was.
func (n *Notice) Apply(act Act, by Actor, now time.Time) (Transition, error) {
	row, as, err := notices.step(n.State, act.Action, noticeRelations(by, n.Dept), false, act.Reason)
	if err != nil {
		return Transition{}, err
	}
	t := transition(n.ID, row, by, as, now, act.Reason)
	if act.Action == Acknowledge {
		ackedBy := t.By
		n.AckedAt, n.AckedBy = now, &ackedBy
	}
	n.State = row.to
	n.History = append(n.History, t)
	return t, nil
}

// Allowed returns the actions by may take on n now, by the table.
func (n *Notice) Allowed(by Actor) []Action {
	return notices.allowed(n.State, noticeRelations(by, n.Dept))
}

// noticeRelations returns the relations a holds to a notice sent to
// dept: any person of the department is its recipient.
func noticeRelations(a Actor, dept string) []Relation {
	switch {
	case a.system:
		return []Relation{AsSystem}
	case a.Subject != "" && a.Dept != "" && a.Dept == dept:
		return []Relation{AsRecipient}
	}
	return nil
}

// matches reports whether n passes f: Dept is the department notified.
func (n *Notice) matches(f Filter) bool {
	return f.match(facts{state: n.State, dept: n.Dept, owner: n.Owner, dataset: n.Dataset, record: n.RecordID,
		objection: n.Objection})
}

// acks are the acknowledgements among ns, by department.
func acks(ns []*Notice) []Ack {
	var out []Ack
	for _, n := range ns {
		if n.State == Acknowledged && n.AckedBy != nil {
			out = append(out, Ack{Dept: n.Dept, Notice: n.ID, At: n.AckedAt, By: *n.AckedBy})
		}
	}
	slices.SortFunc(out, func(a, b Ack) int { return strings.Compare(a.Dept, b.Dept) })
	return out
}
