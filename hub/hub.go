// Package hub is the sharing hub's workflows: a department requests a
// dataset and a steward of the owning department answers on a
// working-day clock; an approval becomes a grant the gateway enforces;
// a department demands data not in the catalogue and the owner publishes
// or refuses; a department that received a record, or the person it is
// about, objects to it, and a correction notifies every department that
// received it. It holds no HTTP: the gateway serves it.
//
// Each workflow is a table of transitions, state × action → next state,
// with the relations ([Relation]) whose holders may take it: a request's
// requester, a steward of the owning department, the coordinator, the
// system. Whatever no row allows is refused with an [*Error] whose class
// is ErrConflict (the state does not allow it), ErrForbidden (the actor
// may not) or ErrBadRequest (malformed, or a required reason missing).
// No one decides their own request: the requester's subject holds no
// deciding relation to it, whatever else they are.
//
// Clocks count working days of a [Calendar] (weekends, holidays and
// make-up working days); a request sent back for information stops its
// clock and the reply restarts it with the days that were left.
//
// An objection's free text is personal data: a [Sealer] seals it
// (AES-256-GCM, bound to the objection and the field) before any store
// sees it, and [Hub.Open] opens it for whoever the gateway lets read it.
//
// A [Store] keeps the objects: [Memory], [Bolt] (embedded) and [Redis]
// (shared by replicas) pass one conformance suite. Updates are
// compare-and-set through the state machine, so of two stewards deciding
// one request at once exactly one wins and the other gets ErrConflict.
// [Hub] ties the tables, the clock and a store together; it is what the
// gateway calls, and each of its methods returns the transitions it made
// for the audit trail.
package hub

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Hub runs the workflows over a store.
type Hub struct {
	store       Store
	cal         *Calendar
	now         func() time.Time
	requestDays int
	demandDays  int
	acceptDays  int
	resolveDays int
	sealer      *Sealer
}

// Options configure a [Hub].
type Options struct {
	// Calendar is the working-day calendar (nil: [DefaultCalendar]).
	Calendar *Calendar
	// RequestDays is the working days a request waits for an answer
	// (0: [DefaultRequestDays]).
	RequestDays int
	// DemandDays is the working days a demand waits for an answer
	// (0: [DefaultDemandDays]).
	DemandDays int
	// ObjectionAccept is the working days a filed objection waits to be
	// accepted or rejected (0: [DefaultObjectionAcceptDays]).
	ObjectionAccept int
	// ObjectionResolve is the working days an accepted objection waits
	// to be corrected or upheld (0: [DefaultObjectionResolveDays]).
	ObjectionResolve int
	// Sealer seals the text of objections at rest. Without one, every
	// objection is refused with ErrNoSealer: none is kept in clear.
	Sealer *Sealer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// New returns a hub keeping its objects in s.
func New(s Store, o Options) *Hub {
	h := &Hub{store: s, cal: o.Calendar, now: o.Now, requestDays: o.RequestDays, demandDays: o.DemandDays,
		acceptDays: o.ObjectionAccept, resolveDays: o.ObjectionResolve, sealer: o.Sealer}
	if h.cal == nil {
		h.cal = DefaultCalendar()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.requestDays <= 0 {
		h.requestDays = DefaultRequestDays
	}
	if h.demandDays <= 0 {
		h.demandDays = DefaultDemandDays
	}
	if h.acceptDays <= 0 {
		h.acceptDays = DefaultObjectionAcceptDays
	}
	if h.resolveDays <= 0 {
		h.resolveDays = DefaultObjectionResolveDays
	}
	return h
}

// Store is the hub's store, for reading and listing.
func (h *Hub) Store() Store { return h.store }

// Calendar is the hub's calendar.
func (h *Hub) Calendar() *Calendar { return h.cal }

// Outcome is what an action did: the objects as they now are (those it
// touched; the others nil) and the transitions it made, in order, each
// one a record for the audit trail. A transition's Reason is as given,
// in clear, for the trail to keyed-hash; an objection is here with its
// text open, since whoever files or decides one may read it.
type Outcome struct {
	Request   *Request
	Grant     *Grant
	Demand    *Demand
	Objection *Objection
	// Notices are those a correction sent, or the one acknowledged.
	Notices     []*Notice
	Transitions []Transition
}

// Submit takes a request by by for dataset ds (the catalogue's entry for
// in.Dataset). For an [Unconditional] dataset the system approves it at
// once and the outcome holds the grant; for [None] it is refused,
// ErrForbidden with the basis, and nothing is stored.
func (h *Hub) Submit(ctx context.Context, in Submission, ds Dataset, by Actor) (Outcome, error) {
	now := h.now()
	r, t, err := NewRequest(in, ds, by, now, h.cal.Due(now, h.requestDays))
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Request: r, Transitions: []Transition{t}}
	if ds.ApprovesAtOnce() {
		t, err := r.Apply(Act{Action: Approve, Reason: "unconditional sharing"}, System, now, h.cal)
		if err != nil {
			return Outcome{}, err
		}
		g, gt, err := NewGrant(r, now)
		if err != nil {
			return Outcome{}, err
		}
		r.Grant = g.ID
		out.Grant, out.Transitions = g, append(out.Transitions, t, gt)
	}
	if err := h.store.CreateRequest(ctx, r, out.Grant); err != nil {
		return Outcome{}, err
	}
	return out, nil
}

// ActOnRequest takes act on request id by by: a decision (approve, with
// conditions; reject; need_info), a reply, a withdrawal or, by [System],
// an escalation. An approval issues the grant in the same write.
func (h *Hub) ActOnRequest(ctx context.Context, id string, act Act, by Actor) (Outcome, error) {
	var out Outcome
	r, err := h.store.UpdateRequest(ctx, id, func(r *Request) (*Grant, error) {
		now := h.now()
		out = Outcome{} // the store may run this again on a newer request
		t, err := r.Apply(act, by, now, h.cal)
		if err != nil {
			return nil, err
		}
		out.Transitions = []Transition{t}
		if r.State != Approved {
			return nil, nil
		}
		g, gt, err := NewGrant(r, now)
		if err != nil {
			return nil, err
		}
		r.Grant = g.ID
		out.Grant, out.Transitions = g, append(out.Transitions, gt)
		return g, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	out.Request = r
	return out, nil
}

// ActOnGrant takes act on grant id by by: suspend, resume or revoke, or
// by [System] expire.
func (h *Hub) ActOnGrant(ctx context.Context, id string, act Act, by Actor) (Outcome, error) {
	var t Transition
	g, err := h.store.UpdateGrant(ctx, id, func(g *Grant) error {
		var err error
		t, err = g.Apply(act, by, h.now())
		return err
	})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Grant: g, Transitions: []Transition{t}}, nil
}

// FileDemand files a demand by by.
func (h *Hub) FileDemand(ctx context.Context, in DemandInput, by Actor) (Outcome, error) {
	now := h.now()
	d, t, err := NewDemand(in, by, now, h.cal.Due(now, h.demandDays))
	if err != nil {
		return Outcome{}, err
	}
	if err := h.store.CreateDemand(ctx, d); err != nil {
		return Outcome{}, err
	}
	return Outcome{Demand: d, Transitions: []Transition{t}}, nil
}

// ActOnDemand takes act on demand id by by: publish (naming the dataset)
// or refuse, or by [System] escalate.
func (h *Hub) ActOnDemand(ctx context.Context, id string, act Act, by Actor) (Outcome, error) {
	var t Transition
	d, err := h.store.UpdateDemand(ctx, id, func(d *Demand) error {
		var err error
		t, err = d.Apply(act, by, h.now())
		return err
	})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Demand: d, Transitions: []Transition{t}}, nil
}

// Sweep is the system's round: it escalates overdue requests, demands
// and objections and expires lapsed grants, and returns the transitions it made. An
// object someone else changed meanwhile is passed over; run it every
// minute or so. (Releases do not wait for it: [Grant.Effective] ends a
// grant the moment it lapses.)
func (h *Hub) Sweep(ctx context.Context) ([]Transition, error) {
	now := h.now()
	var made []Transition
	var errs []error
	keep := func(o Outcome, err error) {
		switch {
		case err == nil:
			made = append(made, o.Transitions...)
		case !errors.Is(err, ErrConflict):
			errs = append(errs, err)
		}
	}
	rs, err := h.store.Requests(ctx, Filter{State: Submitted})
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.Overdue(now) {
			keep(h.ActOnRequest(ctx, r.ID, Act{Action: Escalate}, System))
		}
	}
	ds, err := h.store.Demands(ctx, Filter{State: Open})
	if err != nil {
		return made, err
	}
	for _, d := range ds {
		if d.Overdue(now) {
			keep(h.ActOnDemand(ctx, d.ID, Act{Action: Escalate}, System))
		}
	}
	obs, err := h.store.Objections(ctx, Filter{})
	if err != nil {
		return made, err
	}
	for _, o := range obs {
		if o.Overdue(now) {
			keep(h.ActOnObjection(ctx, o.ID, Act{Action: Escalate}, System, nil))
		}
	}
	gs, err := h.store.Grants(ctx, Filter{})
	if err != nil {
		return made, err
	}
	for _, g := range gs {
		if g.Lapsed(now) {
			keep(h.ActOnGrant(ctx, g.ID, Act{Action: Expire}, System))
		}
	}
	return made, errors.Join(errs...)
}

// FileObjection files an objection by by to a record of dataset ds (the
// catalogue's entry for in.Dataset), given the standing e the gateway
// found for by (see [Eligibility]). The claim is sealed before it is
// stored; without a [Sealer] nothing is stored and the error is
// ErrNoSealer.
func (h *Hub) FileObjection(ctx context.Context, in ObjectionInput, ds Dataset, by Actor, e Eligibility) (Outcome, error) {
	if h.sealer == nil {
		return Outcome{}, ErrNoSealer
	}
	now := h.now()
	o, t, err := NewObjection(in, ds, by, e, now, h.cal.Due(now, h.acceptDays))
	if err != nil {
		return Outcome{}, err
	}
	if err := o.seal(h.sealer); err != nil {
		return Outcome{}, err
	}
	if err := h.store.CreateObjection(ctx, o); err != nil {
		return Outcome{}, err
	}
	if o, err = o.open(h.sealer); err != nil {
		return Outcome{}, err
	}
	return Outcome{Objection: o, Transitions: []Transition{t}}, nil
}

// ActOnObjection takes act on objection id by by: a decision (accept,
// reject, correct, uphold) or, by [System], an escalation. A correction
// notifies recipients, the departments that received the record (the
// gateway finds them in its usage index; the owner and repeats are
// dropped, see [Recipients]): one [Notice] each, created in the same
// write as the correction, and the objection's Recipients are them.
// Recipients given with any other action are refused (ErrBadRequest).
// The act's reason is sealed before it is stored; without a [Sealer]
// nothing is stored and the error is ErrNoSealer.
func (h *Hub) ActOnObjection(ctx context.Context, id string, act Act, by Actor, recipients []string) (Outcome, error) {
	if h.sealer == nil {
		return Outcome{}, ErrNoSealer
	}
	if len(recipients) > 0 && act.Action != Correct {
		return Outcome{}, refuse(ErrBadRequest, "only a correction notifies the departments that received the record")
	}
	var out Outcome
	o, err := h.store.UpdateObjection(ctx, id, func(o *Objection) ([]*Notice, error) {
		now := h.now()
		out = Outcome{} // the store may run this again on a newer objection
		t, err := o.Apply(act, by, now, h.cal.Due(now, h.resolveDays))
		if err != nil {
			return nil, err
		}
		out.Transitions = []Transition{t}
		if o.State == Corrected {
			ns, ts, err := NewNotices(o, recipients, now)
			if err != nil {
				return nil, err
			}
			o.Recipients = Recipients(recipients, o.Owner)
			out.Notices, out.Transitions = ns, append(out.Transitions, ts...)
		}
		return out.Notices, o.seal(h.sealer)
	})
	if err != nil {
		return Outcome{}, err
	}
	if out.Objection, err = o.open(h.sealer); err != nil {
		return Outcome{}, err
	}
	return out, nil
}

// Objection returns objection id with the acknowledgements of the
// notices its correction sent, its text sealed: open it ([Hub.Open]) for
// those who may read it.
func (h *Hub) Objection(ctx context.Context, id string) (*Objection, error) {
	o, err := h.store.Objection(ctx, id)
	if err != nil {
		return nil, err
	}
	if o.State == Corrected {
		ns, err := h.store.Notices(ctx, Filter{Objection: o.ID})
		if err != nil {
			return nil, err
		}
		o.Acks = acks(ns)
	}
	return o, nil
}

// Objections returns the objections f passes, oldest first, as
// [Hub.Objection] does.
func (h *Hub) Objections(ctx context.Context, f Filter) ([]*Objection, error) {
	obs, err := h.store.Objections(ctx, f)
	if err != nil || !slices.ContainsFunc(obs, func(o *Objection) bool { return o.State == Corrected }) {
		return obs, err
	}
	ns, err := h.store.Notices(ctx, Filter{Owner: f.Owner, Dataset: f.Dataset, RecordID: f.RecordID})
	if err != nil {
		return nil, err
	}
	byObjection := map[string][]*Notice{}
	for _, n := range ns {
		byObjection[n.Objection] = append(byObjection[n.Objection], n)
	}
	for _, o := range obs {
		o.Acks = acks(byObjection[o.ID])
	}
	return obs, nil
}

// Open returns a copy of o with its claim and reasons opened, for a
// reader the gateway lets read them (the filer, the owning stewards, the
// coordinator). Text that does not open (altered at rest, moved from
// another objection, sealed under another key) fails the whole, never
// shown in part; without a [Sealer] the error is ErrNoSealer.
func (h *Hub) Open(o *Objection) (*Objection, error) {
	if h.sealer == nil {
		return nil, ErrNoSealer
	}
	return o.open(h.sealer)
}

// Notices returns the notices sent to dept, oldest first.
func (h *Hub) Notices(ctx context.Context, dept string) ([]*Notice, error) {
	if dept == "" {
		return nil, refuse(ErrForbidden, "notices are sent to departments: a caller without one has none")
	}
	return h.store.Notices(ctx, Filter{Dept: dept})
}

// AckNotice acknowledges notice id by by, a person of the department it
// was sent to. A notice is acknowledged once: acknowledging it again is
// ErrConflict, and the first acknowledgement stands.
func (h *Hub) AckNotice(ctx context.Context, id string, by Actor) (Outcome, error) {
	var t Transition
	n, err := h.store.UpdateNotice(ctx, id, func(n *Notice) error {
		var err error
		t, err = n.Apply(Act{Action: Acknowledge}, by, h.now())
		return err
	})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Notices: []*Notice{n}, Transitions: []Transition{t}}, nil
}
