package hub

import (
	"slices"
	"strings"
	"time"
)

// State is the state of a request, grant, demand, objection or notice.
type State string

// Request states.
const (
	Submitted State = "submitted"
	NeedsInfo State = "needs_info"
	Approved  State = "approved"
	Rejected  State = "rejected"
	Withdrawn State = "withdrawn"
	// Escalated is also a demand and an objection state: past due, for
	// the coordinator. Rejected is also an objection state.
	Escalated State = "escalated"
)

// Grant states.
const (
	Active    State = "active"
	Suspended State = "suspended"
	Revoked   State = "revoked"
	Expired   State = "expired"
)

// Demand states.
const (
	Open      State = "open"
	Published State = "published"
	Refused   State = "refused"
)

// Objection states.
const (
	Filed     State = "filed"
	Accepted  State = "accepted"
	Corrected State = "corrected"
	Upheld    State = "upheld"
)

// Notice states.
const (
	Pending      State = "pending"
	Acknowledged State = "acknowledged"
)

// Action is what an actor asks to do to an object.
type Action string

// Request actions.
const (
	Submit   Action = "submit"
	Approve  Action = "approve"
	Reject   Action = "reject"
	NeedInfo Action = "need_info"
	Reply    Action = "reply"
	Withdraw Action = "withdraw"
	// Escalate is also a demand and an objection action; Reject is also
	// an objection action.
	Escalate Action = "escalate"
)

// Grant actions.
const (
	Issue   Action = "issue"
	Suspend Action = "suspend"
	Resume  Action = "resume"
	Revoke  Action = "revoke"
	Expire  Action = "expire"
)

// Demand actions. File is also an objection action.
const (
	File    Action = "file"
	Publish Action = "publish"
	Refuse  Action = "refuse"
)

// Objection actions: the decisions of the contract's "accept", "reject",
// "corrected" and "upheld" are Accept, [Reject], Correct and Uphold.
const (
	Accept  Action = "accept"
	Correct Action = "correct"
	Uphold  Action = "uphold"
)

// Notice actions.
const (
	Notify      Action = "notify"
	Acknowledge Action = "acknowledge"
)

// Act is an action with what it carries.
type Act struct {
	// Action is what to do.
	Action Action `json:"action"`
	// Reason says why. Required to reject, to ask for information
	// (the question), to suspend, resume or revoke a grant, to refuse
	// a demand and to correct or uphold an objection; recorded for every
	// action.
	Reason string `json:"reason,omitempty"`
	// Conditions narrow an approval (approve only; nil grants what was
	// asked, see [Conditions]).
	Conditions *Conditions `json:"conditions,omitempty"`
	// Dataset names the dataset now offered ("source/dataset"; publish
	// only, required there).
	Dataset string `json:"dataset,omitempty"`
}

// Transition is one change of state, as the object's history and the
// audit trail record it.
type Transition struct {
	// Object is the id of the request, grant, demand, objection or
	// notice.
	Object string `json:"object"`
	// Action is the action taken.
	Action Action `json:"action"`
	// From is the state before ("" when the action created the object).
	From State `json:"from"`
	// To is the state after.
	To State `json:"to"`
	// By is who acted, and as what.
	By Party `json:"by"`
	// At is when.
	At time.Time `json:"at"`
	// Reason is the act's reason, as given. In an objection's stored
	// history it is empty and SealedReason holds it.
	Reason string `json:"reason,omitempty"`
	// SealedReason is Reason sealed (see [Sealer]), in its place, in the
	// stored history of an objection, whose text is personal data.
	SealedReason Sealed `json:"sealed_reason,omitempty"`
}

// rule is one row of a transition table: from a state, an action leads to
// a state, taken by an actor in one of the relations named. A row whose
// from is "" creates the object.
type rule struct {
	from   State
	action Action
	to     State
	who    []Relation
	reason bool // the act must give a reason
}

// table is a state machine: its rows are every transition there is;
// whatever no row allows is refused.
type table struct {
	kind string // "request", "grant", "demand", "objection", "notice", for messages
	rows []rule
}

// step finds the row for action a from state from, taken by an actor
// holding the relations held, and the relation it acts in. Refusals are
// classed so that an actor learns nothing of an object's state from an
// action it could never take: an action no row of the table lets the actor
// take in any state is forbidden; an action the actor may take, but not
// from this state, is a conflict; then the row's own relations and reason.
func (t *table) step(from State, a Action, held []Relation, self bool, reason string) (rule, Relation, error) {
	var known, ever bool
	for _, r := range t.rows {
		if r.action == a {
			known = true
			ever = ever || slices.ContainsFunc(r.who, func(w Relation) bool { return slices.Contains(held, w) })
		}
	}
	switch {
	case !known:
		return rule{}, "", refuse(ErrBadRequest, "%q is not an action on %s", a, article(t.kind))
	case !ever && self:
		return rule{}, "", refuse(ErrForbidden, "no one may %s their own %s", a, t.kind)
	case !ever:
		return rule{}, "", refuse(ErrForbidden, "you may not %s this %s", a, t.kind)
	}
	for _, r := range t.rows {
		if r.from != from || r.action != a {
			continue
		}
		i := slices.IndexFunc(r.who, func(w Relation) bool { return slices.Contains(held, w) })
		if i < 0 {
			return rule{}, "", refuse(ErrForbidden, "%s %s is for the %s to %s", article(string(from)), t.kind, joinRelations(r.who), a)
		}
		if r.reason && strings.TrimSpace(reason) == "" {
			return rule{}, "", refuse(ErrBadRequest, "to %s %s needs a reason", a, article(t.kind))
		}
		return r, r.who[i], nil
	}
	if from == "" {
		return rule{}, "", refuse(ErrConflict, "a new %s cannot be made by %s", t.kind, a)
	}
	return rule{}, "", refuse(ErrConflict, "%s that is %s cannot be %s", article(t.kind), from, pastTense(a))
}

// allowed returns the actions an actor holding held may take from state
// from, in the table's order.
func (t *table) allowed(from State, held []Relation) []Action {
	var out []Action
	for _, r := range t.rows {
		if r.from == from && slices.ContainsFunc(r.who, func(w Relation) bool { return slices.Contains(held, w) }) &&
			!slices.Contains(out, r.action) {
			out = append(out, r.action)
		}
	}
	return out
}

// leads reports whether a row of t leads from state from by action a,
// whoever takes it.
func (t *table) leads(from State, a Action) bool {
	return slices.ContainsFunc(t.rows, func(r rule) bool { return r.from == from && r.action == a })
}

func joinRelations(rs []Relation) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = strings.ReplaceAll(string(r), "_", " ")
	}
	return strings.Join(s, " or ")
}

// pastTense words an action for a conflict's message.
func pastTense(a Action) string {
	switch a {
	case NeedInfo:
		return "sent back for information"
	case Reply:
		return "replied to"
	case Withdraw:
		return "withdrawn"
	case Uphold:
		return "upheld"
	case Notify:
		return "notified"
	}
	if strings.HasSuffix(string(a), "e") {
		return string(a) + "d"
	}
	return string(a) + "ed"
}

// article puts "a" or "an" before word, by its first letter.
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}

// transition records the row r taken by actor by, as as, at now.
func transition(object string, r rule, by Actor, as Relation, now time.Time, reason string) Transition {
	return Transition{Object: object, Action: r.action, From: r.from, To: r.to,
		By: Party{Subject: by.Subject, Dept: by.Dept, As: as}, At: now, Reason: reason}
}
