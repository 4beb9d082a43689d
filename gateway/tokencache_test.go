package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifiedTokensAreCachedOnlyAsTheyWereSigned: after a token was
// verified, the same bytes are served from the cache, but a token changed
// in its claims or its signature is verified afresh and refused.
func TestVerifiedTokensAreCachedOnlyAsTheyWereSigned(t *testing.T) {
	s := testSigners()
	a := newTestAuthenticator(t, staticKeysConfig(t))
	tok := sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", validClaims())
	first := assertAccepted(t, a, bearer(tok))
	if again := assertAccepted(t, a, bearer(tok)); again != first {
		t.Error("the second use of a verified token was verified again, not served from the cache")
	}
	forged := tok[:len(tok)-2] + map[bool]string{true: "AA", false: "BB"}[tok[len(tok)-2:] != "AA"]
	assertRefused(t, a, bearer(forged), "signature")
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	otherClaims := sign(t, jwt.SigningMethodEdDSA, otherKey, "ed", with(map[string]any{"sub": "mallory"}))
	assertRefused(t, a, bearer(otherClaims), "signature")
}

// TestTokenCacheEndsAtExpiryAndStaysBounded: an entry is not served past
// the token's expiry or the cache's TTL, and a flood of distinct tokens
// does not grow the cache past its bound.
func TestTokenCacheEndsAtExpiryAndStaysBounded(t *testing.T) {
	var c tokenCache
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	p := &Principal{Subject: "alice"}
	c.put("short", p, now, now.Add(5*time.Second))
	c.put("long", p, now, now.Add(time.Hour))
	for _, tc := range []struct {
		tok  string
		at   time.Duration
		want bool
	}{
		{"short", 4 * time.Second, true},
		{"short", 5 * time.Second, false},
		{"long", tokenCacheTTL - time.Second, true},
		{"long", tokenCacheTTL, false},
		{"never-seen", 0, false},
	} {
		if got := c.get(tc.tok, now.Add(tc.at)) != nil; got != tc.want {
			t.Errorf("%s at +%v: cached %v, want %v", tc.tok, tc.at, got, tc.want)
		}
	}
	for i := range tokenCacheMax + 100 {
		c.put(fmt.Sprint("flood-", i), p, now, now.Add(time.Hour))
	}
	if n := len(c.m); n > tokenCacheMax {
		t.Errorf("cache holds %d entries, bound %d", n, tokenCacheMax)
	}
}
