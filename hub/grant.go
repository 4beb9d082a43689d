package hub

import (
	"maps"
	"time"
)

// grants is the grant state machine. A grant is issued by the system on
// an approval; stewards of the owning department and the coordinator
// suspend, resume and revoke it (never the subject who asked for it); the
// system expires it when valid_until passes. Revoked and expired are
// final.
var grants = table{kind: "grant", rows: []rule{
	{"", Issue, Active, []Relation{AsSystem}, false},
	{Active, Suspend, Suspended, []Relation{AsOwnerSteward, AsCoordinator}, true},
	{Suspended, Resume, Active, []Relation{AsOwnerSteward, AsCoordinator}, true},
	{Active, Revoke, Revoked, []Relation{AsOwnerSteward, AsCoordinator}, true},
	{Suspended, Revoke, Revoked, []Relation{AsOwnerSteward, AsCoordinator}, true},
	{Active, Expire, Expired, []Relation{AsSystem}, false},
	{Suspended, Expire, Expired, []Relation{AsSystem}, false},
}}

// Grant is what an approval allows: a department may read the granted
// fields of a dataset, with their treatments, for one purpose, while the
// grant is active and valid.
type Grant struct {
	// ID is "grt_" and 20 random base-32 characters.
	ID string `json:"id"`
	// Request is the id of the request it was approved on.
	Request string `json:"request"`
	// Dataset is "source/dataset".
	Dataset string `json:"dataset"`
	// Dept is the department it grants to.
	Dept string `json:"dept"`
	// Owner is the department owning the dataset.
	Owner string `json:"owner"`
	// Requester is who asked for it; they may not suspend, resume or
	// revoke it.
	Requester Principal `json:"requester"`
	// Purpose is the only purpose it serves.
	Purpose string `json:"purpose"`
	// Fields maps each granted field to its treatment (see
	// [Conditions.Fields]).
	Fields map[string]any `json:"fields"`
	// ValidFrom is when it was issued.
	ValidFrom time.Time `json:"valid_from"`
	// ValidUntil is when it ends.
	ValidUntil time.Time `json:"valid_until"`
	// MaxRows caps the rows of one release (0: no cap beyond the
	// policy's).
	MaxRows int `json:"max_rows,omitempty"`
	// MinK and MinL are the k-anonymity the approval asked for (see
	// [Conditions]).
	MinK int `json:"min_k,omitempty"`
	MinL int `json:"min_l,omitempty"`
	// State is the grant's state.
	State State `json:"state"`
	// History is every transition, oldest first.
	History []Transition `json:"history"`
}

// NewGrant issues the grant r's approval makes, at now, and returns it
// with the transition that created it. r must be approved; its
// Decision's conditions are the grant's terms. The caller records the
// grant's id in r.Grant and stores both at once (see
// [Store.UpdateRequest]).
func NewGrant(r *Request, now time.Time) (*Grant, Transition, error) {
	if r.State != Approved || r.Decision == nil || r.Decision.Conditions == nil {
		return nil, Transition{}, refuse(ErrConflict, "request %s is not approved", r.ID)
	}
	c := r.Decision.Conditions
	g := &Grant{ID: newID("grt_"), Request: r.ID, Dataset: r.Dataset, Dept: r.Requester.Dept, Owner: r.Owner,
		Requester: r.Requester, Purpose: r.Purpose, Fields: maps.Clone(c.Fields), ValidFrom: now,
		ValidUntil: c.ValidUntil, MaxRows: c.MaxRows, MinK: c.MinK, MinL: c.MinL}
	t, err := g.Apply(Act{Action: Issue}, System, now)
	if err != nil {
		return nil, Transition{}, err
	}
	return g, t, nil
}

// Apply takes act on g by by at now, and returns the transition, which is
// also appended to g.History. A refusal is an [*Error] and leaves g as
// it was. Beyond the table: a grant expires only once ValidUntil has
// passed, and one past it is not resumed.
func (g *Grant) Apply(act Act, by Actor, now time.Time) (Transition, error) {
	held, self := relations(by, g.Requester, g.Owner)
	row, as, err := grants.step(g.State, act.Action, held, self, act.Reason)
	if err != nil {
		return Transition{}, err
	}
	switch act.Action {
	case Expire:
		if now.Before(g.ValidUntil) {
			return Transition{}, refuse(ErrConflict, "the grant is valid until %s", g.ValidUntil.Format(time.RFC3339))
		}
	case Resume:
		if !now.Before(g.ValidUntil) {
			return Transition{}, refuse(ErrConflict, "the grant ended at %s", g.ValidUntil.Format(time.RFC3339))
		}
	}
	t := transition(g.ID, row, by, as, now, act.Reason)
	g.State = row.to
	g.History = append(g.History, t)
	return t, nil
}

// Effective reports whether g allows a release at now: it is active and
// now is within its validity. Expiry takes effect here the moment
// ValidUntil passes, whether or not the system has recorded it yet.
func (g *Grant) Effective(now time.Time) bool {
	return g.State == Active && !now.Before(g.ValidFrom) && now.Before(g.ValidUntil)
}

// Allowed returns the actions by may take on g now, by the table.
func (g *Grant) Allowed(by Actor) []Action {
	held, _ := relations(by, g.Requester, g.Owner)
	return grants.allowed(g.State, held)
}

// Lapsed reports whether g is past ValidUntil but not yet recorded as
// expired: the system should expire it.
func (g *Grant) Lapsed(now time.Time) bool {
	return (g.State == Active || g.State == Suspended) && !now.Before(g.ValidUntil)
}

// matches reports whether g passes f: Dept is the department granted to.
func (g *Grant) matches(f Filter) bool {
	return f.match(facts{state: g.State, dept: g.Dept, subject: g.Requester.Subject, owner: g.Owner, dataset: g.Dataset})
}

// Applicable returns the grants of gs under which dept may read dataset
// for purpose at now: the policy input's grants for one read.
func Applicable(gs []*Grant, dept, dataset, purpose string, now time.Time) []*Grant {
	var out []*Grant
	for _, g := range gs {
		if g.Dept == dept && g.Dataset == dataset && g.Purpose == purpose && g.Effective(now) {
			out = append(out, g)
		}
	}
	return out
}
