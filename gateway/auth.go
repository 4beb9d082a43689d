package gateway

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/sluicegw/sluice/policy"
)

// Key families: a key verifies only algorithms of its own family, so an
// RSA public key can never be used as an HMAC secret.
const (
	famHMAC = iota + 1
	famRSA
	famP256
	famP384
	famP521
	famEd25519
)

var algFamily = map[string]int{
	"HS256": famHMAC, "HS384": famHMAC, "HS512": famHMAC,
	"RS256": famRSA, "RS384": famRSA, "RS512": famRSA,
	"PS256": famRSA, "PS384": famRSA, "PS512": famRSA,
	"ES256": famP256, "ES384": famP384, "ES512": famP521,
	"EdDSA": famEd25519,
}

// keyFamily returns the family of a verification key.
func keyFamily(key any) int {
	switch k := key.(type) {
	case []byte:
		return famHMAC
	case *rsa.PublicKey:
		return famRSA
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return famP256
		case elliptic.P384():
			return famP384
		case elliptic.P521():
			return famP521
		}
	case ed25519.PublicKey:
		return famEd25519
	}
	return 0
}

// Principal is an authenticated caller.
type Principal struct {
	// Issuer is the token's "iss".
	Issuer  string
	Subject string
	// Org is the caller's organisation: the "dept" claim, else "azp",
	// else "client_id"; "" when the token names none. Privacy budgets are
	// kept per issuer, organisation and subject.
	Org      string
	Roles    []string
	Dept     string
	District string
	Purpose  string
	TokenID  string
	// IssuedAt is the token's "iat", zero when it has none: a subject
	// revocation refuses the tokens issued before its cutoff, and those
	// that do not say when they were issued.
	IssuedAt time.Time
	Expires  time.Time
	Claims   map[string]any

	// policySubject is the principal as the policy sees it, built once
	// with the token's claims prepared for evaluation, so that every
	// request under a cached token shares that work.
	policySubject policy.Subject
}

// authError is why a token was refused; its message is safe to show the
// caller.
type authError struct{ msg string }

func (e *authError) Error() string { return e.msg }

type staticKey struct {
	id   string
	algs map[string]bool
	key  any
}

// authenticator validates bearer tokens.
type authenticator struct {
	parser   *jwt.Parser
	keys     []staticKey
	jwks     keyfunc.Keyfunc
	jwksAlgs map[string]bool
	leeway   time.Duration
	verified tokenCache
	// now is the clock tokens' exp, nbf and iat and the token cache are
	// judged by: time.Now unless the gateway sets its injected clock
	// (Deps.Now), so that a token is valid exactly when the rest of the
	// request thinks it is.
	now func() time.Time
}

// newAuthenticator builds the token validator of c. With auth.discovery it
// reads the identity provider's discovery document first, and fails when
// that cannot be done (see discoverKeySet); ctx bounds that read and the
// key set's refreshes.
func newAuthenticator(ctx context.Context, c *Config) (*authenticator, error) {
	// jwt skips the issuer and audience checks when they are empty.
	if c.Auth.Issuer == "" || c.Auth.Audience == "" {
		return nil, errors.New("auth: issuer and audience are required")
	}
	a := &authenticator{now: time.Now}
	var algs []string
	seen := map[string]bool{}
	addAlg := func(alg string) {
		if !seen[alg] {
			seen[alg] = true
			algs = append(algs, alg)
		}
	}
	for i, kc := range c.Auth.Keys {
		key, err := loadKey(c, kc)
		if err != nil {
			return nil, fmt.Errorf("auth.keys[%d]: %w", i, err)
		}
		sk := staticKey{id: kc.ID, algs: map[string]bool{}, key: key}
		for _, alg := range kc.Algorithms {
			if fam, ok := algFamily[alg]; !ok || keyFamily(key) != fam {
				return nil, fmt.Errorf("auth.keys[%d].algorithms: %s does not fit this key", i, alg)
			}
			sk.algs[alg] = true
			addAlg(alg)
		}
		a.keys = append(a.keys, sk)
	}
	j := c.Auth.JWKS
	if c.Auth.Discovery && j == nil {
		// Built in code: Validate did not fill it in.
		j = &JWKSConfig{}
		j.setDefaults()
	}
	if j != nil {
		a.jwksAlgs = map[string]bool{}
		for _, alg := range j.Algorithms {
			// Validate says so too; a configuration built in code must
			// not get around it. A key set is public: its "oct" keys
			// must never become HMAC secrets.
			if fam, ok := algFamily[alg]; !ok || fam == famHMAC {
				return nil, fmt.Errorf("auth.jwks.algorithms: %s cannot verify tokens from a key set", alg)
			}
			a.jwksAlgs[alg] = true
			addAlg(alg)
		}
		if j.RefreshRateLimit <= 0 {
			return nil, errors.New("auth.jwks.refresh_rate_limit: must be positive")
		}
		keySet := j.URL
		if c.Auth.Discovery {
			if j.URL != "" {
				return nil, errors.New("auth.jwks.url: leave empty with auth.discovery")
			}
			var err error
			if keySet, err = discoverKeySet(ctx, c.Auth.Issuer); err != nil {
				return nil, err
			}
		} else if err := checkFetchURL(j.URL); err != nil {
			return nil, fmt.Errorf("auth.jwks.url: %w", err)
		}
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{keySet}, keyfunc.Override{
			Client:            idpClient,
			RefreshInterval:   time.Duration(j.Refresh),
			RefreshUnknownKID: rate.NewLimiter(rate.Every(time.Duration(j.RefreshRateLimit)), 1),
			HTTPTimeout:       idpTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("auth.jwks: %w", err)
		}
		a.jwks = kf
	}
	sort.Strings(algs)
	a.parser = jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(c.Auth.Issuer),
		jwt.WithAudience(c.Auth.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.Auth.leeway()),
		// a.now is looked up at each check, not captured here, so that
		// New can give the authenticator the gateway's clock after
		// building it.
		jwt.WithTimeFunc(func() time.Time { return a.now() }),
	)
	a.leeway = c.Auth.leeway()
	return a, nil
}

func loadKey(c *Config, kc KeyConfig) (any, error) {
	if kc.SecretFile != "" {
		b, err := os.ReadFile(c.Path(kc.SecretFile))
		if err != nil {
			return nil, fmt.Errorf("secret_file: %w", err)
		}
		if len(b) < 32 {
			return nil, errors.New("secret_file: an HMAC secret needs at least 32 bytes")
		}
		return b, nil
	}
	b, err := os.ReadFile(c.Path(kc.PublicKeyFile))
	if err != nil {
		return nil, fmt.Errorf("public_key_file: %w", err)
	}
	return ParsePublicKeyPEM(b)
}

// ParsePublicKeyPEM reads a PKIX public key or the key of a certificate.
func ParsePublicKeyPEM(b []byte) (any, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	switch blk.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(blk.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	return nil, fmt.Errorf("unsupported PEM block %q", blk.Type)
}

// keyFor picks the verification key(s) for a token: the key its kid names
// (static first, then the JWKS), else every key allowed for its algorithm.
// A key never verifies an algorithm outside its own list and family; a
// JWKS key also never one other than its own "alg", nor when its "use" is
// not "sig".
func (a *authenticator) keyFor(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		// Before any key is looked up, so that it holds for every key
		// source and a refused token costs no key set refetch.
		if err := checkCritical(t.Header); err != nil {
			return nil, err
		}
		alg := t.Method.Alg()
		var kid string
		v, hasKid := t.Header["kid"]
		if hasKid {
			var ok bool
			if kid, ok = v.(string); !ok {
				return nil, errors.New("kid is not a string")
			}
			for _, k := range a.keys {
				if k.id == kid {
					if !k.algs[alg] {
						return nil, fmt.Errorf("algorithm %s not allowed for key %q", alg, kid)
					}
					return k.key, nil
				}
			}
		}
		var set jwt.VerificationKeySet
		if !hasKid {
			for _, k := range a.keys {
				if k.algs[alg] {
					set.Keys = append(set.Keys, k.key)
				}
			}
		}
		if a.jwks != nil && a.jwksAlgs[alg] {
			var remote []jwkset.JWK
			if hasKid {
				// An unknown kid refetches the key set, rate limited.
				j, err := a.jwks.Storage().KeyRead(ctx, kid)
				if err != nil {
					return nil, fmt.Errorf("no key %q: %w", kid, err)
				}
				remote = []jwkset.JWK{j}
			} else if all, err := a.jwks.Storage().KeyReadAll(ctx); err == nil {
				remote = all
			}
			for _, j := range remote {
				if key, ok := jwkVerifies(j, alg); ok {
					set.Keys = append(set.Keys, key)
				}
			}
		}
		if len(set.Keys) == 0 {
			if hasKid {
				return nil, fmt.Errorf("no key %q for algorithm %s", kid, alg)
			}
			return nil, fmt.Errorf("no key for algorithm %s", alg)
		}
		return set, nil
	}
}

// criticalError refuses a token whose header has "crit" (RFC 7515
// §4.1.11); its message is safe to show the caller and never repeats the
// header.
type criticalError struct{ problem string }

func (e *criticalError) Error() string { return e.problem }

// registeredHeaders are the header parameters RFC 7515 and RFC 7518
// define for JWS; a "crit" list must not name them.
var registeredHeaders = map[string]bool{
	"alg": true, "jku": true, "jwk": true, "kid": true, "x5u": true, "x5c": true,
	"x5t": true, "x5t#S256": true, "typ": true, "cty": true, "crit": true,
}

// checkCritical refuses a header with "crit". The extensions it lists
// must be understood for the token to be valid, and the gateway
// understands none (golang-jwt does not either: RFC 7797's "b64": false
// would change what the signature covers), so a well-formed list is
// refused as unsupported; one that is not a non-empty array of distinct
// names of extension parameters present in the header is malformed
// (§4.1.11 forbids the rest).
func checkCritical(h map[string]any) error {
	v, present := h["crit"]
	if !present {
		return nil
	}
	malformed := &criticalError{"malformed critical header (crit)"}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return malformed
	}
	seen := make(map[string]bool, len(list))
	for _, item := range list {
		name, ok := item.(string)
		if !ok || registeredHeaders[name] || seen[name] {
			return malformed
		}
		if _, ok := h[name]; !ok {
			return malformed
		}
		seen[name] = true
	}
	return &criticalError{"unsupported critical header (crit)"}
}

// jwkVerifies returns the public key of j when j may verify alg: a
// signature key of alg's family whose own "alg", if any, is alg.
func jwkVerifies(j jwkset.JWK, alg string) (any, bool) {
	m := j.Marshal()
	if (m.ALG != "" && m.ALG.String() != alg) || (m.USE != "" && m.USE != jwkset.UseSig) {
		return nil, false
	}
	key := j.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	if keyFamily(key) != algFamily[alg] {
		return nil, false
	}
	return key, true
}

// authenticate validates the request's bearer token.
func (a *authenticator) authenticate(r *http.Request) (*Principal, error) {
	hdrs := r.Header.Values("Authorization")
	if len(hdrs) == 0 {
		return nil, &authError{"missing bearer token"}
	}
	if len(hdrs) > 1 {
		return nil, &authError{"more than one Authorization header"}
	}
	scheme, tok, ok := strings.Cut(hdrs[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil, &authError{"Authorization must be a Bearer token"}
	}
	tok = strings.TrimSpace(tok)
	now := a.now()
	if p := a.verified.get(tok, now); p != nil {
		return p, nil
	}
	claims := jwt.MapClaims{}
	if _, err := a.parser.ParseWithClaims(tok, claims, a.keyFor(r.Context())); err != nil {
		return nil, &authError{"invalid token: " + tokenProblem(err)}
	}
	p, err := principalFrom(claims)
	if err != nil {
		return nil, err
	}
	a.verified.put(tok, p, now, p.Expires.Add(a.leeway))
	return p, nil
}

// tokenCache remembers tokens whose signature and claims were verified, so
// a client that sends the same token with every request pays for one
// signature check a minute instead of one per request. An entry is keyed by
// the SHA-256 of the whole token (a token altered in any byte misses), is
// shared read-only between requests, and ends at the token's expiry (with
// the leeway the parser allows) or after tokenCacheTTL, whichever is
// first, so keys removed from a JWKS stop working within that bound. The
// time claims nbf and iat, checked at verification, cannot become invalid
// later.
type tokenCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]cachedToken
}

type cachedToken struct {
	p     *Principal
	until time.Time
}

const (
	tokenCacheTTL = time.Minute
	tokenCacheMax = 16384
)

func (c *tokenCache) get(tok string, now time.Time) *Principal {
	k := sha256.Sum256([]byte(tok))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil
	}
	if !now.Before(e.until) {
		delete(c.m, k)
		return nil
	}
	return e.p
}

func (c *tokenCache) put(tok string, p *Principal, now, expires time.Time) {
	until := now.Add(tokenCacheTTL)
	if expires.Before(until) {
		until = expires
	}
	k := sha256.Sum256([]byte(tok))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[sha256.Size]byte]cachedToken)
	}
	if len(c.m) >= tokenCacheMax {
		// Expired entries go first; if none, an arbitrary quarter, so one
		// flood of distinct tokens cannot make the map grow without bound.
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < tokenCacheMax*3/4 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[k] = cachedToken{p: p, until: until}
}

// tokenProblem names what was wrong with a token without echoing it.
func tokenProblem(err error) string {
	var crit *criticalError
	switch {
	case errors.As(err, &crit):
		return crit.problem
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "required claim missing"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "signature not verified"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	}
	return "rejected"
}

func principalFrom(c jwt.MapClaims) (*Principal, error) {
	p := &Principal{Claims: map[string]any(c)}
	var err error
	str := func(name string) string {
		v, present := c[name]
		if !present || err != nil {
			return ""
		}
		s, ok := v.(string)
		if !ok {
			err = &authError{fmt.Sprintf("invalid token: claim %q must be a string", name)}
		}
		return s
	}
	p.Subject = str("sub")
	p.Dept = str("dept")
	p.District = str("district")
	p.Purpose = str("purpose")
	p.TokenID = str("jti")
	p.Issuer = str("iss")
	p.Org = cmp.Or(p.Dept, str("azp"), str("client_id"))
	if err != nil {
		return nil, err
	}
	if p.Subject == "" {
		return nil, &authError{`invalid token: "sub" is required`}
	}
	if v, present := c["roles"]; present {
		list, ok := v.([]any)
		if !ok {
			return nil, &authError{`invalid token: "roles" must be an array of strings`}
		}
		for _, r := range list {
			s, ok := r.(string)
			if !ok {
				return nil, &authError{`invalid token: "roles" must be an array of strings`}
			}
			p.Roles = append(p.Roles, s)
		}
	}
	if exp, err := c.GetExpirationTime(); err == nil && exp != nil {
		p.Expires = exp.Time
	}
	if iat, err := c.GetIssuedAt(); err == nil && iat != nil {
		p.IssuedAt = iat.Time
	}
	p.policySubject = p.newSubject().Prepared()
	return p, nil
}

// subject is the principal as the policy sees it.
func (p *Principal) subject() policy.Subject {
	if p.policySubject.ID != "" {
		return p.policySubject
	}
	return p.newSubject()
}

func (p *Principal) newSubject() policy.Subject {
	roles := p.Roles
	if roles == nil {
		roles = []string{}
	}
	return policy.Subject{ID: p.Subject, Roles: roles, Dept: p.Dept, District: p.District, Claims: p.Claims}
}
