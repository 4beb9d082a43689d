package hub

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// objections is the objection state machine. A department that received
// a record, or the person the record is about, objects to it; a steward
// of the owning department accepts the objection (the record will be
// looked into) or rejects it as no objection, and once it is accepted
// resolves it: the record is corrected, or upheld as it stands. Each stage
// runs on its own clock; past either, the system escalates the objection
// and the coordinator may then decide it as a steward would at that stage
// (a steward's late decision still counts: the first decision wins). The
// filer never decides.
var objections = table{kind: "objection", rows: []rule{
	{"", File, Filed, []Relation{AsRecipient, AsDataSubject}, false},
	{Filed, Accept, Accepted, []Relation{AsOwnerSteward}, false},
	{Filed, Reject, Rejected, []Relation{AsOwnerSteward}, true},
	{Filed, Escalate, Escalated, []Relation{AsSystem}, false},
	{Accepted, Correct, Corrected, []Relation{AsOwnerSteward}, true},
	{Accepted, Uphold, Upheld, []Relation{AsOwnerSteward}, true},
	{Accepted, Escalate, Escalated, []Relation{AsSystem}, false},
	{Escalated, Accept, Accepted, []Relation{AsCoordinator, AsOwnerSteward}, false},
	{Escalated, Reject, Rejected, []Relation{AsCoordinator, AsOwnerSteward}, true},
	{Escalated, Correct, Corrected, []Relation{AsCoordinator, AsOwnerSteward}, true},
	{Escalated, Uphold, Upheld, []Relation{AsCoordinator, AsOwnerSteward}, true},
}}

// The default answer times of objections, in working days
// (hub.due.objection_accept and hub.due.objection_resolve).
const (
	DefaultObjectionAcceptDays  = 2
	DefaultObjectionResolveDays = 10
)

// ObjectionInput is what a filer says is wrong with a record.
type ObjectionInput struct {
	// Dataset is "source/dataset".
	Dataset string `json:"dataset"`
	// RecordID is the record's id as the dataset names it: the owning
	// stewards must find the record.
	RecordID string `json:"record_id"`
	// Field is the field objected to; "" for the record as a whole.
	Field string `json:"field,omitempty"`
	// Claim says what is wrong. It is personal data: a store keeps it
	// sealed (see [Objection.SealedClaim]), and it is "" in an objection
	// as a store returns it.
	Claim string `json:"claim,omitempty"`
	// Release, instead of a record, is the request id of a release the
	// person it held asks about ("why was my data used?"): the objection
	// then goes to the department that received the release (the
	// [Dataset] given to [NewObjection] names it as owner), whose
	// stewards answer it, and RecordID is "".
	Release string `json:"release,omitempty"`
}

// Eligibility is what the gateway found of an actor's standing to
// object to a record. The hub does not read the trail: the gateway looks
// the record up in its usage index and says what it found. Without
// either, no objection is taken.
type Eligibility struct {
	// Received: the actor's department received the record (a release
	// of it to the department is in the trail). The owning department
	// receives none of its own records: its stewards correct them.
	Received bool
	// Subject: the actor is the person the record is about.
	Subject bool
}

// relations returns the relations that let by file an objection to a
// record of a dataset owner owns.
func (e Eligibility) relations(by Actor, owner string) []Relation {
	if by.system || by.Subject == "" {
		return nil
	}
	var held []Relation
	if e.Received && by.Dept != "" && by.Dept != owner {
		held = append(held, AsRecipient)
	}
	if e.Subject {
		held = append(held, AsDataSubject)
	}
	return held
}

// Objection is an objection to a record, from filing to decision.
//
// Its free text (the claim, every reason in its history) is personal
// data and is sealed before a store sees it: as stored and as a [Store]
// returns it, Claim and each transition's Reason are "" and SealedClaim
// and SealedReason hold them. [Hub.Open] opens them for those entitled
// to read them (the filer, the owning stewards, the coordinator), and
// each store refuses an objection holding text in clear.
type Objection struct {
	// ID is "obj_" and 20 random base-32 characters.
	ID string `json:"id"`
	ObjectionInput
	// SealedClaim is Claim sealed (see [Sealer]); nil once opened.
	SealedClaim Sealed `json:"sealed_claim,omitempty"`
	// Owner is the department owning the dataset, whose stewards decide.
	Owner string `json:"owner"`
	// Filer is who filed it: as [AsRecipient] a person of a department
	// that received the record (Dept is theirs), or as [AsDataSubject]
	// the person it is about (Dept is "": the objection is theirs, not
	// their department's).
	Filer Party `json:"filer"`
	// State is the objection's state.
	State State `json:"state"`
	// Created is when it was filed.
	Created time.Time `json:"created"`
	// Due is when the present stage is due (see [Calendar.Due]): an
	// acceptance or rejection while filed, a resolution once accepted.
	// An escalated objection keeps the due time it missed.
	Due time.Time `json:"due"`
	// EscalatedFrom is the state an escalated objection was escalated
	// from, Filed or Accepted; the decisions it takes are that state's.
	EscalatedFrom State `json:"escalated_from,omitempty"`
	// Recipients are the departments a correction notified, each by a
	// [Notice] (the departments that had received the record).
	Recipients []string `json:"recipients,omitempty"`
	// Acks are the acknowledgements of those notices, by department.
	// They are the notices' (see [Hub.Objection]): a store keeps none.
	Acks []Ack `json:"acks,omitempty"`
	// History is every transition, oldest first.
	History []Transition `json:"history"`
}

// Ack is a notice's acknowledgement as its objection shows it.
type Ack struct {
	// Dept is the department notified.
	Dept string `json:"dept"`
	// Notice is the notice's id.
	Notice string `json:"notice"`
	// At is when it was acknowledged.
	At time.Time `json:"at"`
	// By is who acknowledged it.
	By Party `json:"by"`
}

// NewObjection files an objection by by to a record of ds (the
// catalogue's entry for in.Dataset) at now, due for acceptance at due
// (default [DefaultObjectionAcceptDays] working days). e is the standing
// the gateway found; without any, or from the owning department, it is
// ErrForbidden. It returns the objection, its claim still in clear, and
// the transition that filed it.
func NewObjection(in ObjectionInput, ds Dataset, by Actor, e Eligibility, now, due time.Time) (*Objection, Transition, error) {
	if by.system || by.Subject == "" {
		return nil, Transition{}, refuse(ErrForbidden, "an objection is filed by a person")
	}
	switch {
	case !validDatasetName(in.Dataset):
		return nil, Transition{}, refuse(ErrBadRequest, "dataset must be \"source/dataset\", not %q", in.Dataset)
	case strings.TrimSpace(in.RecordID) == "" && in.Release == "":
		return nil, Transition{}, refuse(ErrBadRequest, "an objection names the record it is about (record_id)")
	case in.RecordID != "" && in.Release != "":
		return nil, Transition{}, refuse(ErrBadRequest, "an objection is about a record or a release, not both")
	case in.Release != "" && !e.Subject:
		return nil, Transition{}, refuse(ErrForbidden, "a release is asked about by the person whose data it held")
	case strings.TrimSpace(in.Claim) == "":
		return nil, Transition{}, refuse(ErrBadRequest, "an objection needs a claim: what is wrong with the record")
	case ds.Name != in.Dataset:
		return nil, Transition{}, refuse(ErrBadRequest, "dataset %s is not in the catalogue", in.Dataset)
	case ds.Owner == "":
		return nil, Transition{}, refuse(ErrBadRequest, "dataset %s has no owning department to decide", ds.Name)
	}
	held := e.relations(by, ds.Owner)
	if len(held) == 0 {
		return nil, Transition{}, refuse(ErrForbidden,
			"an objection to a record is filed by another department that received it, or by the person it is about")
	}
	row, as, err := objections.step("", File, held, false, "")
	if err != nil {
		return nil, Transition{}, err
	}
	o := &Objection{ID: newID("obj_"), ObjectionInput: in, Owner: ds.Owner, Filer: Party{Subject: by.Subject, As: as},
		State: row.to, Created: now, Due: due}
	if as == AsRecipient {
		o.Filer.Dept = by.Dept
	}
	t := transition(o.ID, row, by, as, now, "")
	t.By.Dept = o.Filer.Dept
	o.History = []Transition{t}
	return o, t, nil
}

// Apply takes act on o by by at now, and returns the transition, which is
// also appended to o.History with act's reason in clear (the [Hub] seals
// it before storing o). A refusal is an [*Error] and leaves o as it was.
// An acceptance sets Due to resolveBy, the due time of the resolution
// (default [DefaultObjectionResolveDays] working days after now).
//
// Beyond the table: an objection is escalated only once Due has passed,
// and an escalated one takes the decisions of the state it was escalated
// from (accept or reject a filed one, correct or uphold an accepted one).
func (o *Objection) Apply(act Act, by Actor, now, resolveBy time.Time) (Transition, error) {
	held, self := relations(by, o.Filer.principal(), o.Owner)
	row, as, err := objections.step(o.State, act.Action, held, self, act.Reason)
	if err != nil {
		return Transition{}, err
	}
	if o.State == Escalated && !objections.leads(o.EscalatedFrom, act.Action) {
		return Transition{}, refuse(ErrConflict, "an objection escalated while %s cannot be %s", o.EscalatedFrom, pastTense(act.Action))
	}
	escalatedFrom := State("")
	switch act.Action {
	case Escalate:
		if now.Before(o.Due) {
			return Transition{}, refuse(ErrConflict, "the objection is not due until %s", o.Due.Format(time.RFC3339))
		}
		escalatedFrom = o.State
	case Accept:
		o.Due = resolveBy
	}
	t := transition(o.ID, row, by, as, now, act.Reason)
	o.State, o.EscalatedFrom = row.to, escalatedFrom
	o.History = append(o.History, t)
	return t, nil
}

// Allowed returns the actions by may take on o now: the table's, and
// for an escalated objection only those of the state it was escalated
// from (an escalation before Due is still refused when tried).
func (o *Objection) Allowed(by Actor) []Action {
	held, _ := relations(by, o.Filer.principal(), o.Owner)
	acts := objections.allowed(o.State, held)
	if o.State == Escalated {
		acts = slices.DeleteFunc(acts, func(a Action) bool { return !objections.leads(o.EscalatedFrom, a) })
	}
	return acts
}

// Overdue reports whether o waits past its due time for acceptance or
// for resolution: the system should escalate it.
func (o *Objection) Overdue(now time.Time) bool {
	return (o.State == Filed || o.State == Accepted) && !now.Before(o.Due)
}

// Unresolved reports whether o still disputes its record: filed,
// accepted, or escalated from either. While it does, every release of
// the record says so.
func (o *Objection) Unresolved() bool {
	return o.State == Filed || o.State == Accepted || o.State == Escalated
}

// matches reports whether o passes f: Dept and Subject are the filer's.
func (o *Objection) matches(f Filter) bool {
	return f.match(facts{state: o.State, dept: o.Filer.Dept, subject: o.Filer.Subject, owner: o.Owner,
		dataset: o.Dataset, record: o.RecordID})
}

// The fields a sealed text of an objection is bound to (see [Sealer]).
const claimField = "claim"

func reasonField(i int) string { return fmt.Sprintf("history.%d.reason", i) }

// seal moves o's text in clear into its sealed fields, each bound to o
// and to its place. With text to seal and no sealer it fails with
// ErrNoSealer, changing nothing.
func (o *Objection) seal(s *Sealer) error {
	if s == nil {
		if o.inClear() {
			return ErrNoSealer
		}
		return nil
	}
	if o.Claim != "" {
		o.SealedClaim, o.Claim = s.Seal(o.ID, claimField, o.Claim), ""
	}
	for i := range o.History {
		if t := &o.History[i]; t.Reason != "" {
			t.SealedReason, t.Reason = s.Seal(o.ID, reasonField(i), t.Reason), ""
		}
	}
	return nil
}

// inClear reports whether o holds any text in clear.
func (o *Objection) inClear() bool {
	return o.Claim != "" || slices.ContainsFunc(o.History, func(t Transition) bool { return t.Reason != "" })
}

// open returns a copy of o with its text opened and the sealed fields
// dropped. A text that does not open fails the whole.
func (o *Objection) open(s *Sealer) (*Objection, error) {
	c := *o
	c.Recipients, c.Acks = slices.Clone(o.Recipients), slices.Clone(o.Acks)
	c.History = slices.Clone(o.History)
	if o.SealedClaim != nil {
		claim, err := s.Open(o.ID, claimField, o.SealedClaim)
		if err != nil {
			return nil, fmt.Errorf("%w (objection %s, claim)", err, o.ID)
		}
		c.Claim, c.SealedClaim = claim, nil
	}
	for i := range c.History {
		t := &c.History[i]
		if t.SealedReason == nil {
			continue
		}
		reason, err := s.Open(o.ID, reasonField(i), t.SealedReason)
		if err != nil {
			return nil, fmt.Errorf("%w (objection %s, history %d)", err, o.ID, i)
		}
		t.Reason, t.SealedReason = reason, nil
	}
	return &c, nil
}

// principal is the person a party names.
func (p Party) principal() Principal { return Principal{Subject: p.Subject, Dept: p.Dept} }
