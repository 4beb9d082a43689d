package gateway

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sluicegw/sluice/policy"
)

const (
	testIssuer   = "https://idp.example"
	testAudience = "sluice"
)

// signers are the private halves of the test keys, generated once.
type signers struct {
	hmac      []byte
	rsa       *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	otherEd   ed25519.PrivateKey
	otherRSA  *rsa.PrivateKey
	ec2       *ecdsa.PrivateKey
	ecP384    *ecdsa.PrivateKey
	otherHMAC []byte
}

var testSigners = sync.OnceValue(func() *signers {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	s := &signers{hmac: []byte("0123456789abcdef0123456789abcdef-hmac"), otherHMAC: []byte("another secret of at least thirty-two bytes")}
	var err error
	s.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	s.otherRSA, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	s.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	s.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	s.ecP384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, s.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	_, s.otherEd, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return s
})

// publicPEM encodes a public key as PKIX PEM.
func publicPEM(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// writeKey writes b into dir and returns its name.
func writeKey(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// staticKeysConfig configures one key of each family, key files in a
// temporary directory, paths relative to it as in a config file.
func staticKeysConfig(t testing.TB) *Config {
	t.Helper()
	s := testSigners()
	dir := t.TempDir()
	return &Config{
		Auth: AuthConfig{
			Issuer:   testIssuer,
			Audience: testAudience,
			Keys: []KeyConfig{
				{ID: "hs", Algorithms: []string{"HS256"}, SecretFile: writeKey(t, dir, "hs.key", s.hmac)},
				{ID: "rsa", Algorithms: []string{"RS256"}, PublicKeyFile: writeKey(t, dir, "rsa.pem", publicPEM(t, &s.rsa.PublicKey))},
				{ID: "ec", Algorithms: []string{"ES256"}, PublicKeyFile: writeKey(t, dir, "ec.pem", publicPEM(t, &s.ec.PublicKey))},
				{ID: "ed", Algorithms: []string{"EdDSA"}, PublicKeyFile: writeKey(t, dir, "ed.pem", publicPEM(t, s.ed.Public()))},
			},
		},
		dir: dir,
	}
}

func newTestAuthenticator(t testing.TB, cfg *Config) *authenticator {
	t.Helper()
	a, err := newAuthenticator(t.Context(), cfg)
	if err != nil {
		t.Fatalf("newAuthenticator: %v", err)
	}
	return a
}

// validClaims are the claims of a good token; edit a copy per case.
func validClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss":   testIssuer,
		"aud":   testAudience,
		"sub":   "alice",
		"roles": []any{"analyst"},
		"dept":  "health",
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	}
}

// with returns validClaims changed by set; a nil value deletes the claim.
func with(set map[string]any) jwt.MapClaims {
	c := validClaims()
	for k, v := range set {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign makes a token; kid "" leaves the kid header out.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

func b64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// unsigned crafts an "alg: none" token by hand, as an attacker would.
func unsigned(header map[string]any, claims jwt.MapClaims) string {
	return b64(header) + "." + b64(claims) + "."
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/health/visits", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

// assertAccepted authenticates r and returns the principal.
func assertAccepted(t *testing.T, a *authenticator, r *http.Request) *Principal {
	t.Helper()
	p, err := a.authenticate(r)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	if p.Subject != "alice" {
		t.Errorf("subject %q, want alice", p.Subject)
	}
	return p
}

// assertRefused fails unless r is refused with an error safe to show the
// caller that contains want.
func assertRefused(t *testing.T, a *authenticator, r *http.Request, want string) {
	t.Helper()
	p, err := a.authenticate(r)
	if err == nil {
		t.Fatalf("authenticate accepted the request as %+v", p)
	}
	if p != nil {
		t.Errorf("authenticate returned principal %+v with its error", p)
	}
	var ae *authError
	if !errors.As(err, &ae) {
		t.Errorf("error %v is a %T, want an *authError", err, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}

func TestAuthenticateAcceptsTokensOfEveryKeyFamily(t *testing.T) {
	s := testSigners()
	a := newTestAuthenticator(t, staticKeysConfig(t))
	tests := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"HS256", jwt.SigningMethodHS256, s.hmac, "hs"},
		{"RS256", jwt.SigningMethodRS256, s.rsa, "rsa"},
		{"ES256", jwt.SigningMethodES256, s.ec, "ec"},
		{"EdDSA", jwt.SigningMethodEdDSA, s.ed, "ed"},
	}
	for _, tt := range tests {
		for _, kid := range []string{tt.kid, ""} {
			t.Run(tt.name+"/kid="+kid, func(t *testing.T) {
				assertAccepted(t, a, bearer(sign(t, tt.method, tt.key, kid, validClaims())))
			})
		}
	}
}

func TestAuthenticateAcceptsTokenVariants(t *testing.T) {
	s := testSigners()
	a := newTestAuthenticator(t, staticKeysConfig(t))
	tests := []struct {
		name string
		req  func() *http.Request
	}{
		{"audience list naming the gateway", func() *http.Request {
			return bearer(sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", with(map[string]any{"aud": []any{"other", testAudience}})))
		}},
		{"expired within the leeway", func() *http.Request {
			return bearer(sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", with(map[string]any{"exp": time.Now().Add(-10 * time.Second).Unix()})))
		}},
		{"not before within the leeway", func() *http.Request {
			return bearer(sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", with(map[string]any{"nbf": time.Now().Add(10 * time.Second).Unix()})))
		}},
		{"issued slightly in the future", func() *http.Request {
			return bearer(sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", with(map[string]any{"iat": time.Now().Add(10 * time.Second).Unix()})))
		}},
		{"no roles", func() *http.Request {
			return bearer(sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", with(map[string]any{"roles": nil})))
		}},
		{"lower-case scheme", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "bearer "+sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", validClaims()))
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertAccepted(t, a, tt.req())
		})
	}
}

func TestAuthenticateRefusesBadRequestsAndTokens(t *testing.T) {
	s := testSigners()
	cfg := staticKeysConfig(t)
	rsaPEM, err := os.ReadFile(cfg.Path(cfg.Auth.Keys[1].PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAuthenticator(t, cfg)
	ed := func(claims jwt.MapClaims) *http.Request {
		return bearer(sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", claims))
	}
	now := time.Now()
	tests := []struct {
		name string
		req  *http.Request
		want string
	}{
		{"no Authorization header", httptest.NewRequest(http.MethodGet, "/", nil), "missing bearer token"},
		{"two Authorization headers", func() *http.Request {
			r := ed(validClaims())
			r.Header.Add("Authorization", "Bearer "+sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", validClaims()))
			return r
		}(), "more than one Authorization header"},
		{"basic scheme", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.SetBasicAuth("alice", "secret")
			return r
		}(), "must be a Bearer token"},
		{"token without a scheme", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", validClaims()))
			return r
		}(), "must be a Bearer token"},
		{"empty bearer", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "Bearer ")
			return r
		}(), "must be a Bearer token"},
		{"not a JWT", bearer("not-a-token"), "invalid token: malformed"},
		{"alg none", bearer(unsigned(map[string]any{"alg": "none", "typ": "JWT"}, validClaims())), "invalid token"},
		{"alg none naming a key", bearer(unsigned(map[string]any{"alg": "none", "kid": "ed"}, validClaims())), "invalid token"},
		{"alg None", bearer(unsigned(map[string]any{"alg": "None"}, validClaims())), "invalid token"},
		{"signature stripped", bearer(strings.Join(strings.Split(sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", validClaims()), ".")[:2], ".") + "."),
			"invalid token"},
		{"claims swapped after signing", func() *http.Request {
			good := strings.Split(sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", validClaims()), ".")
			good[1] = b64(with(map[string]any{"roles": []any{"admin"}}))
			return bearer(strings.Join(good, "."))
		}(), "signature not verified"},
		{"signed by another key under a known kid", bearer(sign(t, jwt.SigningMethodEdDSA, s.otherEd, "ed", validClaims())), "signature not verified"},
		{"signed by another key without kid", bearer(sign(t, jwt.SigningMethodEdDSA, s.otherEd, "", validClaims())), "signature not verified"},
		{"signed by another RSA key", bearer(sign(t, jwt.SigningMethodRS256, s.otherRSA, "rsa", validClaims())), "signature not verified"},
		{"signed by another secret", bearer(sign(t, jwt.SigningMethodHS256, s.otherHMAC, "hs", validClaims())), "signature not verified"},
		{"HMAC with the RSA public key as secret, RSA kid", bearer(sign(t, jwt.SigningMethodHS256, rsaPEM, "rsa", validClaims())), "invalid token"},
		{"HMAC with the RSA public key as secret, no kid", bearer(sign(t, jwt.SigningMethodHS256, rsaPEM, "", validClaims())), "invalid token"},
		{"HMAC with the RSA public key as secret, HMAC kid", bearer(sign(t, jwt.SigningMethodHS256, rsaPEM, "hs", validClaims())), "signature not verified"},
		{"algorithm the key is not allowed, with kid", bearer(sign(t, jwt.SigningMethodRS512, s.rsa, "rsa", validClaims())), "invalid token"},
		{"algorithm the key is not allowed, without kid", bearer(sign(t, jwt.SigningMethodRS512, s.rsa, "", validClaims())), "invalid token"},
		{"PSS with a key allowed only PKCS#1 v1.5", bearer(sign(t, jwt.SigningMethodPS256, s.rsa, "rsa", validClaims())), "invalid token"},
		{"kid of another family", bearer(sign(t, jwt.SigningMethodEdDSA, s.ed, "ec", validClaims())), "invalid token"},
		{"unknown kid", bearer(sign(t, jwt.SigningMethodEdDSA, s.ed, "nope", validClaims())), "invalid token"},
		{"kid not a string", func() *http.Request {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, validClaims())
			tok.Header["kid"] = 7
			str, err := tok.SignedString(s.ed)
			if err != nil {
				t.Fatal(err)
			}
			return bearer(str)
		}(), "invalid token"},
		{"expired beyond the leeway", ed(with(map[string]any{"exp": now.Add(-time.Minute).Unix()})), "invalid token: expired"},
		{"not valid for minutes", ed(with(map[string]any{"nbf": now.Add(5 * time.Minute).Unix()})), "invalid token: not valid yet"},
		{"issued in the future", ed(with(map[string]any{"iat": now.Add(5 * time.Minute).Unix()})), "invalid token: not valid yet"},
		{"wrong issuer", ed(with(map[string]any{"iss": "https://evil.example"})), "invalid token: wrong issuer"},
		{"no issuer", ed(with(map[string]any{"iss": nil})), "invalid token"},
		{"wrong audience", ed(with(map[string]any{"aud": "other"})), "invalid token: wrong audience"},
		{"audience list without the gateway", ed(with(map[string]any{"aud": []any{"a", "b"}})), "invalid token: wrong audience"},
		{"no audience", ed(with(map[string]any{"aud": nil})), "invalid token"},
		{"no expiry", ed(with(map[string]any{"exp": nil})), "invalid token: required claim missing"},
		{"expiry not a number", ed(with(map[string]any{"exp": "tomorrow"})), "invalid token"},
		{"no subject", ed(with(map[string]any{"sub": nil})), `"sub" is required`},
		{"empty subject", ed(with(map[string]any{"sub": ""})), `"sub" is required`},
		{"subject not a string", ed(with(map[string]any{"sub": 42})), "invalid token"},
		{"roles a string", ed(with(map[string]any{"roles": "analyst"})), `"roles" must be an array of strings`},
		{"roles with a number", ed(with(map[string]any{"roles": []any{"analyst", 1}})), `"roles" must be an array of strings`},
		{"roles an object", ed(with(map[string]any{"roles": map[string]any{"analyst": true}})), `"roles" must be an array of strings`},
		{"dept a number", ed(with(map[string]any{"dept": 7})), `claim "dept" must be a string`},
		{"district a list", ed(with(map[string]any{"district": []any{"朝阳区"}})), `claim "district" must be a string`},
		{"purpose an object", ed(with(map[string]any{"purpose": map[string]any{}})), `claim "purpose" must be a string`},
		{"jti a number", ed(with(map[string]any{"jti": 1})), `claim "jti" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertRefused(t, a, tt.req, tt.want)
		})
	}
}

// With only an RSA key configured, no HMAC algorithm is acceptable at all:
// the RSA public key can never become an HMAC secret.
func TestAuthenticateRefusesKeyConfusionWithoutAnyHMACKey(t *testing.T) {
	s := testSigners()
	dir := t.TempDir()
	pemBytes := publicPEM(t, &s.rsa.PublicKey)
	cfg := &Config{Auth: AuthConfig{Issuer: testIssuer, Audience: testAudience, Keys: []KeyConfig{
		{ID: "rsa", Algorithms: []string{"RS256"}, PublicKeyFile: writeKey(t, dir, "rsa.pem", pemBytes)},
	}}, dir: dir}
	a := newTestAuthenticator(t, cfg)
	assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodRS256, s.rsa, "rsa", validClaims())))
	der, err := x509.MarshalPKIXPublicKey(&s.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string][]byte{"PEM": pemBytes, "DER": der} {
		for _, kid := range []string{"rsa", ""} {
			for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
				t.Run(name+"/"+m.Alg()+"/kid="+kid, func(t *testing.T) {
					assertRefused(t, a, bearer(sign(t, m, secret, kid, validClaims())), "invalid token")
				})
			}
		}
	}
}

func TestAuthenticateHonoursTheLeeway(t *testing.T) {
	s := testSigners()
	tests := []struct {
		name    string
		leeway  *Duration
		expired time.Duration // how long ago the token expired
		ok      bool
	}{
		{"default leeway, just expired", nil, 10 * time.Second, true},
		{"default leeway, long expired", nil, 45 * time.Second, false},
		{"no leeway, just expired", ptr(Duration(0)), 5 * time.Second, false},
		{"two minutes leeway", ptr(Duration(2 * time.Minute)), 90 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := staticKeysConfig(t)
			cfg.Auth.Leeway = tt.leeway
			a := newTestAuthenticator(t, cfg)
			r := bearer(sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", with(map[string]any{"exp": time.Now().Add(-tt.expired).Unix()})))
			if tt.ok {
				assertAccepted(t, a, r)
			} else {
				assertRefused(t, a, r, "invalid token: expired")
			}
		})
	}
}

// TestAuthenticateJudgesTokenTimesByTheInjectedClock: exp, nbf and iat are
// checked against the gateway's clock, not the machine's.
func TestAuthenticateJudgesTokenTimesByTheInjectedClock(t *testing.T) {
	s := testSigners()
	real := time.Now()
	tests := []struct {
		name   string
		clock  time.Time
		claims map[string]any
		want   string // "" accepted, else the refusal
	}{
		{"expired by real time, valid at the injected time", real.Add(-2 * time.Hour),
			map[string]any{"iat": real.Add(-150 * time.Minute).Unix(), "exp": real.Add(-time.Hour).Unix()}, ""},
		{"not yet valid by real time, valid at the injected time", real.Add(2 * time.Hour),
			map[string]any{"nbf": real.Add(90 * time.Minute).Unix(), "exp": real.Add(3 * time.Hour).Unix()}, ""},
		{"valid by real time, expired at the injected time", real.Add(2 * time.Hour),
			map[string]any{"iat": real.Unix(), "exp": real.Add(time.Hour).Unix()}, "invalid token: expired"},
		{"valid by real time, issued after the injected time", real.Add(-2 * time.Hour),
			map[string]any{"iat": real.Unix(), "exp": real.Add(time.Hour).Unix()}, "invalid token: not valid yet"},
		{"valid by real time, not yet valid at the injected time", real.Add(-2 * time.Hour),
			map[string]any{"iat": nil, "nbf": real.Unix(), "exp": real.Add(time.Hour).Unix()}, "invalid token: not valid yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAuthenticator(t, staticKeysConfig(t))
			a.now = func() time.Time { return tt.clock }
			r := bearer(sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", with(tt.claims)))
			if tt.want == "" {
				assertAccepted(t, a, r)
			} else {
				assertRefused(t, a, r, tt.want)
			}
		})
	}
}

// TestAuthenticateForgetsVerifiedTokensByTheInjectedClock: a token
// verified once is not served from the cache after the gateway's clock
// passes its expiry, however little real time went by.
func TestAuthenticateForgetsVerifiedTokensByTheInjectedClock(t *testing.T) {
	s := testSigners()
	a := newTestAuthenticator(t, staticKeysConfig(t))
	var clock atomic.Pointer[time.Time]
	now := time.Now()
	clock.Store(&now)
	a.now = func() time.Time { return *clock.Load() }
	tok := sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", with(map[string]any{"exp": now.Add(10 * time.Minute).Unix()}))
	assertAccepted(t, a, bearer(tok))
	assertAccepted(t, a, bearer(tok))
	later := now.Add(20 * time.Minute)
	clock.Store(&later)
	assertRefused(t, a, bearer(tok), "invalid token: expired")
}

func TestNewAuthenticatorRefusesKeysThatDoNotFit(t *testing.T) {
	s := testSigners()
	tests := []struct {
		name string
		key  func(dir string) KeyConfig
		want string
	}{
		{"RSA key for ES256", func(dir string) KeyConfig {
			return KeyConfig{Algorithms: []string{"ES256"}, PublicKeyFile: writeKey(t, dir, "k.pem", publicPEM(t, &s.rsa.PublicKey))}
		}, "auth.keys[0].algorithms: ES256 does not fit this key"},
		{"P-384 key for ES256", func(dir string) KeyConfig {
			return KeyConfig{Algorithms: []string{"ES256"}, PublicKeyFile: writeKey(t, dir, "k.pem", publicPEM(t, &s.ecP384.PublicKey))}
		}, "auth.keys[0].algorithms: ES256 does not fit this key"},
		{"Ed25519 key for RS256", func(dir string) KeyConfig {
			return KeyConfig{Algorithms: []string{"EdDSA", "RS256"}, PublicKeyFile: writeKey(t, dir, "k.pem", publicPEM(t, s.ed.Public()))}
		}, "auth.keys[0].algorithms: RS256 does not fit this key"},
		{"RSA key for HS256", func(dir string) KeyConfig {
			return KeyConfig{Algorithms: []string{"HS256"}, PublicKeyFile: writeKey(t, dir, "k.pem", publicPEM(t, &s.rsa.PublicKey))}
		}, "auth.keys[0].algorithms: HS256 does not fit this key"},
		{"secret for RS256", func(dir string) KeyConfig {
			return KeyConfig{Algorithms: []string{"RS256"}, SecretFile: writeKey(t, dir, "k.key", s.hmac)}
		}, "auth.keys[0].algorithms: RS256 does not fit this key"},
		{"unknown algorithm for an unsupported key type", func(dir string) KeyConfig {
			x, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return KeyConfig{Algorithms: []string{"XS256"}, PublicKeyFile: writeKey(t, dir, "k.pem", publicPEM(t, x.PublicKey()))}
		}, "auth.keys[0].algorithms: XS256 does not fit this key"},
		{"unknown algorithm", func(dir string) KeyConfig {
			return KeyConfig{Algorithms: []string{"XS256"}, PublicKeyFile: writeKey(t, dir, "k.pem", publicPEM(t, &s.rsa.PublicKey))}
		}, "auth.keys[0].algorithms: XS256 does not fit this key"},
		{"short secret", func(dir string) KeyConfig {
			return KeyConfig{Algorithms: []string{"HS256"}, SecretFile: writeKey(t, dir, "k.key", []byte("short"))}
		}, "auth.keys[0]: secret_file: an HMAC secret needs at least 32 bytes"},
		{"missing secret file", func(dir string) KeyConfig {
			return KeyConfig{Algorithms: []string{"HS256"}, SecretFile: "nope.key"}
		}, "auth.keys[0]: secret_file:"},
		{"missing public key file", func(dir string) KeyConfig {
			return KeyConfig{Algorithms: []string{"RS256"}, PublicKeyFile: "nope.pem"}
		}, "auth.keys[0]: public_key_file:"},
		{"not PEM", func(dir string) KeyConfig {
			return KeyConfig{Algorithms: []string{"RS256"}, PublicKeyFile: writeKey(t, dir, "k.pem", []byte("not a key"))}
		}, "auth.keys[0]: no PEM block"},
		{"private key PEM", func(dir string) KeyConfig {
			der, err := x509.MarshalPKCS8PrivateKey(s.rsa)
			if err != nil {
				t.Fatal(err)
			}
			return KeyConfig{Algorithms: []string{"RS256"}, PublicKeyFile: writeKey(t, dir, "k.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))}
		}, `auth.keys[0]: unsupported PEM block "PRIVATE KEY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := &Config{Auth: AuthConfig{Issuer: testIssuer, Audience: testAudience, Keys: []KeyConfig{tt.key(dir)}}, dir: dir}
			_, err := newAuthenticator(t.Context(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("newAuthenticator error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParsePublicKeyPEMReadsCertificates(t *testing.T) {
	s := testSigners()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &s.ec.PublicKey, s.ec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err != nil {
		t.Fatalf("ParsePublicKeyPEM: %v", err)
	}
	if pub, ok := got.(*ecdsa.PublicKey); !ok || !pub.Equal(&s.ec.PublicKey) {
		t.Errorf("ParsePublicKeyPEM = %T, want the certificate's key", got)
	}
}

// ecJWK is a P-256 JSON Web Key, built by hand as an identity provider
// serves it.
func ecJWK(t testing.TB, kid string, k *ecdsa.PrivateKey) map[string]any {
	t.Helper()
	pub, err := k.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	b := pub.Bytes() // 0x04 || X || Y
	return map[string]any{
		"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(b[1:33]),
		"y": base64.RawURLEncoding.EncodeToString(b[33:]),
	}
}

func rsaJWK(kid string, k *rsa.PublicKey, alg string) map[string]any {
	m := map[string]any{
		"kty": "RSA", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
	}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

func octJWK(kid string, secret []byte) map[string]any {
	return map[string]any{"kty": "oct", "kid": kid, "alg": "HS256", "k": base64.RawURLEncoding.EncodeToString(secret)}
}

// jwksServer serves a JWK Set that the test can replace.
type jwksServer struct {
	*httptest.Server
	keys    atomic.Value // []map[string]any
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys.Load()})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(keys ...map[string]any) { s.keys.Store(keys) }

func jwksConfig(url string, algs ...string) *Config {
	if len(algs) == 0 {
		algs = []string{"RS256", "ES256", "EdDSA"}
	}
	return &Config{Auth: AuthConfig{
		Issuer:   testIssuer,
		Audience: testAudience,
		JWKS: &JWKSConfig{
			URL:              url,
			Refresh:          Duration(time.Hour),
			RefreshRateLimit: Duration(10 * time.Millisecond),
			Algorithms:       algs,
		},
	}}
}

func TestAuthenticateFollowsJWKSKeyRotation(t *testing.T) {
	s := testSigners()
	srv := newJWKSServer(t, ecJWK(t, "k1", s.ec))
	a := newTestAuthenticator(t, jwksConfig(srv.URL))

	assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec, "k1", validClaims())))
	assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec, "", validClaims())))

	srv.serve(ecJWK(t, "k2", s.ec2))
	assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec2, "k2", validClaims())))
	assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec2, "", validClaims())))

	// The identity provider dropped k1: its tokens are revoked with it.
	assertRefused(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec, "k1", validClaims())), "invalid token")
	assertRefused(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec, "", validClaims())), "invalid token")
}

func TestAuthenticateRateLimitsJWKSRefetches(t *testing.T) {
	s := testSigners()
	srv := newJWKSServer(t, ecJWK(t, "k1", s.ec))
	cfg := jwksConfig(srv.URL)
	cfg.Auth.JWKS.RefreshRateLimit = Duration(time.Hour)
	a := newTestAuthenticator(t, cfg)
	before := srv.fetches.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for i := range 5 {
		r := bearer(sign(t, jwt.SigningMethodES256, s.ec, "unknown-"+string(rune('a'+i)), validClaims())).WithContext(ctx)
		if _, err := a.authenticate(r); err == nil {
			t.Fatal("a token with an unknown kid was accepted")
		}
	}
	if got := srv.fetches.Load() - before; got > 1 {
		t.Errorf("5 unknown kids caused %d refetches, want at most 1", got)
	}
}

func TestAuthenticateNeverUsesASymmetricJWK(t *testing.T) {
	s := testSigners()
	secret := s.hmac
	srv := newJWKSServer(t, octJWK("sym", secret), ecJWK(t, "k1", s.ec))
	for _, algs := range [][]string{nil, {"ES256"}} {
		t.Run(strings.Join(algs, ","), func(t *testing.T) {
			a := newTestAuthenticator(t, jwksConfig(srv.URL, algs...))
			assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec, "k1", validClaims())))
			for _, kid := range []string{"sym", ""} {
				assertRefused(t, a, bearer(sign(t, jwt.SigningMethodHS256, secret, kid, validClaims())), "invalid token")
			}
		})
	}
}

// A configuration built in code skips Validate; the authenticator must
// still refuse settings that would open it up.
func TestNewAuthenticatorRefusesUnsafeSettings(t *testing.T) {
	srv := newJWKSServer(t, octJWK("sym", testSigners().hmac))
	tests := []struct {
		name string
		cfg  func() *Config
		want string
	}{
		{"HMAC over JWKS", func() *Config { return jwksConfig(srv.URL, "ES256", "HS256") }, "auth.jwks.algorithms"},
		{"unknown JWKS algorithm", func() *Config { return jwksConfig(srv.URL, "none") }, "auth.jwks.algorithms"},
		{"unlimited JWKS refetches", func() *Config {
			c := jwksConfig(srv.URL)
			c.Auth.JWKS.RefreshRateLimit = 0
			return c
		}, "auth.jwks.refresh_rate_limit"},
		{"no issuer", func() *Config {
			c := jwksConfig(srv.URL)
			c.Auth.Issuer = ""
			return c
		}, "issuer"},
		{"no audience", func() *Config {
			c := staticKeysConfig(t)
			c.Auth.Audience = ""
			return c
		}, "audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newAuthenticator(t.Context(), tt.cfg())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("newAuthenticator error %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestAuthenticateRefusesHMACTokensNamingAnRSAJWK(t *testing.T) {
	s := testSigners()
	srv := newJWKSServer(t, rsaJWK("r1", &s.rsa.PublicKey, ""))
	a := newTestAuthenticator(t, jwksConfig(srv.URL))
	assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodRS256, s.rsa, "r1", validClaims())))
	pemBytes := publicPEM(t, &s.rsa.PublicKey)
	for _, secret := range [][]byte{pemBytes, s.rsa.N.Bytes()} {
		for _, kid := range []string{"r1", ""} {
			assertRefused(t, a, bearer(sign(t, jwt.SigningMethodHS256, secret, kid, validClaims())), "invalid token")
		}
	}
}

func TestAuthenticateHonoursTheJWKAlgorithm(t *testing.T) {
	s := testSigners()
	srv := newJWKSServer(t, rsaJWK("r1", &s.rsa.PublicKey, "RS256"))
	a := newTestAuthenticator(t, jwksConfig(srv.URL, "RS256", "PS256"))
	for _, kid := range []string{"r1", ""} {
		t.Run("kid="+kid, func(t *testing.T) {
			assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodRS256, s.rsa, kid, validClaims())))
			assertRefused(t, a, bearer(sign(t, jwt.SigningMethodPS256, s.rsa, kid, validClaims())), "invalid token")
		})
	}
}

func TestAuthenticateRefusesEncryptionJWKs(t *testing.T) {
	s := testSigners()
	enc := ecJWK(t, "k1", s.ec)
	enc["use"] = "enc"
	srv := newJWKSServer(t, enc)
	a := newTestAuthenticator(t, jwksConfig(srv.URL))
	for _, kid := range []string{"k1", ""} {
		assertRefused(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec, kid, validClaims())), "invalid token")
	}
}

func TestAuthenticatePrefersStaticKeysOverJWKS(t *testing.T) {
	s := testSigners()
	// The key set serves a different key under the static key's id.
	srv := newJWKSServer(t, ecJWK(t, "ec", s.ec2))
	cfg := staticKeysConfig(t)
	cfg.Auth.JWKS = jwksConfig(srv.URL).Auth.JWKS
	a := newTestAuthenticator(t, cfg)
	assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec, "ec", validClaims())))
	assertRefused(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec2, "ec", validClaims())), "invalid token")
	// Without a kid either key may verify.
	assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec2, "", validClaims())))
}

func TestPrincipalFromMapsClaims(t *testing.T) {
	exp := time.Unix(1795000000, 0)
	claims := jwt.MapClaims{
		"sub":      "carol",
		"roles":    []any{"caseworker", "public"},
		"dept":     "civil",
		"district": "朝阳区",
		"purpose":  "social-assistance",
		"jti":      "tok-123",
		"exp":      float64(exp.Unix()),
		"custom":   "kept",
	}
	got, err := principalFrom(claims)
	if err != nil {
		t.Fatalf("principalFrom: %v", err)
	}
	want := &Principal{
		Subject:  "carol",
		Org:      "civil",
		Roles:    []string{"caseworker", "public"},
		Dept:     "civil",
		District: "朝阳区",
		Purpose:  "social-assistance",
		TokenID:  "tok-123",
		Expires:  exp,
		Claims:   map[string]any(claims),
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Principal{})); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}

	wantSubject := policy.Subject{ID: "carol", Roles: []string{"caseworker", "public"}, Dept: "civil", District: "朝阳区", Claims: claims}
	if diff := cmp.Diff(wantSubject, got.subject(), cmpopts.IgnoreUnexported(policy.Subject{})); diff != "" {
		t.Errorf("subject (-want +got):\n%s", diff)
	}
}

func TestPrincipalFromLeavesOptionalClaimsEmpty(t *testing.T) {
	got, err := principalFrom(jwt.MapClaims{"sub": "bob"})
	if err != nil {
		t.Fatalf("principalFrom: %v", err)
	}
	want := &Principal{Subject: "bob", Claims: map[string]any{"sub": "bob"}}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Principal{})); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
	// The policy sees an empty role list, never null.
	if roles := got.subject().Roles; roles == nil || len(roles) != 0 {
		t.Errorf("subject roles %#v, want an empty list", roles)
	}
}

func TestAuthenticateMapsTheTokenIntoThePrincipal(t *testing.T) {
	s := testSigners()
	a := newTestAuthenticator(t, staticKeysConfig(t))
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	p := assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodEdDSA, s.ed, "ed", with(map[string]any{
		"exp": exp.Unix(), "purpose": "public-health", "district": "海淀区", "jti": "j1",
	}))))
	got := Principal{Subject: p.Subject, Roles: p.Roles, Dept: p.Dept, District: p.District, Purpose: p.Purpose, TokenID: p.TokenID, Expires: p.Expires}
	want := Principal{Subject: "alice", Roles: []string{"analyst"}, Dept: "health", District: "海淀区", Purpose: "public-health", TokenID: "j1", Expires: exp}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Principal{})); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
}

func BenchmarkAuthenticateEdDSA(b *testing.B) {
	s := testSigners()
	a := newTestAuthenticator(b, staticKeysConfig(b))
	r := bearer(sign(b, jwt.SigningMethodEdDSA, s.ed, "ed", validClaims()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

// signWithHeader makes a token whose header also holds extra (a nil value
// sets JSON null).
func signWithHeader(t testing.TB, method jwt.SigningMethod, key any, kid string, extra map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, validClaims())
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range extra {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// critHeaders are headers with "crit" (RFC 7515 §4.1.11), each making a
// correctly signed token invalid, and the problem the refusal names.
var critHeaders = []struct {
	name   string
	header map[string]any
	want   string
}{
	{"unencoded payload (RFC 7797)", map[string]any{"crit": []any{"b64"}, "b64": false}, "unsupported critical header"},
	{"RFC 7515 example extension", map[string]any{"crit": []any{"http://example.invalid/UNDEFINED"}, "http://example.invalid/UNDEFINED": true}, "unsupported critical header"},
	{"two extensions", map[string]any{"crit": []any{"ext1", "ext2"}, "ext1": 1, "ext2": "x"}, "unsupported critical header"},
	{"a claim name as extension", map[string]any{"crit": []any{"exp"}, "exp": 1}, "unsupported critical header"},
	{"empty list", map[string]any{"crit": []any{}}, "malformed critical header"},
	{"null", map[string]any{"crit": nil}, "malformed critical header"},
	{"a string", map[string]any{"crit": "b64", "b64": false}, "malformed critical header"},
	{"an object", map[string]any{"crit": map[string]any{"ext1": true}, "ext1": 1}, "malformed critical header"},
	{"a number in the list", map[string]any{"crit": []any{"ext1", 7}, "ext1": 1}, "malformed critical header"},
	{"an extension not in the header", map[string]any{"crit": []any{"ext1"}}, "malformed critical header"},
	{"an extension named twice", map[string]any{"crit": []any{"ext1", "ext1"}, "ext1": 1}, "malformed critical header"},
	{"alg", map[string]any{"crit": []any{"alg"}}, "malformed critical header"},
	{"kid", map[string]any{"crit": []any{"kid"}}, "malformed critical header"},
	{"typ", map[string]any{"crit": []any{"typ"}}, "malformed critical header"},
	{"crit itself", map[string]any{"crit": []any{"crit"}}, "malformed critical header"},
	{"x5t#S256 absent", map[string]any{"crit": []any{"x5t#S256"}}, "malformed critical header"},
}

// TestAuthenticateRefusesEveryCriticalHeader: a token whose header has
// "crit" is invalid however well it is signed, with every key family, with
// or without kid, and a second use is refused again, never served from the
// token cache. The refusal never repeats what the header named.
func TestAuthenticateRefusesEveryCriticalHeader(t *testing.T) {
	s := testSigners()
	a := newTestAuthenticator(t, staticKeysConfig(t))
	keys := []struct {
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{jwt.SigningMethodHS256, s.hmac, "hs"},
		{jwt.SigningMethodEdDSA, s.ed, "ed"},
		{jwt.SigningMethodRS256, s.rsa, "rsa"},
		{jwt.SigningMethodES256, s.ec, ""},
	}
	for _, k := range keys {
		assertAccepted(t, a, bearer(sign(t, k.method, k.key, k.kid, validClaims())))
		for _, tt := range critHeaders {
			t.Run(k.method.Alg()+"/kid="+k.kid+"/"+tt.name, func(t *testing.T) {
				tok := signWithHeader(t, k.method, k.key, k.kid, tt.header)
				for range 2 {
					assertRefused(t, a, bearer(tok), "invalid token: "+tt.want)
				}
				_, err := a.authenticate(bearer(tok))
				for name := range tt.header {
					if name != "crit" && strings.Contains(err.Error(), name) {
						t.Errorf("the refusal %q repeats the header's %q", err, name)
					}
				}
			})
		}
	}
}

// TestAuthenticateRefusesCriticalHeadersFromAKeySetBeforeFetchingKeys:
// tokens verified with a JWKS key are refused the same way, and a "crit"
// token naming an unknown kid does not make the gateway fetch the set.
func TestAuthenticateRefusesCriticalHeadersFromAKeySetBeforeFetchingKeys(t *testing.T) {
	s := testSigners()
	srv := newJWKSServer(t, ecJWK(t, "k1", s.ec))
	a := newTestAuthenticator(t, jwksConfig(srv.URL))
	assertAccepted(t, a, bearer(sign(t, jwt.SigningMethodES256, s.ec, "k1", validClaims())))
	for _, tt := range critHeaders {
		for _, kid := range []string{"k1", ""} {
			t.Run(tt.name+"/kid="+kid, func(t *testing.T) {
				assertRefused(t, a, bearer(signWithHeader(t, jwt.SigningMethodES256, s.ec, kid, tt.header)), "invalid token: "+tt.want)
			})
		}
	}
	before := srv.fetches.Load()
	crit := map[string]any{"crit": []any{"b64"}, "b64": false}
	assertRefused(t, a, bearer(signWithHeader(t, jwt.SigningMethodES256, s.ec, "never-seen", crit)), "unsupported critical header")
	if got := srv.fetches.Load() - before; got != 0 {
		t.Errorf("a crit token with an unknown kid fetched the key set %d times", got)
	}
}

// TestAuthenticateAcceptsHeadersWithoutCrit: extension parameters that are
// not marked critical may be ignored (RFC 7515 §4), so they do not refuse
// a token.
func TestAuthenticateAcceptsHeadersWithoutCrit(t *testing.T) {
	s := testSigners()
	a := newTestAuthenticator(t, staticKeysConfig(t))
	for _, extra := range []map[string]any{nil, {"typ": "at+jwt"}, {"ext1": 1}, {"b64": true}} {
		assertAccepted(t, a, bearer(signWithHeader(t, jwt.SigningMethodEdDSA, s.ed, "ed", extra)))
	}
}

// TestCriticalHeaderTokenIsRefusedWith401AndAuditedEveryTime: through the
// gateway, a correctly signed token with "crit" is refused as
// unauthenticated and audited like any bad token, on every request.
func TestCriticalHeaderTokenIsRefusedWith401AndAuditedEveryTime(t *testing.T) {
	g := newScaleGateway(t, "")
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "test-idp", "aud": "sluice", "sub": "alice",
		"roles": []any{"reader"}, "exp": time.Now().Add(time.Hour).Unix()})
	plain, err := tok.SignedString(g.secret)
	if err != nil {
		t.Fatal(err)
	}
	tok.Header["crit"] = []any{"urn:example:extension"}
	tok.Header["urn:example:extension"] = true
	crit, err := tok.SignedString(g.secret)
	if err != nil {
		t.Fatal(err)
	}
	if w := g.get("/v1/health/visits", plain); w.Code != http.StatusOK {
		t.Fatalf("the same token without crit: %d %s", w.Code, w.Body)
	}
	for i := range 2 {
		w := g.get("/v1/health/visits", crit)
		if w.Code != http.StatusUnauthorized || errCode(t, w) != "unauthenticated" ||
			!strings.Contains(w.Body.String(), "invalid token: unsupported critical header") || strings.Contains(w.Body.String(), "example") {
			t.Errorf("request %d: %d %s, want 401 naming an unsupported critical header, not which", i+1, w.Code, w.Body)
		}
		if d, status, reason := g.lastEvent(t); d != "deny" || status != http.StatusUnauthorized || !strings.Contains(reason, "critical header") {
			t.Errorf("request %d audited as %s %d %q", i+1, d, status, reason)
		}
	}
}
