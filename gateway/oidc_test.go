package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

// oidcProvider is an OpenID provider served by the test on loopback: a
// discovery document at every path ending in
// /.well-known/openid-configuration, and at /jwks a key set the test can
// rotate.
type oidcProvider struct {
	*httptest.Server
	keys       atomic.Value // []map[string]any
	doc        atomic.Pointer[http.HandlerFunc]
	docFetches atomic.Int64
	keyFetches atomic.Int64

	mu       sync.Mutex
	docPaths []string // the paths the discovery document was asked at
}

func newOIDCProvider(t *testing.T, keys ...map[string]any) *oidcProvider {
	t.Helper()
	p := &oidcProvider{}
	p.serveKeys(keys...)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/jwks":
			p.keyFetches.Add(1)
			w.Header().Set("Content-Type", "application/jwk-set+json")
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": p.keys.Load()})
		case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
			p.docFetches.Add(1)
			p.mu.Lock()
			p.docPaths = append(p.docPaths, r.URL.Path)
			p.mu.Unlock()
			if h := p.doc.Load(); h != nil {
				(*h)(w, r)
				return
			}
			p.writeDoc(w, map[string]any{"issuer": p.URL})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

// writeDoc writes a discovery document of doc's members and, unless doc
// names its own, the provider's jwks_uri, with members a real provider
// also publishes (some of which the gateway must ignore).
func (p *oidcProvider) writeDoc(w http.ResponseWriter, doc map[string]any) {
	full := map[string]any{
		"jwks_uri":                              p.URL + "/jwks",
		"authorization_endpoint":                p.URL + "/authorize",
		"token_endpoint":                        p.URL + "/token",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"none", "HS256", "RS256", "RS384", "ES256"},
	}
	for k, v := range doc {
		full[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(full)
}

// handleDoc makes h serve the discovery document.
func (p *oidcProvider) handleDoc(h http.HandlerFunc) { p.doc.Store(&h) }

// serveDoc serves doc's members (see writeDoc) as the discovery document.
func (p *oidcProvider) serveDoc(doc map[string]any) {
	p.handleDoc(func(w http.ResponseWriter, r *http.Request) { p.writeDoc(w, doc) })
}

func (p *oidcProvider) serveKeys(keys ...map[string]any) { p.keys.Store(keys) }

// config trusts the provider's tokens through discovery, with algs as
// auth.jwks.algorithms (default RS256, ES256, EdDSA).
func (p *oidcProvider) config(algs ...string) *Config {
	c := jwksConfig("", algs...)
	c.Auth.Issuer = p.URL
	c.Auth.Discovery = true
	return c
}

// token signs the claims of a good token from issuer.
func oidcToken(t testing.TB, issuer string, method jwt.SigningMethod, key any, kid string) string {
	t.Helper()
	return sign(t, method, key, kid, with(map[string]any{"iss": issuer}))
}

func TestOIDCDiscoveryFindsTheKeySetAndFollowsItsRotation(t *testing.T) {
	s := testSigners()
	p := newOIDCProvider(t, ecJWK(t, "a", s.ec))
	a := newTestAuthenticator(t, p.config())
	for _, kid := range []string{"a", ""} {
		assertAccepted(t, a, bearer(oidcToken(t, p.URL, jwt.SigningMethodES256, s.ec, kid)))
	}

	// The provider rotates to key b and drops key a. A token naming b
	// makes the gateway refetch the key set (unknown kid).
	p.serveKeys(ecJWK(t, "b", s.ec2))
	for _, kid := range []string{"b", ""} {
		assertAccepted(t, a, bearer(oidcToken(t, p.URL, jwt.SigningMethodES256, s.ec2, kid)))
	}
	for _, kid := range []string{"a", ""} {
		assertRefused(t, a, bearer(oidcToken(t, p.URL, jwt.SigningMethodES256, s.ec, kid)), "invalid token")
	}
	if got := p.docFetches.Load(); got != 1 {
		t.Errorf("the discovery document was fetched %d times, want once, at start", got)
	}
}

func TestOIDCDiscoveryDropsARemovedKeyAtTheNextRefresh(t *testing.T) {
	s := testSigners()
	p := newOIDCProvider(t, ecJWK(t, "a", s.ec))
	cfg := p.config()
	cfg.Auth.JWKS.Refresh = Duration(50 * time.Millisecond)
	a := newTestAuthenticator(t, cfg)
	assertAccepted(t, a, bearer(oidcToken(t, p.URL, jwt.SigningMethodES256, s.ec, "a")))

	p.serveKeys(ecJWK(t, "b", s.ec2))
	fetches := p.keyFetches.Load()
	deadline := time.Now().Add(5 * time.Second)
	for p.keyFetches.Load() < fetches+2 {
		if time.Now().After(deadline) {
			t.Fatal("the key set was not refreshed within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// No token named b, so no unknown kid refetched the set: the periodic
	// refresh alone brought b and took a.
	assertAccepted(t, a, bearer(oidcToken(t, p.URL, jwt.SigningMethodES256, s.ec2, "")))
	assertRefused(t, a, bearer(oidcToken(t, p.URL, jwt.SigningMethodES256, s.ec, "")), "invalid token")
}

// The discovery document advertises none, HS256 and RS384 for ID tokens;
// the gateway's allow-list stays the configured one.
func TestOIDCDiscoveryRefusesAlgorithmsOutsideTheAllowList(t *testing.T) {
	s := testSigners()
	p := newOIDCProvider(t, rsaJWK("r", &s.rsa.PublicKey, ""), ecJWK(t, "e", s.ec), octJWK("sym", s.hmac))
	a := newTestAuthenticator(t, p.config("RS256", "ES256"))
	assertAccepted(t, a, bearer(oidcToken(t, p.URL, jwt.SigningMethodRS256, s.rsa, "r")))
	assertAccepted(t, a, bearer(oidcToken(t, p.URL, jwt.SigningMethodES256, s.ec, "e")))

	pemBytes := publicPEM(t, &s.rsa.PublicKey)
	claims := with(map[string]any{"iss": p.URL})
	tests := []struct {
		name string
		tok  string
	}{
		{"RS384 when only RS256 is allowed", oidcToken(t, p.URL, jwt.SigningMethodRS384, s.rsa, "r")},
		{"RS384 without kid", oidcToken(t, p.URL, jwt.SigningMethodRS384, s.rsa, "")},
		{"PS256 with the RSA key", oidcToken(t, p.URL, jwt.SigningMethodPS256, s.rsa, "r")},
		{"HS256 with the RSA key's PEM as secret", oidcToken(t, p.URL, jwt.SigningMethodHS256, pemBytes, "r")},
		{"HS256 with the RSA key's modulus as secret", oidcToken(t, p.URL, jwt.SigningMethodHS256, s.rsa.N.Bytes(), "r")},
		{"HS256 with the RSA key's PEM, no kid", oidcToken(t, p.URL, jwt.SigningMethodHS256, pemBytes, "")},
		{"HS256 with the key set's oct key", oidcToken(t, p.URL, jwt.SigningMethodHS256, s.hmac, "sym")},
		{"none naming a key", unsigned(map[string]any{"alg": "none", "kid": "r"}, claims)},
		{"none", unsigned(map[string]any{"alg": "none"}, claims)},
		{"ES384 naming the P-256 key", oidcToken(t, p.URL, jwt.SigningMethodES384, s.ecP384, "e")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertRefused(t, a, bearer(tt.tok), "invalid token")
		})
	}
}

func TestOIDCDiscoveryTrimsTheIssuersTrailingSlash(t *testing.T) {
	s := testSigners()
	p := newOIDCProvider(t, ecJWK(t, "a", s.ec))
	tests := []struct {
		issuer   func() string
		wantPath string
	}{
		{func() string { return p.URL + "/" }, "/.well-known/openid-configuration"},
		{func() string { return p.URL + "/realms/sluice" }, "/realms/sluice/.well-known/openid-configuration"},
		{func() string { return p.URL + "/realms/sluice/" }, "/realms/sluice/.well-known/openid-configuration"},
	}
	for _, tt := range tests {
		issuer := tt.issuer()
		t.Run(issuer, func(t *testing.T) {
			p.serveDoc(map[string]any{"issuer": issuer})
			p.mu.Lock()
			p.docPaths = nil
			p.mu.Unlock()
			cfg := p.config()
			cfg.Auth.Issuer = issuer
			a := newTestAuthenticator(t, cfg)
			p.mu.Lock()
			got := p.docPaths
			p.mu.Unlock()
			if diff := cmp.Diff([]string{tt.wantPath}, got); diff != "" {
				t.Errorf("discovery document asked at (-want +got):\n%s", diff)
			}
			assertAccepted(t, a, bearer(oidcToken(t, issuer, jwt.SigningMethodES256, s.ec, "a")))
		})
	}
}

// Start fails, naming the URL it read, when the document cannot be read
// or cannot be trusted.
func TestOIDCDiscoveryFailsStartOnABadDocument(t *testing.T) {
	s := testSigners()
	p := newOIDCProvider(t, ecJWK(t, "a", s.ec))
	docURL := p.URL + "/.well-known/openid-configuration"
	doc := func(members map[string]any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { p.writeDoc(w, members) }
	}
	raw := func(status int, contentType, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
	redirect := func(to string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) }
	}
	tests := []struct {
		name string
		doc  http.HandlerFunc
		want string
	}{
		{"another issuer", doc(map[string]any{"issuer": "https://evil.example"}),
			`names issuer "https://evil.example", want exactly auth.issuer "` + p.URL + `"`},
		{"the issuer with a trailing slash", doc(map[string]any{"issuer": p.URL + "/"}), "want exactly auth.issuer"},
		{"the issuer in other case", doc(map[string]any{"issuer": strings.ToUpper(p.URL)}), "want exactly auth.issuer"},
		{"no issuer", doc(map[string]any{"issuer": nil}), `names issuer "", want exactly`},
		{"no jwks_uri", doc(map[string]any{"issuer": p.URL, "jwks_uri": nil}), "names no jwks_uri"},
		{"jwks_uri over http off loopback", doc(map[string]any{"issuer": p.URL, "jwks_uri": "http://idp.example/jwks"}),
			`jwks_uri: want an https URL (http only on loopback), got "http://idp.example/jwks"`},
		{"jwks_uri over http on a host named like loopback", doc(map[string]any{"issuer": p.URL, "jwks_uri": "http://localhost.evil.example/jwks"}),
			"jwks_uri: want an https URL"},
		{"jwks_uri relative", doc(map[string]any{"issuer": p.URL, "jwks_uri": "/jwks"}), "jwks_uri: want an https URL"},
		{"issuer not a string", doc(map[string]any{"issuer": 7}), "not a JSON object"},
		{"status 500", raw(http.StatusInternalServerError, "application/json", `{"error":"down"}`), "status 500, want 200"},
		{"status 404", raw(http.StatusNotFound, "text/plain", "not found"), "status 404, want 200"},
		{"an HTML page", raw(http.StatusOK, "text/html", "<html></html>"), `content type "text/html", want application/json`},
		{"no content type", raw(http.StatusOK, "", `{}`), "want application/json"},
		{"JSON content type, body not JSON", raw(http.StatusOK, "application/json", "<html></html>"), "not a JSON object"},
		{"a JSON array", raw(http.StatusOK, "application/json", `[]`), "not a JSON object"},
		{"JSON followed by more", raw(http.StatusOK, "application/json", `{"issuer":"`+p.URL+`"} {}`), "not a JSON object"},
		{"larger than 1 MiB", raw(http.StatusOK, "application/json",
			`{"issuer":"`+p.URL+`","jwks_uri":"`+p.URL+`/jwks","padding":"`+strings.Repeat("x", 1<<20)+`"}`), "response larger than 1 MiB"},
		{"redirect to http off loopback", redirect("http://idp.example/.well-known/openid-configuration"),
			`redirect refused: want an https URL (http only on loopback), got "http://idp.example/.well-known/openid-configuration"`},
		{"redirect loop", redirect("/loop/.well-known/openid-configuration"), "stopped after 5 redirects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.handleDoc(tt.doc)
			_, err := newAuthenticator(t.Context(), p.config())
			if err == nil {
				t.Fatal("newAuthenticator accepted the provider")
			}
			if !strings.HasPrefix(err.Error(), "auth.discovery: "+docURL) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant it to begin with auth.discovery: %s and contain %q", err, docURL, tt.want)
			}
		})
	}
}

func TestOIDCDiscoveryFailsStartWhenTheProviderIsDown(t *testing.T) {
	t.Run("refusing connections", func(t *testing.T) {
		p := newOIDCProvider(t)
		cfg := p.config()
		p.Close()
		_, err := newAuthenticator(t.Context(), cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "auth.discovery: "+p.URL+"/.well-known/openid-configuration: ") {
			t.Errorf("newAuthenticator error %v, want one naming the discovery URL", err)
		}
	})
	t.Run("not answering", func(t *testing.T) {
		p := newOIDCProvider(t)
		p.handleDoc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err := newAuthenticator(ctx, p.config())
		if err == nil || !strings.Contains(err.Error(), "auth.discovery: "+p.URL) || !strings.Contains(err.Error(), "deadline exceeded") {
			t.Errorf("newAuthenticator error %v, want a deadline naming the discovery URL", err)
		}
	})
}

// A configuration built in code skips Validate; the authenticator must
// still refuse what Validate would.
func TestNewAuthenticatorRefusesUnsafeDiscoverySettings(t *testing.T) {
	p := newOIDCProvider(t)
	tests := []struct {
		name string
		cfg  func() *Config
		want string
	}{
		{"a key set URL besides discovery", func() *Config {
			c := p.config()
			c.Auth.JWKS.URL = p.URL + "/jwks"
			return c
		}, "auth.jwks.url: leave empty with auth.discovery"},
		{"an issuer that is not a URL", func() *Config {
			c := p.config()
			c.Auth.Issuer = "test-idp"
			return c
		}, `auth.issuer: with auth.discovery, want an https URL (http only on loopback) without query or fragment, got "test-idp"`},
		{"an issuer over http off loopback", func() *Config {
			c := p.config()
			c.Auth.Issuer = "http://idp.example"
			return c
		}, "auth.issuer: with auth.discovery, want an https URL"},
		{"an issuer with a query", func() *Config {
			c := p.config()
			c.Auth.Issuer = p.URL + "?tenant=1"
			return c
		}, "auth.issuer: with auth.discovery, want an https URL"},
		{"HMAC from the discovered key set", func() *Config { return p.config("ES256", "HS256") }, "auth.jwks.algorithms"},
		{"none from the discovered key set", func() *Config { return p.config("none") }, "auth.jwks.algorithms"},
		{"a key set URL over http off loopback", func() *Config { return jwksConfig("http://idp.example/jwks") }, "auth.jwks.url: want an https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newAuthenticator(t.Context(), tt.cfg())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("newAuthenticator error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if got := p.docFetches.Load(); got != 0 {
		t.Errorf("settings refused before any fetch made %d discovery fetches", got)
	}
}

// Discovery built in code, without a jwks block, gets the defaults
// Validate would fill in.
func TestNewAuthenticatorUsesDiscoveryWithoutAJWKSBlock(t *testing.T) {
	s := testSigners()
	p := newOIDCProvider(t, ecJWK(t, "a", s.ec))
	cfg := p.config()
	cfg.Auth.JWKS = nil
	a := newTestAuthenticator(t, cfg)
	assertAccepted(t, a, bearer(oidcToken(t, p.URL, jwt.SigningMethodES256, s.ec, "a")))
	assertRefused(t, a, bearer(oidcToken(t, p.URL, jwt.SigningMethodRS256, s.rsa, "")), "invalid token")
}

func TestLoadConfigFillsDiscoveryDefaults(t *testing.T) {
	noKeys := validConfig[strings.Index(validConfig, "  keys:\n"):strings.Index(validConfig, "policy:\n")]
	tests := []struct {
		name string
		auth string
		want *JWKSConfig
	}{
		{"discovery alone", "  discovery: true\n", &JWKSConfig{Refresh: Duration(time.Hour), RefreshRateLimit: Duration(time.Minute),
			Algorithms: []string{"RS256", "ES256", "EdDSA"}}},
		{"discovery with key set settings", "  discovery: true\n  jwks:\n    refresh: 10m\n    algorithms: [PS256]\n",
			&JWKSConfig{Refresh: Duration(10 * time.Minute), RefreshRateLimit: Duration(time.Minute), Algorithms: []string{"PS256"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(writeConfig(t, edit(t, noKeys, tt.auth)))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if !cfg.Auth.Discovery {
				t.Error("auth.discovery is false")
			}
			if diff := cmp.Diff(tt.want, cfg.Auth.JWKS); diff != "" {
				t.Errorf("jwks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadConfigNamesTheInvalidDiscoveryField(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     string
	}{
		{"a key set URL besides discovery", "  keys:\n", "  discovery: true\n  jwks:\n    url: https://idp.example/jwks\n  keys:\n",
			"auth.jwks.url: leave empty with auth.discovery"},
		{"an issuer that is not a URL", "  issuer: https://idp.example\n", "  issuer: test-idp\n  discovery: true\n",
			`auth.issuer: with auth.discovery, want an https URL (http only on loopback) without query or fragment, got "test-idp"`},
		{"an issuer over http off loopback", "  issuer: https://idp.example\n", "  issuer: http://idp.example\n  discovery: true\n",
			"auth.issuer: with auth.discovery, want an https URL"},
		{"an issuer with a fragment", "  issuer: https://idp.example\n", "  issuer: \"https://idp.example#x\"\n  discovery: true\n",
			"auth.issuer: with auth.discovery, want an https URL"},
		{"an issuer with a query", "  issuer: https://idp.example\n", "  issuer: https://idp.example?tenant=1\n  discovery: true\n",
			"auth.issuer: with auth.discovery, want an https URL"},
		{"HMAC from the discovered key set", "  keys:\n", "  discovery: true\n  jwks:\n    algorithms: [HS256]\n  keys:\n",
			`auth.jwks.algorithms: unsupported algorithm "HS256" (no HMAC over JWKS)`},
		{"none from the discovered key set", "  keys:\n", "  discovery: true\n  jwks:\n    algorithms: [none]\n  keys:\n",
			`auth.jwks.algorithms: unsupported algorithm "none"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(writeConfig(t, edit(t, tt.old, tt.new)))
			if err == nil {
				t.Fatalf("LoadConfig accepted the config: %+v", c.Auth)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

// A redirect never takes the exchange from https to http, even to a
// loopback host the gateway could have been configured with.
func TestOIDCClientRefusesRedirectsThatDowngrade(t *testing.T) {
	req := func(u string) *http.Request { return httptest.NewRequest(http.MethodGet, u, nil) }
	tests := []struct {
		from, to string
		want     string // "" followed
	}{
		{"https://idp.example/.well-known/openid-configuration", "https://login.idp.example/.well-known/openid-configuration", ""},
		{"http://127.0.0.1:8080/.well-known/openid-configuration", "http://localhost:8080/.well-known/openid-configuration", ""},
		{"http://127.0.0.1:8080/.well-known/openid-configuration", "https://idp.example/.well-known/openid-configuration", ""},
		{"https://idp.example/.well-known/openid-configuration", "http://127.0.0.1:8080/.well-known/openid-configuration", "redirect refused: from https to http://127.0.0.1:8080/"},
		{"https://idp.example/jwks", "http://idp.example/jwks", "redirect refused: want an https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.from+" to "+tt.to, func(t *testing.T) {
			err := idpClient.CheckRedirect(req(tt.to), []*http.Request{req(tt.from)})
			if tt.want == "" && err != nil {
				t.Errorf("redirect refused: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("redirect error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
