package gateway

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/redistest"
	"github.com/sluicegw/sluice/state"
)

// revocationBackends are the state backends replicas share revocations
// through (a Bolt file is shared by gateways of one process only).
var revocationBackends = []struct {
	name  string
	state func(t *testing.T) sharedState
}{
	{"memory", func(*testing.T) sharedState {
		return struct {
			*state.Memory
			*state.LocalLimiter
		}{state.NewMemory(), state.NewLocalLimiter(nil)}
	}},
	{"bolt", func(t *testing.T) sharedState {
		b, err := state.OpenBolt(filepath.Join(t.TempDir(), "sluice.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return struct {
			*state.Bolt
			*state.LocalLimiter
		}{b, state.NewLocalLimiter(nil)}
	}},
	{"redis", func(t *testing.T) sharedState {
		r, err := state.NewRedis(redistest.Start(t).Client(), state.RedisOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}},
}

// TestOfficerRevokesEveryTokenASubjectWasIssuedBeforeATime: revoked by
// subject on one replica, a token without jti issued before the cutoff is
// refused there at once and on the other replica within a poll, as is one
// that does not say when it was issued; a token issued after the cutoff,
// and other subjects' tokens, are accepted.
func TestOfficerRevokesEveryTokenASubjectWasIssuedBeforeATime(t *testing.T) {
	for _, b := range revocationBackends {
		t.Run(b.name, func(t *testing.T) {
			gs := newReplicas(t, 2, "state: {revocations: {poll: 20ms}}\n", b.state(t))
			g := gs[0]
			old := g.tokenIssuedAt(t, "alice", time.Now().Add(-10*time.Minute), "reader")
			undated := g.tokenIssuedAt(t, "alice", time.Time{}, "reader")
			bob := g.tokenIssuedAt(t, "bob", time.Now().Add(-10*time.Minute), "reader")
			for _, r := range gs {
				for _, tok := range []string{old, undated, bob} {
					if w := r.get("/v1/health/visits", tok); w.Code != http.StatusOK {
						t.Fatalf("before the revocation: %d %s", w.Code, w.Body)
					}
				}
			}

			officer := g.token(t, "oscar", "o1", "officer")
			w := g.do(http.MethodPost, "/admin/v1/revocations", officer, `{"subject":"alice","reason":"laptop stolen"}`)
			if w.Code != http.StatusOK {
				t.Fatalf("revoke: %d %s", w.Code, w.Body)
			}
			var answer struct {
				Subject      string    `json:"subject"`
				Issuer       string    `json:"issuer"`
				IssuedBefore time.Time `json:"issued_before"`
				ExpiresAt    time.Time `json:"expires_at"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil || answer.Subject != "alice" || answer.Issuer != "test-idp" ||
				time.Since(answer.IssuedBefore).Abs() > time.Minute || answer.ExpiresAt.Sub(answer.IssuedBefore) != defaultRevocationTTL {
				t.Errorf("answer %s (%v)", w.Body, err)
			}
			if d, status, reason := g.lastEvent(t); d != "allow" || status != 200 || !strings.Contains(reason, `subject "alice"`) ||
				strings.Contains(reason, "laptop") || !strings.Contains(reason, "; reason ") {
				t.Errorf("revocation audited as %s %d %q: want the subject, and the reason keyed-hashed", d, status, reason)
			}

			for _, tok := range []string{old, undated} {
				w := g.get("/v1/health/visits", tok)
				if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "invalid token: revoked") {
					t.Errorf("on the replica that revoked: %d %s, want 401 revoked", w.Code, w.Body)
				}
				if d, status, _ := g.lastEvent(t); d != "deny" || status != http.StatusUnauthorized {
					t.Errorf("the refusal was audited as %s %d", d, status)
				}
			}
			start := time.Now()
			eventually(t, "the other replica refuses the old token", func() bool {
				return gs[1].get("/v1/health/visits", old).Code == http.StatusUnauthorized
			})
			if took := time.Since(start); took > time.Second {
				t.Errorf("the other replica took %v", took)
			}
			if w := gs[1].get("/v1/health/visits", undated); w.Code != http.StatusUnauthorized {
				t.Errorf("the other replica, a token without iat: %d", w.Code)
			}

			reissued := g.tokenIssuedAt(t, "alice", answer.IssuedBefore.Truncate(time.Second).Add(time.Second), "reader")
			for i, r := range gs {
				for name, tok := range map[string]string{"alice's new token": reissued, "bob's token": bob} {
					if w := r.get("/v1/health/visits", tok); w.Code != http.StatusOK {
						t.Errorf("replica %d, %s: %d %s", i, name, w.Code, w.Body)
					}
				}
			}
		})
	}
}

// TestSubjectRevocationWithAPastCutoffSparesTokensIssuedSince: an officer
// may revoke only the tokens issued before a time that has passed.
func TestSubjectRevocationWithAPastCutoffSparesTokensIssuedSince(t *testing.T) {
	g := newScaleGateway(t, "")
	cutoff := time.Now().Add(-time.Hour).UTC()
	before := g.tokenIssuedAt(t, "carol", cutoff.Add(-time.Hour), "reader")
	since := g.tokenIssuedAt(t, "carol", cutoff.Add(30*time.Minute), "reader")
	body := `{"subject":"carol","issued_before":"` + cutoff.Format(time.RFC3339Nano) + `"}`
	if w := g.do(http.MethodPost, "/admin/v1/revocations", g.token(t, "oscar", "o1", "officer"), body); w.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if w := g.get("/v1/health/visits", before); w.Code != http.StatusUnauthorized {
		t.Errorf("a token issued before the cutoff: %d, want 401", w.Code)
	}
	if w := g.get("/v1/health/visits", since); w.Code != http.StatusOK {
		t.Errorf("a token issued after the cutoff: %d %s, want 200", w.Code, w.Body)
	}
}

// TestRevocationRequestsAreCheckedAndRefusedWith400: a request that does
// not say exactly what to revoke, or that could not refuse anything, is
// refused with a message that says what is wrong, and audited.
func TestRevocationRequestsAreCheckedAndRefusedWith400(t *testing.T) {
	g := newScaleGateway(t, "")
	officer := g.token(t, "oscar", "o1", "officer")
	now := time.Now().UTC()
	at := func(d time.Duration) string { return `"` + now.Add(d).Format(time.RFC3339) + `"` }
	for _, tc := range []struct {
		name, body, want string
	}{
		{"nothing named", `{}`, "give jti, the id of the token to revoke, or subject"},
		{"a token and a subject", `{"jti":"x","subject":"alice"}`, "not both"},
		{"a cutoff for a token id", `{"jti":"x","issued_before":` + at(-time.Hour) + `}`, "issued_before goes with subject"},
		{"a cutoff that is not a time", `{"subject":"alice","issued_before":"yesterday"}`, "want a JSON object"},
		{"a subject that is not a string", `{"subject":7}`, "want a JSON object"},
		{"an unknown field", `{"subject":"alice","until":"x"}`, "want a JSON object"},
		{"two objects", `{"subject":"alice"}{"subject":"bob"}`, "want a JSON object"},
		{"a cutoff in the future", `{"subject":"alice","issued_before":` + at(time.Hour) + `}`, "issued_before is in the future"},
		{"a cutoff every affected token has outlived", `{"subject":"alice","issued_before":` + at(-31*24*time.Hour) + `}`, "has expired already"},
		{"an expiry past", `{"subject":"alice","issued_before":` + at(-time.Hour) + `,"expires_at":` + at(-time.Minute) + `}`, "has expired already"},
		{"a subject too long", `{"subject":"` + strings.Repeat("a", 257) + `"}`, "subject must be the tokens' sub claim, 1 to 256 bytes"},
		{"a token id too long", `{"jti":"` + strings.Repeat("a", 257) + `"}`, "jti must be the id of the token"},
		{"a reason too long", `{"subject":"alice","reason":"` + strings.Repeat("a", 1025) + `"}`, "reason is at most 1024 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := g.do(http.MethodPost, "/admin/v1/revocations", officer, tc.body)
			if w.Code != http.StatusBadRequest || errCode(t, w) != "bad_request" || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("%d %s, want 400 saying %q", w.Code, w.Body, tc.want)
			}
			if _, status, _ := g.lastEvent(t); status != http.StatusBadRequest {
				t.Errorf("audited with status %d", status)
			}
		})
	}
	if w := g.do(http.MethodPost, "/admin/v1/revocations", g.token(t, "alice", "a1", "reader"), `{"subject":"bob"}`); w.Code != http.StatusForbidden {
		t.Errorf("a reader revoked a subject: %d %s", w.Code, w.Body)
	}
	for _, ok := range []string{
		`{"subject":"alice","issued_before":` + at(10*time.Second) + `}`, // within the clock skew tokens are allowed
		`{"jti":"x","reason":"reported by the owner"}`,
		`{"subject":"alice","issued_before":` + at(-40*24*time.Hour) + `,"expires_at":` + at(24*time.Hour) + `}`,
	} {
		if w := g.do(http.MethodPost, "/admin/v1/revocations", officer, ok); w.Code != http.StatusOK {
			t.Errorf("body %s: %d %s, want 200", ok, w.Code, w.Body)
		}
	}
}

// TestRevocationCacheRefusesBySubjectAndIssueTime walks the rule a
// subject revocation applies, on one copy of the list.
func TestRevocationCacheRefusesBySubjectAndIssueTime(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	cutoff := now.Add(-time.Hour)
	c := &revocationCache{now: func() time.Time { return now }, maxStale: time.Minute, fresh: now,
		ids: map[string]time.Time{"gone": now.Add(time.Hour)},
		subjects: map[state.RevokedSubject]state.SubjectRevocation{
			{Issuer: "idp", Subject: "alice"}: {IssuedBefore: cutoff, Expires: now.Add(time.Hour)},
			{Issuer: "idp", Subject: "zed"}:   {IssuedBefore: cutoff, Expires: now.Add(-time.Second)},
		}}
	for _, tc := range []struct {
		name string
		p    Principal
		want bool
	}{
		{"issued before the cutoff", Principal{Issuer: "idp", Subject: "alice", IssuedAt: cutoff.Add(-time.Second)}, true},
		{"issued at the cutoff", Principal{Issuer: "idp", Subject: "alice", IssuedAt: cutoff}, false},
		{"issued after the cutoff", Principal{Issuer: "idp", Subject: "alice", IssuedAt: cutoff.Add(time.Second)}, false},
		{"no issue time", Principal{Issuer: "idp", Subject: "alice"}, true},
		{"after the cutoff but a revoked id", Principal{Issuer: "idp", Subject: "alice", IssuedAt: now, TokenID: "gone"}, true},
		{"another subject", Principal{Issuer: "idp", Subject: "bob"}, false},
		{"the subject of another issuer", Principal{Issuer: "other", Subject: "alice"}, false},
		{"a revocation past its expiry", Principal{Issuer: "idp", Subject: "zed"}, false},
	} {
		if got, stale, _ := c.check(&tc.p); got != tc.want || stale != 0 {
			t.Errorf("%s: revoked %v (stale %v), want %v", tc.name, got, stale, tc.want)
		}
	}
}
