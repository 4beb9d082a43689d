// Package hub is the sharing hub's workflows: a department requests a
// dataset and a steward of the owning department answers on a
// working-day clock; an approval becomes a grant the gateway enforces;
// a department demands data not in the catalogue and the owner publishes
// or refuses. It holds no HTTP: the gateway serves it.
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
	"time"
)

// Hub runs the workflows over a store.
type Hub struct {
	store       Store
	cal         *Calendar
	now         func() time.Time
	requestDays int
	demandDays  int
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
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// New returns a hub keeping its objects in s.
func New(s Store, o Options) *Hub {
	h := &Hub{store: s, cal: o.Calendar, now: o.Now, requestDays: o.RequestDays, demandDays: o.DemandDays}
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
	return h
}

// Store is the hub's store, for reading and listing.
func (h *Hub) Store() Store { return h.store }

// Calendar is the hub's calendar.
func (h *Hub) Calendar() *Calendar { return h.cal }

// Outcome is what an action did: the objects as they now are (those it
// touched; the others nil) and the transitions it made, in order, each
// one a record for the audit trail.
type Outcome struct {
	Request     *Request
	Grant       *Grant
	Demand      *Demand
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

// Sweep is the system's round: it escalates overdue requests and demands
// and expires lapsed grants, and returns the transitions it made. An
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
