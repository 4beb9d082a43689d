package hub

import (
	"slices"
	"strings"
	"time"
)

// requests is the request state machine. Stewards of the owning
// department decide a submitted request; once it is past due the system
// escalates it and the coordinator may decide it too (a steward's late
// answer still counts: the first decision wins). Information is asked for
// only before escalation: an escalated request is answered, not delayed.
var requests = table{kind: "request", rows: []rule{
	{"", Submit, Submitted, []Relation{AsRequester}, false},
	{Submitted, Approve, Approved, []Relation{AsOwnerSteward, AsSystem}, false},
	{Submitted, Reject, Rejected, []Relation{AsOwnerSteward}, true},
	{Submitted, NeedInfo, NeedsInfo, []Relation{AsOwnerSteward}, true},
	{Submitted, Withdraw, Withdrawn, []Relation{AsRequester}, false},
	{Submitted, Escalate, Escalated, []Relation{AsSystem}, false},
	{NeedsInfo, Reply, Submitted, []Relation{AsRequester}, false},
	{NeedsInfo, Withdraw, Withdrawn, []Relation{AsRequester}, false},
	{Escalated, Approve, Approved, []Relation{AsCoordinator, AsOwnerSteward}, false},
	{Escalated, Reject, Rejected, []Relation{AsCoordinator, AsOwnerSteward}, true},
	{Escalated, Withdraw, Withdrawn, []Relation{AsRequester}, false},
}}

// Submission is what a requester asks for.
type Submission struct {
	// Dataset is "source/dataset".
	Dataset string `json:"dataset"`
	// Fields are the fields asked for: at least one, each once.
	Fields []string `json:"fields"`
	// Purpose is the purpose of use; grants are per purpose.
	Purpose string `json:"purpose"`
	// LegalBasis is the law or rule the requesting department acts on.
	LegalBasis string `json:"legal_basis"`
	// Justification says why these fields are needed (optional).
	Justification string `json:"justification,omitempty"`
	// ValidUntil is when access should end; after the submission.
	ValidUntil time.Time `json:"valid_until"`
}

// Request is a department's request to share a dataset, from submission
// to decision.
type Request struct {
	// ID is "req_" and 20 random base-32 characters.
	ID string `json:"id"`
	Submission
	// Requester is who submitted it.
	Requester Principal `json:"requester"`
	// Owner is the department owning the dataset, whose stewards decide.
	Owner string `json:"owner"`
	// Sharing is the dataset's class when the request was submitted.
	Sharing Sharing `json:"sharing"`
	// State is the request's state.
	State State `json:"state"`
	// Created is when it was submitted.
	Created time.Time `json:"created"`
	// Due is when an answer is due: the end of a working day (see
	// [Calendar.Due]). While the request needs information the clock is
	// paused and Due is the due time as it stood when it paused.
	Due time.Time `json:"due"`
	// PausedAt is when the request was sent back for information; zero
	// unless it needs information.
	PausedAt time.Time `json:"paused_at,omitzero"`
	// RemainingDays is the working days that were left before Due when
	// the clock paused; the reply carries them over (see
	// [Calendar.Resume]).
	RemainingDays int `json:"remaining_days,omitempty"`
	// Decision is the approval or rejection, once made.
	Decision *Decision `json:"decision,omitempty"`
	// Grant is the id of the grant an approval made.
	Grant string `json:"grant,omitempty"`
	// History is every transition, oldest first.
	History []Transition `json:"history"`
}

// Decision is an approval or a rejection.
type Decision struct {
	// Action is Approve or Reject.
	Action Action `json:"decision"`
	// By is who decided, and as what.
	By Party `json:"by"`
	// At is when.
	At time.Time `json:"at"`
	// Reason says why (required for a rejection).
	Reason string `json:"reason,omitempty"`
	// Conditions are an approval's terms, as the grant holds them.
	Conditions *Conditions `json:"conditions,omitempty"`
}

// Conditions are the terms of an approval. A steward may narrow what was
// asked, never widen it.
type Conditions struct {
	// Fields maps each granted field to its treatment, a JSON value as
	// the policy names treatments ("keep", "mask_id_cn",
	// {"op":"generalize","to":"month"}). Only requested fields; none
	// means every requested field at [TreatmentCeiling].
	Fields map[string]any `json:"fields,omitempty"`
	// ValidUntil ends the grant; zero means the request's, and it may not
	// be later than the request's.
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// MaxRows caps the rows of one release (0: no cap beyond the
	// policy's).
	MaxRows int `json:"max_rows,omitempty"`
	// MinK and MinL ask for k-anonymity at release (min_k, min_l of the
	// policy decision): records of classes of fewer people, or of fewer
	// distinct sensitive values, of the grantee's whole view are
	// suppressed. 0 for none; else at least 2, and MinL needs MinK.
	MinK int `json:"min_k,omitempty"`
	MinL int `json:"min_l,omitempty"`
}

// TreatmentCeiling is the treatment of a field granted without one: the
// dataset's ceiling for the field's level, the most the policy would
// release of it under any grant.
const TreatmentCeiling = "ceiling"

// NewRequest takes a submission by by for ds, due at due (see
// [Calendar.Due]; the default is [DefaultRequestDays] working days). It
// checks the submission (ErrBadRequest), that by is a person in a
// department and that ds is open to requests (ErrForbidden with the
// basis, see [Dataset.Admit]). It returns the submitted request and the
// transition that created it; a request for an [Unconditional] dataset is
// then approved by [System] (see [Hub.Submit]).
func NewRequest(in Submission, ds Dataset, by Actor, now, due time.Time) (*Request, Transition, error) {
	if by.system || by.Subject == "" || by.Dept == "" {
		return nil, Transition{}, refuse(ErrForbidden, "a request is made by a person in a department")
	}
	if err := in.check(now); err != nil {
		return nil, Transition{}, err
	}
	if ds.Name != in.Dataset {
		return nil, Transition{}, refuse(ErrBadRequest, "dataset %s is not in the catalogue", in.Dataset)
	}
	if err := ds.Admit(); err != nil {
		return nil, Transition{}, err
	}
	r := &Request{ID: newID("req_"), Submission: in, Requester: Principal{Subject: by.Subject, Dept: by.Dept},
		Owner: ds.Owner, Sharing: ds.Sharing, Created: now, Due: due}
	r.Fields = slices.Clone(in.Fields)
	t, err := r.Apply(Act{Action: Submit}, by, now, nil)
	if err != nil {
		return nil, Transition{}, err
	}
	return r, t, nil
}

func (in *Submission) check(now time.Time) error {
	switch {
	case !validDatasetName(in.Dataset):
		return refuse(ErrBadRequest, "dataset must be \"source/dataset\", not %q", in.Dataset)
	case len(in.Fields) == 0:
		return refuse(ErrBadRequest, "a request names at least one field")
	case strings.TrimSpace(in.Purpose) == "":
		return refuse(ErrBadRequest, "a request needs a purpose")
	case strings.TrimSpace(in.LegalBasis) == "":
		return refuse(ErrBadRequest, "a request needs a legal basis")
	case !in.ValidUntil.After(now):
		return refuse(ErrBadRequest, "valid_until must be after now")
	}
	for i, f := range in.Fields {
		if f == "" {
			return refuse(ErrBadRequest, "field %d has no name", i+1)
		}
		if slices.Contains(in.Fields[:i], f) {
			return refuse(ErrBadRequest, "field %q is named twice", f)
		}
	}
	return nil
}

// Apply takes act on r by by at now, and returns the transition, which is
// also appended to r.History. A refusal is an [*Error] (ErrConflict,
// ErrForbidden or ErrBadRequest) and leaves r as it was. cal keeps the
// clock across a request for information (nil: [DefaultCalendar]).
//
// Beyond the table: the system approves only unconditional sharing; an
// approval's conditions narrow what was asked; a request is escalated
// only once Due has passed.
func (r *Request) Apply(act Act, by Actor, now time.Time, cal *Calendar) (Transition, error) {
	if cal == nil {
		cal = DefaultCalendar()
	}
	held, self := relations(by, r.Requester, r.Owner)
	row, as, err := requests.step(r.State, act.Action, held, self, act.Reason)
	if err != nil {
		return Transition{}, err
	}
	decision := &Decision{Action: act.Action, By: Party{Subject: by.Subject, Dept: by.Dept, As: as}, At: now,
		Reason: act.Reason}
	switch act.Action {
	case Approve:
		if as == AsSystem && r.Sharing != Unconditional {
			return Transition{}, refuse(ErrForbidden, "only an unconditional dataset's requests are approved without a steward")
		}
		c, err := r.conditions(act.Conditions, now)
		if err != nil {
			return Transition{}, err
		}
		decision.Conditions = c
		r.Decision = decision
	case Reject:
		r.Decision = decision
	case NeedInfo:
		r.PausedAt, r.RemainingDays = now, cal.WorkingDays(now, r.Due)
	case Reply:
		r.Due = cal.Resume(now, r.RemainingDays)
		r.PausedAt, r.RemainingDays = time.Time{}, 0
	case Escalate:
		if now.Before(r.Due) {
			return Transition{}, refuse(ErrConflict, "the request is not due until %s", r.Due.Format(time.RFC3339))
		}
	}
	t := transition(r.ID, row, by, as, now, act.Reason)
	r.State = row.to
	r.History = append(r.History, t)
	return t, nil
}

// conditions checks an approval's conditions against the request and
// fills in what they leave out.
func (r *Request) conditions(c *Conditions, now time.Time) (*Conditions, error) {
	out := &Conditions{ValidUntil: r.ValidUntil}
	if c != nil {
		out.MaxRows, out.MinK, out.MinL = c.MaxRows, c.MinK, c.MinL
		if !c.ValidUntil.IsZero() {
			out.ValidUntil = c.ValidUntil
		}
		out.Fields = make(map[string]any, len(c.Fields))
		for f, t := range c.Fields {
			if !slices.Contains(r.Fields, f) {
				return nil, refuse(ErrBadRequest, "field %q was not requested: an approval may narrow a request, not widen it", f)
			}
			if t == nil {
				return nil, refuse(ErrBadRequest, "field %q has no treatment", f)
			}
			out.Fields[f] = t
		}
	}
	switch {
	case out.MaxRows < 0:
		return nil, refuse(ErrBadRequest, "max_rows must not be negative")
	case out.MinK == 1 || out.MinK < 0 || out.MinL == 1 || out.MinL < 0:
		return nil, refuse(ErrBadRequest, "min_k and min_l are 0 (none) or at least 2")
	case out.MinL > 0 && out.MinK == 0:
		return nil, refuse(ErrBadRequest, "min_l needs min_k")
	case out.ValidUntil.After(r.ValidUntil):
		return nil, refuse(ErrBadRequest, "valid_until may not be later than the request's %s", r.ValidUntil.Format(time.RFC3339))
	case !out.ValidUntil.After(now):
		return nil, refuse(ErrBadRequest, "valid_until must be after now")
	}
	if len(out.Fields) == 0 {
		out.Fields = make(map[string]any, len(r.Fields))
		for _, f := range r.Fields {
			out.Fields[f] = TreatmentCeiling
		}
	}
	return out, nil
}

// Allowed returns the actions by may take on r now, by the table (an
// escalation before Due or a system approval of a conditional request is
// still refused when tried).
func (r *Request) Allowed(by Actor) []Action {
	held, _ := relations(by, r.Requester, r.Owner)
	return requests.allowed(r.State, held)
}

// Overdue reports whether r waits for an answer past its due time: the
// system should escalate it. A request that needs information is not.
func (r *Request) Overdue(now time.Time) bool { return r.State == Submitted && !now.Before(r.Due) }

// matches reports whether r passes f: Dept is the requesting department.
func (r *Request) matches(f Filter) bool {
	return f.match(facts{state: r.State, dept: r.Requester.Dept, subject: r.Requester.Subject, owner: r.Owner,
		dataset: r.Dataset})
}
