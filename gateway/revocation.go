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

// defaultRevocationTTL is how long a revocation is kept when the officer
// does not say when the tokens expire: the longest lifetime `sluice token`
// gives. A token id's revocation is kept that long from now, a subject's
// that long from its cutoff, when every token issued before the cutoff has
// expired. Tokens that live longer need expires_at.
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
	subjects   map[state.RevokedSubject]state.SubjectRevocation
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
		c.version, c.ids, c.subjects = list.Version, list.IDs, list.Subjects
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

// check says whether p's token is revoked, by its id or by its subject,
// and how long the copy has gone without a successful refresh (0 while it
// is fresh). A nil p asks only about the copy.
func (c *revocationCache) check(p *Principal) (revoked bool, stale time.Duration, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	now := c.now()
	if p != nil && p.TokenID != "" {
		exp, ok := c.ids[p.TokenID]
		revoked = ok && now.Before(exp)
	}
	if p != nil && !revoked {
		r, ok := c.subjects[state.RevokedSubject{Issuer: p.Issuer, Subject: p.Subject}]
		// A token that does not say when it was issued may be older than
		// the cutoff: it is refused too.
		revoked = ok && now.Before(r.Expires) && (p.IssuedAt.IsZero() || p.IssuedAt.Before(r.IssuedBefore))
	}
	if age := now.Sub(c.fresh); c.fresh.IsZero() || age > c.maxStale {
		stale = max(age, c.maxStale+1)
		err = c.err
		if err == nil {
			err = errors.New("never refreshed")
		}
	}
	return revoked, stale, err
}

// status says whether token id is revoked, and how stale the copy is (see
// check); readiness asks it with "".
func (c *revocationCache) status(id string) (revoked bool, stale time.Duration, err error) {
	if id == "" {
		return c.check(nil)
	}
	return c.check(&Principal{TokenID: id})
}

// msgRevoked is the refusal of a revoked token, whichever way it was
// revoked: the caller learns no more than that.
const msgRevoked = "invalid token: revoked"

// checkRevoked refuses a revoked token, and any token while the copy of
// the list is too old to vouch for it, unless state.on_failure is open.
func (s *Server) checkRevoked(x *exchange, p *Principal) *Error {
	if s.revocations == nil {
		return nil
	}
	revoked, stale, err := s.revocations.check(p)
	if revoked {
		return errUnauthenticated(msgRevoked)
	}
	if stale > 0 && s.cfg.State.OnFailure != FailOpen {
		return errUnavailable("token revocations cannot be checked", fmt.Errorf("revocation list stale for %s: %w", stale.Round(time.Millisecond), err))
	}
	return nil
}

// revocationRequest is the body of POST /admin/v1/revocations: one token
// by its id, or every token of a subject issued before a time.
type revocationRequest struct {
	// JTI is the id of the token to revoke.
	JTI string `json:"jti"`
	// Subject is the subject ("sub") whose tokens to revoke, of the
	// configured issuer: those issued before IssuedBefore, and those that
	// do not say when they were issued. Tokens issued later are accepted.
	Subject string `json:"subject"`
	// IssuedBefore is the cutoff (RFC 3339), with subject only; default
	// now.
	IssuedBefore *time.Time `json:"issued_before"`
	// ExpiresAt is when the revoked tokens expire (RFC 3339), so that the
	// revocation need not be kept longer; default 30 days from now for a
	// token id, 30 days from the cutoff for a subject.
	ExpiresAt *time.Time `json:"expires_at"`
	// Reason says why, for the audit trail, where it is keyed-hashed as
	// free text is.
	Reason string `json:"reason"`
}

// maxRevocationBody bounds the request body of a revocation.
const maxRevocationBody = 4 << 10

// revoke serves POST /admin/v1/revocations for callers the policy allows
// the "revoke" action (the shipped policies: officers). The tokens are
// refused by this replica at once and by every other within
// state.revocations.poll. The request is audited with the revoked token's
// id, which names a token, not a person, or with the revoked subject, in
// clear as every record's caller is.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, "revoke")
	if !s.authorize(w, r, x, s.policies.Current(), "revoke") {
		return
	}
	req, e := readRevocation(r, s.now(), s.cfg.Auth.leeway())
	if e != nil {
		s.fail(w, r, x, e)
		return
	}
	if s.revocationStore == nil {
		s.fail(w, r, x, errUnavailable("token revocation needs a state backend: set state.path or state.redis", nil))
		return
	}
	var (
		err     error
		audited string
		answer  map[string]any
	)
	if req.JTI != "" {
		err = s.revocationStore.Revoke(r.Context(), req.JTI, *req.ExpiresAt)
		audited = fmt.Sprintf("revoked token jti=%s until %s", strconv.Quote(req.JTI), req.ExpiresAt.UTC().Format(time.RFC3339))
		answer = map[string]any{"revoked": req.JTI, "expires_at": req.ExpiresAt.UTC()}
	} else {
		who := state.RevokedSubject{Issuer: s.cfg.Auth.Issuer, Subject: req.Subject}
		err = s.revocationStore.RevokeSubject(r.Context(), who, state.SubjectRevocation{IssuedBefore: *req.IssuedBefore, Expires: *req.ExpiresAt})
		audited = fmt.Sprintf("revoked the tokens of subject %s issued before %s until %s", strconv.Quote(req.Subject),
			req.IssuedBefore.UTC().Format(time.RFC3339Nano), req.ExpiresAt.UTC().Format(time.RFC3339))
		answer = map[string]any{"subject": req.Subject, "issuer": who.Issuer,
			"issued_before": req.IssuedBefore.UTC(), "expires_at": req.ExpiresAt.UTC()}
	}
	if err != nil {
		s.fail(w, r, x, errUnavailable("the revocation list is unavailable", err))
		return
	}
	x.ev.Reason += "; " + audited
	if req.Reason != "" {
		x.ev.Reason += "; reason " + s.hasher.Sum(req.Reason)
	}
	// This replica refuses the tokens from now on; the others at their
	// next poll. A failed refresh here is retried by the poller.
	if err := s.revocations.refresh(r.Context()); err != nil {
		s.log.Warn("revocation stored but the local copy was not refreshed", "request_id", x.id, "error", err)
	}
	s.answerJSON(w, r, x, answer)
}

// Bounds of a revocation request's strings.
const (
	maxRevokedName   = 256
	maxRevokedReason = 1024
)

// readRevocation reads and checks a revocation request's body and fills
// its defaults. leeway is the clock skew tokens are allowed, which a
// cutoff may also be ahead of now.
func readRevocation(r *http.Request, now time.Time, leeway time.Duration) (*revocationRequest, *Error) {
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
		return nil, errBadRequest(`want a JSON object {"jti": "TOKEN-ID"} or {"subject": "SUBJECT", "issued_before": "RFC 3339 time"}, ` +
			`each with optional "expires_at" (RFC 3339) and "reason"`)
	}
	switch {
	case req.JTI != "" && req.Subject != "":
		return nil, errBadRequest("give jti (one token) or subject (the tokens of one subject), not both")
	case req.JTI == "" && req.Subject == "":
		return nil, errBadRequest("give jti, the id of the token to revoke, or subject, whose tokens to revoke")
	case len(req.JTI) > maxRevokedName:
		return nil, errBadRequest(fmt.Sprintf("jti must be the id of the token, 1 to %d bytes", maxRevokedName))
	case len(req.Subject) > maxRevokedName:
		return nil, errBadRequest(fmt.Sprintf("subject must be the tokens' sub claim, 1 to %d bytes", maxRevokedName))
	case req.JTI != "" && req.IssuedBefore != nil:
		return nil, errBadRequest("issued_before goes with subject: a token id names one token")
	case len(req.Reason) > maxRevokedReason:
		return nil, errBadRequest(fmt.Sprintf("reason is at most %d bytes", maxRevokedReason))
	}
	if req.Subject != "" {
		if req.IssuedBefore == nil {
			req.IssuedBefore = &now
		}
		if req.IssuedBefore.After(now.Add(leeway)) {
			return nil, errBadRequest("issued_before is in the future: the tokens the subject is given until then would be refused too")
		}
		if req.ExpiresAt == nil {
			exp := req.IssuedBefore.Add(defaultRevocationTTL)
			req.ExpiresAt = &exp
		}
		if !req.ExpiresAt.After(now) {
			return nil, errBadRequest("every token issued before issued_before has expired already " +
				"(tokens are taken to live at most 30 days; give expires_at for longer-lived ones)")
		}
		return &req, nil
	}
	if req.ExpiresAt == nil {
		exp := now.Add(defaultRevocationTTL)
		req.ExpiresAt = &exp
	}
	if !req.ExpiresAt.After(now) {
		return nil, errBadRequest("expires_at is past: the token is refused as expired already")
	}
	return &req, nil
}
