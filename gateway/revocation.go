package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sluicegw/sluice/state"
)

// Revocations is the shared list of revoked tokens, by token id (jti):
// state.Redis across replicas, state.Bolt in one process.
type Revocations interface {
	// Revoke revokes the token id until expires.
	Revoke(ctx context.Context, id string, expires time.Time) error
	// Revoked returns the list unless it is still at version since.
	Revoked(ctx context.Context, since string) (state.RevocationList, error)
}

// defaultRevocationTTL is how long a revocation is kept when the officer
// does not say when the token expires: the longest lifetime `sluice token`
// gives. Tokens that live longer need expires_at.
const defaultRevocationTTL = 30 * 24 * time.Hour

// revocationCache is a gateway's copy of the revocation list. It asks for
// changes every poll (one round trip that returns only a version while
// nothing changed), so a revocation reaches every replica within a poll;
// authentication reads the copy and never waits on the backend.
type revocationCache struct {
	src      Revocations
	poll     time.Duration
	maxStale time.Duration
	now      func() time.Time

	// refreshing serialises refreshes (the poller's and the admin
	// endpoint's), so that an older answer never replaces a newer one.
	refreshing sync.Mutex
	mu         sync.RWMutex
	version    string
	ids        map[string]time.Time
	fresh      time.Time // when the copy was last confirmed current; zero: never
	err        error     // the last refresh's error
}

func newRevocationCache(src Revocations, cfg RevocationsConfig, now func() time.Time) *revocationCache {
	return &revocationCache{src: src, poll: time.Duration(cfg.Poll), maxStale: time.Duration(cfg.MaxStale), now: now}
}

// refresh brings the copy up to date.
func (c *revocationCache) refresh(ctx context.Context) error {
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	c.mu.RLock()
	since := c.version
	c.mu.RUnlock()
	ctx, cancel := context.WithTimeout(ctx, max(c.poll, time.Second))
	defer cancel()
	list, err := c.src.Revoked(ctx, since)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
	if err != nil {
		return err
	}
	if list.Changed {
		c.version, c.ids = list.Version, list.IDs
	}
	c.fresh = c.now()
	return nil
}

// run refreshes the copy every poll until ctx ends, logging when the
// backend goes away and comes back.
func (c *revocationCache) run(ctx context.Context, s *Server) {
	t := time.NewTicker(c.poll)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := c.refresh(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			s.log.Warn("token revocations cannot be refreshed", "error", err)
		case err == nil && failing:
			s.log.Info("token revocations refreshed again")
		}
		failing = err != nil
	}
}

// status says whether id is revoked, and how long the copy has gone
// without a successful refresh (0 while it is fresh).
func (c *revocationCache) status(id string) (revoked bool, stale time.Duration, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if id != "" {
		exp, ok := c.ids[id]
		revoked = ok && c.now().Before(exp)
	}
	if age := c.now().Sub(c.fresh); c.fresh.IsZero() || age > c.maxStale {
		stale = max(age, c.maxStale+1)
		err = c.err
		if err == nil {
			err = errors.New("never refreshed")
		}
	}
	return revoked, stale, err
}

// checkRevoked refuses a revoked token, and any token while the copy of
// the list is too old to vouch for it, unless state.on_failure is open.
func (s *Server) checkRevoked(x *exchange, p *Principal) *Error {
	if s.revocations == nil {
		return nil
	}
	revoked, stale, err := s.revocations.status(p.TokenID)
	if revoked {
		return errUnauthenticated("invalid token: revoked")
	}
	if stale > 0 && s.cfg.State.OnFailure != FailOpen {
		return errUnavailable("token revocations cannot be checked", fmt.Errorf("revocation list stale for %s: %w", stale.Round(time.Millisecond), err))
	}
	return nil
}

// revocationRequest is the body of POST /admin/v1/revocations.
type revocationRequest struct {
	// JTI is the id of the token to revoke.
	JTI string `json:"jti"`
	// ExpiresAt is when the token expires (RFC 3339), so that the
	// revocation need not be kept longer; default 30 days from now.
	ExpiresAt *time.Time `json:"expires_at"`
}

// maxRevocationBody bounds the request body of a revocation.
const maxRevocationBody = 4 << 10

// revoke serves POST /admin/v1/revocations for callers the policy allows
// the "revoke" action (the shipped policies: officers). The token is
// refused by this replica at once and by every other within
// state.revocations.poll. The request is audited with the revoked token's
// id, which names a token, not a person.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, "revoke")
	if !s.authorize(w, r, x, s.policies.Current(), "revoke") {
		return
	}
	req, e := readRevocation(r, s.now())
	if e != nil {
		s.fail(w, r, x, e)
		return
	}
	if s.revocationStore == nil {
		s.fail(w, r, x, errUnavailable("token revocation needs a state backend: set state.path or state.redis", nil))
		return
	}
	if err := s.revocationStore.Revoke(r.Context(), req.JTI, *req.ExpiresAt); err != nil {
		s.fail(w, r, x, errUnavailable("the revocation list is unavailable", err))
		return
	}
	// This replica refuses the token from now on; the others at their
	// next poll. A failed refresh here is retried by the poller.
	if err := s.revocations.refresh(r.Context()); err != nil {
		s.log.Warn("revocation stored but the local copy was not refreshed", "request_id", x.id, "error", err)
	}
	x.ev.Reason += fmt.Sprintf("; revoked token jti=%s until %s", strconv.Quote(req.JTI), req.ExpiresAt.UTC().Format(time.RFC3339))
	s.answerJSON(w, r, x, map[string]any{"revoked": req.JTI, "expires_at": req.ExpiresAt.UTC()})
}

// readRevocation reads and checks a revocation request's body.
func readRevocation(r *http.Request, now time.Time) (*revocationRequest, *Error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRevocationBody+1))
	if err != nil {
		return nil, errBadRequest("the request body could not be read")
	}
	if len(body) > maxRevocationBody {
		return nil, errTooLarge(fmt.Sprintf("a revocation is at most %d bytes", maxRevocationBody), nil)
	}
	var req revocationRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		return nil, errBadRequest(`want a JSON object {"jti": "TOKEN-ID", "expires_at": "RFC 3339 time"} (expires_at optional)`)
	}
	switch {
	case req.JTI == "" || len(req.JTI) > 256:
		return nil, errBadRequest("jti must be the id of the token, 1 to 256 bytes")
	case req.ExpiresAt == nil:
		exp := now.Add(defaultRevocationTTL)
		req.ExpiresAt = &exp
	case !req.ExpiresAt.After(now):
		return nil, errBadRequest("expires_at is past: the token is refused as expired already")
	}
	return &req, nil
}
