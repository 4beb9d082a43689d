package gateway

// The sharing hub, served: requests answered on the clock become grants,
// and the grants in force reach the policy with every read (input.grants).
// The hub's objects live in a hub.Store (bbolt beside the state file, or
// Redis shared by replicas); this file keeps the gateway's copy of the
// grants in force, which every replica refreshes from the store's grants
// version, and sweeps the clock.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/policy"
	"github.com/sluicegw/sluice/state"
)

// Grants are polled this often; a copy older than grantsMaxStale (the
// store unreachable) is not used: grants fail closed, so that a grant
// revoked on another replica stops releasing within a second everywhere.
const (
	grantsPoll     = 250 * time.Millisecond
	grantsMaxStale = time.Second
	sweepEvery     = time.Minute
)

// grantCache is this replica's copy of the active grants, by department
// and dataset, each beside the form the policy input takes, made once.
type grantCache struct {
	mu      sync.RWMutex
	version string
	checked time.Time // the last time the store answered
	byKey   map[string][]cachedGrant
	// disputed are the records under an open objection, by dataset and
	// record id: the store's grants version changes with objections too.
	disputed map[string]map[string][]disputeRef
}

type cachedGrant struct {
	g  *hub.Grant
	in policy.Grant
}

func grantKey(dept, dataset string) string { return dept + "\x00" + dataset }

// refresh reloads the grants when the store's grants version moved.
func (c *grantCache) refresh(ctx context.Context, st hub.Store, now time.Time) error {
	v, err := st.GrantsVersion(ctx)
	if err != nil {
		return err
	}
	c.mu.RLock()
	same := v == c.version
	c.mu.RUnlock()
	if same {
		c.mu.Lock()
		c.checked = now
		c.mu.Unlock()
		return nil
	}
	gs, err := st.Grants(ctx, hub.Filter{State: hub.Active})
	if err != nil {
		return err
	}
	m := make(map[string][]cachedGrant, len(gs))
	for _, g := range gs {
		k := grantKey(g.Dept, g.Dataset)
		m[k] = append(m[k], cachedGrant{g: g, in: policy.Grant{ID: g.ID, Dataset: g.Dataset, Dept: g.Dept,
			Purpose: g.Purpose, Fields: g.Fields, ValidUntil: g.ValidUntil, MaxRows: g.MaxRows, MinK: g.MinK, MinL: g.MinL}})
	}
	obs, err := st.Objections(ctx, hub.Filter{})
	if err != nil {
		return err
	}
	disputed := map[string]map[string][]disputeRef{}
	for _, o := range obs {
		if !o.Unresolved() || o.RecordID == "" {
			continue
		}
		byID := disputed[o.Dataset]
		if byID == nil {
			byID = map[string][]disputeRef{}
			disputed[o.Dataset] = byID
		}
		byID[o.RecordID] = append(byID[o.RecordID], disputeRef{objection: o.ID, field: o.Field})
	}
	c.mu.Lock()
	c.version, c.checked, c.byKey, c.disputed = v, now, m, disputed
	c.mu.Unlock()
	return nil
}

// disputedIn returns the records of dataset under an open objection, by
// id. A copy too old to trust (the store unreachable) still marks what
// it knew: a mark is a warning, and one that came late is no release.
func (c *grantCache) disputedIn(dataset string) map[string][]disputeRef {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.disputed[dataset]
}

// inForce returns, as the policy input takes them, the grants of dept on
// dataset for purpose effective at now; none when the copy is stale.
func (c *grantCache) inForce(dept, dataset, purpose string, now time.Time) []policy.Grant {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if now.Sub(c.checked) > grantsMaxStale {
		return nil
	}
	var out []policy.Grant
	for _, cg := range c.byKey[grantKey(dept, dataset)] {
		if cg.g.Purpose == purpose && cg.g.Effective(now) {
			out = append(out, cg.in)
		}
	}
	return out
}

// openHub sets the hub up over deps.Hub: the calendar, the grants copy
// and the loops that keep it and the clock. Without a store the hub's
// routes answer 503 and no read is made under a grant.
func (s *Server) openHub(ctx context.Context, deps Deps) error {
	if deps.Hub == nil {
		return nil
	}
	cal, err := s.cfg.calendar()
	if err != nil {
		return err
	}
	sealer, err := hub.NewSealer(s.sealKey)
	if err != nil {
		return fmt.Errorf("hub.seal_key_file: %w", err)
	}
	s.hub = hub.New(deps.Hub, hub.Options{Calendar: cal, RequestDays: s.cfg.Hub.Due.Request,
		DemandDays: s.cfg.Hub.Due.Demand, ObjectionAccept: s.cfg.Hub.Due.ObjectionAccept,
		ObjectionResolve: s.cfg.Hub.Due.ObjectionResolve, Sealer: sealer, Now: s.now})
	if s.webhooks, err = s.newWebhooks(ctx); err != nil {
		return err
	}
	if err := s.grants.refresh(ctx, deps.Hub, s.now()); err != nil {
		s.log.Warn("sharing grants cannot be read yet; no read is made under a grant until they can", "error", err)
	}
	go s.keepGrants(ctx)
	if !deps.HubReadOnly {
		go s.keepClock(ctx)
	}
	return nil
}

// keepGrants refreshes the grants copy every grantsPoll.
func (s *Server) keepGrants(ctx context.Context) {
	t := time.NewTicker(grantsPoll)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.grants.refresh(ctx, s.hub.Store(), s.now())
		if err != nil && !failing {
			s.log.Warn("sharing grants cannot be refreshed; reads under grants are refused until they can", "error", err)
		} else if err == nil && failing {
			s.log.Info("sharing grants refreshed again")
		}
		failing = err != nil
	}
}

// keepClock runs the hub's sweep every sweepEvery, auditing what it does.
func (s *Server) keepClock(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.sweep(ctx)
	}
}

// sweep escalates what is overdue and expires what lapsed, each
// transition a record of the trail (actor: the system).
func (s *Server) sweep(ctx context.Context) {
	made, err := s.hub.Sweep(ctx)
	for _, t := range made {
		s.recordTransition(ctx, t, newRequestID(), nil)
	}
	if len(made) > 0 {
		s.grants.refresh(ctx, s.hub.Store(), s.now())
	}
	if err != nil {
		s.log.Warn("hub sweep failed", "error", err)
	}
}

// policyGrants are the grants in force for x's read or statistics of ds,
// as the policy input carries them.
func (s *Server) policyGrants(x *exchange, ds *dataset) []policy.Grant {
	if s.hub == nil || x.principal == nil || x.principal.Dept == "" {
		return nil
	}
	return s.grants.inForce(x.principal.Dept, ds.src.cfg.Name+"/"+ds.cfg.Name, x.purpose, x.start)
}

// hubError maps a hub refusal to the gateway's errors.
func hubError(err error) *Error {
	var he *hub.Error
	var ue *state.UnavailableError
	switch {
	case errors.As(err, &he):
		switch {
		case errors.Is(err, hub.ErrConflict):
			return errConflict(he.Msg)
		case errors.Is(err, hub.ErrForbidden):
			return errForbidden(he.Msg)
		case errors.Is(err, hub.ErrNotFound):
			return errNotFound(he.Msg)
		case errors.Is(err, hub.ErrBadRequest):
			return errBadRequest(he.Msg)
		}
	case errors.Is(err, hub.ErrNoSealer):
		return errUnavailable("objections cannot be kept: no key to seal their text", err)
	case errors.As(err, &ue):
		return errUnavailable("the hub's store is unavailable", err)
	}
	return errInternal(err)
}

// actor is x's caller as the hub sees it.
func actor(p *Principal) hub.Actor {
	return hub.Actor{Subject: p.Subject, Dept: p.Dept, Steward: slices.Contains(p.Roles, "steward"),
		Coordinator: slices.Contains(p.Roles, "coordinator")}
}
