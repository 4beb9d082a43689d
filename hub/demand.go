package hub

import (
	"strings"
	"time"
)

// demands is the demand state machine (supply–demand matching): a
// department asks another for data not in the catalogue; a steward of the
// department asked publishes a dataset or refuses; past due the system
// escalates it and the coordinator may answer too.
var demands = table{kind: "demand", rows: []rule{
	{"", File, Open, []Relation{AsRequester}, false},
	{Open, Publish, Published, []Relation{AsOwnerSteward}, false},
	{Open, Refuse, Refused, []Relation{AsOwnerSteward}, true},
	{Open, Escalate, Escalated, []Relation{AsSystem}, false},
	{Escalated, Publish, Published, []Relation{AsCoordinator, AsOwnerSteward}, false},
	{Escalated, Refuse, Refused, []Relation{AsCoordinator, AsOwnerSteward}, true},
}}

// DemandInput is what a department asks for.
type DemandInput struct {
	// Owner is the department asked for the data.
	Owner string `json:"owner"`
	// Description says what data is wanted.
	Description string `json:"description"`
	// Purpose is what it is wanted for.
	Purpose string `json:"purpose"`
}

// Demand is a department's demand for data not in the catalogue.
type Demand struct {
	// ID is "dmd_" and 20 random base-32 characters.
	ID string `json:"id"`
	DemandInput
	// Requester is who filed it.
	Requester Principal `json:"requester"`
	// State is the demand's state.
	State State `json:"state"`
	// Created is when it was filed.
	Created time.Time `json:"created"`
	// Due is when an answer is due (see [Calendar.Due]).
	Due time.Time `json:"due"`
	// Dataset is the dataset published in answer ("source/dataset").
	Dataset string `json:"dataset,omitempty"`
	// Decision is the answer: Publish or Refuse, by whom, why.
	Decision *Decision `json:"decision,omitempty"`
	// History is every transition, oldest first.
	History []Transition `json:"history"`
}

// NewDemand files a demand by by at now, due at due (default
// [DefaultDemandDays] working days), and returns it with the transition
// that created it.
func NewDemand(in DemandInput, by Actor, now, due time.Time) (*Demand, Transition, error) {
	if by.system || by.Subject == "" || by.Dept == "" {
		return nil, Transition{}, refuse(ErrForbidden, "a demand is made by a person in a department")
	}
	switch {
	case in.Owner == "":
		return nil, Transition{}, refuse(ErrBadRequest, "a demand names the department it asks (owner)")
	case in.Owner == by.Dept:
		return nil, Transition{}, refuse(ErrBadRequest, "a demand asks another department than the requester's")
	case strings.TrimSpace(in.Description) == "":
		return nil, Transition{}, refuse(ErrBadRequest, "a demand needs a description")
	case strings.TrimSpace(in.Purpose) == "":
		return nil, Transition{}, refuse(ErrBadRequest, "a demand needs a purpose")
	}
	d := &Demand{ID: newID("dmd_"), DemandInput: in, Requester: Principal{Subject: by.Subject, Dept: by.Dept},
		Created: now, Due: due}
	t, err := d.Apply(Act{Action: File}, by, now)
	if err != nil {
		return nil, Transition{}, err
	}
	return d, t, nil
}

// Apply takes act on d by by at now, and returns the transition, which is
// also appended to d.History. A refusal is an [*Error] and leaves d as it
// was. Beyond the table: publishing names the dataset offered; a demand is
// escalated only once Due has passed.
func (d *Demand) Apply(act Act, by Actor, now time.Time) (Transition, error) {
	held, self := relations(by, d.Requester, d.Owner)
	row, as, err := demands.step(d.State, act.Action, held, self, act.Reason)
	if err != nil {
		return Transition{}, err
	}
	switch act.Action {
	case Publish:
		if !validDatasetName(act.Dataset) {
			return Transition{}, refuse(ErrBadRequest, "publishing names the dataset offered, \"source/dataset\"")
		}
		d.Dataset = act.Dataset
	case Escalate:
		if now.Before(d.Due) {
			return Transition{}, refuse(ErrConflict, "the demand is not due until %s", d.Due.Format(time.RFC3339))
		}
	}
	if act.Action == Publish || act.Action == Refuse {
		d.Decision = &Decision{Action: act.Action, By: Party{Subject: by.Subject, Dept: by.Dept, As: as}, At: now,
			Reason: act.Reason}
	}
	t := transition(d.ID, row, by, as, now, act.Reason)
	d.State = row.to
	d.History = append(d.History, t)
	return t, nil
}

// Allowed returns the actions by may take on d now, by the table.
func (d *Demand) Allowed(by Actor) []Action {
	held, _ := relations(by, d.Requester, d.Owner)
	return demands.allowed(d.State, held)
}

// Overdue reports whether d waits for an answer past its due time: the
// system should escalate it.
func (d *Demand) Overdue(now time.Time) bool { return d.State == Open && !now.Before(d.Due) }

// matches reports whether d passes f: Dept is the department that filed
// it, Dataset the one published.
func (d *Demand) matches(f Filter) bool {
	return f.match(facts{state: d.State, dept: d.Requester.Dept, subject: d.Requester.Subject, owner: d.Owner,
		dataset: d.Dataset})
}
