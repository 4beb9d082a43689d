package gateway

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/internal/redistest"
	"github.com/sluicegw/sluice/state"
)

const unauthenticatedLimit = "rate_limits: {unauthenticated: {rate: 3, per: 1h, burst: 3}}\n"

// Client addresses of the tests (documentation ranges).
const (
	addrA = "203.0.113.7:40001"
	addrB = "198.51.100.9:40002"
)

// TestUnauthenticatedLimitRefusesAnAddressPastItsAllowanceWith429: every
// kind of failed authentication from one address draws on its allowance;
// past it the request is refused with 429 rate_limited, Retry-After, a
// JSON error with the request id, and an audit record. Accepted tokens
// from that address take nothing and keep working, and another address is
// not affected.
func TestUnauthenticatedLimitRefusesAnAddressPastItsAllowanceWith429(t *testing.T) {
	g := newScaleGateway(t, unauthenticatedLimit)
	alice := g.token(t, "alice", "a1", "reader")
	for i := range 5 {
		if w := g.from(addrA, http.MethodGet, "/v1/health/visits", alice); w.Code != http.StatusOK {
			t.Fatalf("valid request %d before any failure: %d %s", i+1, w.Code, w.Body)
		}
	}
	if err := g.st.Memory.Revoke(context.Background(), "gone", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.revocations.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	other, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "test-idp", "aud": "sluice", "sub": "mallory",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("not the gateway's secret, but 32 bytes long"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ name, token string }{
		{"no token", ""},
		{"signed with another secret", other},
		{"revoked", g.token(t, "eve", "gone", "reader")},
	} {
		w := g.from(addrA, http.MethodGet, "/v1/health/visits", bad.token)
		if w.Code != http.StatusUnauthorized || errCode(t, w) != "unauthenticated" {
			t.Fatalf("%s, within the allowance: %d %s, want 401 unauthenticated", bad.name, w.Code, w.Body)
		}
	}
	w := g.from(addrA, http.MethodGet, "/v1/catalog", "not-a-token")
	if w.Code != http.StatusTooManyRequests || errCode(t, w) != "rate_limited" {
		t.Fatalf("a fourth failure in an hour: %d %s, want 429 rate_limited", w.Code, w.Body)
	}
	var body errorBody
	json.Unmarshal(w.Body.Bytes(), &body)
	if id := w.Header().Get("X-Request-Id"); id == "" || body.Error.RequestID != id {
		t.Errorf("X-Request-Id %q, body request_id %q: want the same, set", id, body.Error.RequestID)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1100 || ra > 1200 {
		t.Errorf("Retry-After %q, want about 20 minutes in seconds", w.Header().Get("Retry-After"))
	}
	if msg := body.Error.Message; !strings.Contains(msg, "invalid token: malformed") || strings.Contains(msg, "not-a-token") {
		t.Errorf("message %q: want why the token was refused, without the token", msg)
	}
	g.audit.mu.Lock()
	e := g.audit.events[len(g.audit.events)-1]
	g.audit.mu.Unlock()
	if e.Decision != "deny" || e.Status != http.StatusTooManyRequests || e.Code != "rate_limited" || e.Client != "203.0.113.7" ||
		e.RequestID != body.Error.RequestID || !strings.Contains(e.Reason, "invalid token: malformed") {
		t.Errorf("audited as %+v", e)
	}

	if w := g.from(addrB, http.MethodGet, "/v1/health/visits", "not-a-token"); w.Code != http.StatusUnauthorized {
		t.Errorf("another address: %d %s, want 401", w.Code, w.Body)
	}
	for _, tok := range []string{alice, g.token(t, "bob", "b1", "reader")} {
		if w := g.from(addrA, http.MethodGet, "/v1/health/visits", tok); w.Code != http.StatusOK {
			t.Errorf("an accepted token from the limited address: %d %s, want 200", w.Code, w.Body)
		}
	}
	if w := g.from(addrA, http.MethodGet, "/v1/health/visits", ""); w.Code != http.StatusTooManyRequests {
		t.Errorf("accepted tokens gave the address its allowance back: %d", w.Code)
	}
}

// TestUnauthenticatedLimitIsOffUnlessConfigured: without
// rate_limits.unauthenticated, failures are refused with 401 however many.
func TestUnauthenticatedLimitIsOffUnlessConfigured(t *testing.T) {
	g := newScaleGateway(t, "")
	for i := range 50 {
		if w := g.from(addrA, http.MethodGet, "/v1/health/visits", "not-a-token"); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, w.Code)
		}
	}
}

// TestUnauthenticatedLimitIsSharedByReplicas: replicas sharing the
// limiter share each address's allowance.
func TestUnauthenticatedLimitIsSharedByReplicas(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state func(t *testing.T) sharedState
	}{
		{"memory", func(*testing.T) sharedState {
			return struct {
				*state.Memory
				*state.LocalLimiter
			}{state.NewMemory(), state.NewLocalLimiter(nil)}
		}},
		{"redis", func(t *testing.T) sharedState {
			r, err := state.NewRedis(redistest.Start(t).Client(), state.RedisOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs := newReplicas(t, 2, unauthenticatedLimit, tc.state(t))
			for i := range 3 {
				if w := gs[i%2].from(addrA, http.MethodGet, "/v1/catalog", ""); w.Code != http.StatusUnauthorized {
					t.Fatalf("failure %d: %d %s, want 401", i+1, w.Code, w.Body)
				}
			}
			for i, g := range gs {
				if w := g.from(addrA, http.MethodGet, "/v1/catalog", ""); w.Code != http.StatusTooManyRequests {
					t.Errorf("replica %d, past the shared allowance: %d, want 429", i, w.Code)
				}
				if w := g.from(addrB, http.MethodGet, "/v1/catalog", ""); w.Code != http.StatusUnauthorized {
					t.Errorf("replica %d, another address: %d, want 401", i, w.Code)
				}
				if w := g.from(addrA, http.MethodGet, "/v1/health/visits", g.token(t, "alice", "a1", "reader")); w.Code != http.StatusOK {
					t.Errorf("replica %d, a valid token from the limited address: %d %s", i, w.Code, w.Body)
				}
			}
		})
	}
}

// TestUnauthenticatedLimitFallsBackToThisReplicaWhenTheSharedOneIsDown:
// the requests it limits are refused either way, so without the shared
// limiter this replica limits them alone, under on_failure closed too,
// instead of answering 503.
func TestUnauthenticatedLimitFallsBackToThisReplicaWhenTheSharedOneIsDown(t *testing.T) {
	g := newScaleGateway(t, "rate_limits: {unauthenticated: {rate: 1, per: 1h}}\n")
	g.st.down.Store(true)
	var codes []int
	for range 3 {
		codes = append(codes, g.from(addrA, http.MethodGet, "/v1/catalog", "not-a-token").Code)
	}
	if want := []int{401, 429, 429}; !slicesEqual(codes, want) {
		t.Errorf("statuses %v, want %v", codes, want)
	}
}

// TestUnauthenticatedLimitSparesExactlyTheRoutesThatNeedNoToken asks
// every route of routes.go without a token, from a fresh address of a
// gateway without the limit and from an address past its allowance on
// one with it: a route that refuses the request as unauthenticated must
// refuse it with 429 there, and every other route must answer as it
// would without the limit. tokenlessRoutes is kept honest by this.
func TestUnauthenticatedLimitSparesExactlyTheRoutesThatNeedNoToken(t *testing.T) {
	patterns := routePatterns(t)
	if len(patterns) < 10 {
		t.Fatalf("found only %d routes in routes.go: %q", len(patterns), patterns)
	}
	plain := newScaleGateway(t, "")
	limited := newScaleGateway(t, "rate_limits: {unauthenticated: {rate: 1, per: 1h}}\n")
	for i, want := range []int{http.StatusUnauthorized, http.StatusTooManyRequests} {
		if w := limited.from(addrA, http.MethodGet, "/v1/health/visits", ""); w.Code != want {
			t.Fatalf("using up the allowance, request %d: %d, want %d", i+1, w.Code, want)
		}
	}
	wildcard := regexp.MustCompile(`\{[^}]*\}`)
	for _, p := range patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			method, path = http.MethodGet, p
		}
		path = wildcard.ReplaceAllString(path, "x")
		if path == "/" {
			path = "/no/such/route"
		}
		t.Run(p, func(t *testing.T) {
			want := plain.from(addrB, method, path, "").Code
			got := limited.from(addrA, method, path, "").Code
			needsToken := want == http.StatusUnauthorized
			if needsToken && got != http.StatusTooManyRequests {
				t.Errorf("needs a token: from an address past its allowance %d, want 429", got)
			}
			if !needsToken && got != want {
				t.Errorf("needs no token: %d from an address past its allowance, %d from another", got, want)
			}
		})
	}
}

// routePatterns are the patterns routes.go registers.
func routePatterns(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "routes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
			return true
		}
		if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			p, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return true
	})
	return out
}

func TestClientKeyGroupsIPv6AddressesBy64(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"explain", "explain"},
		{"", ""},
	} {
		if got := clientKey(tc.addr); got != tc.want {
			t.Errorf("clientKey(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestUnauthenticatedLimitConfigNamesTheFieldAndFillsDefaults(t *testing.T) {
	for want, extra := range map[string]string{
		"rate_limits.unauthenticated.rate":  "rate_limits: {unauthenticated: {rate: 0}}\n",
		"rate_limits.unauthenticated.per":   "rate_limits: {unauthenticated: {rate: 5, per: 48h}}\n",
		"rate_limits.unauthenticated.burst": "rate_limits: {unauthenticated: {rate: 5, burst: -1}}\n",
	} {
		if _, err := LoadConfig(writeConfig(t, validConfig+extra)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v does not name %q", strings.TrimSpace(extra), err, want)
		}
	}
	cfg, err := LoadConfig(writeConfig(t, validConfig+"rate_limits: {unauthenticated: {rate: 10}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.RateLimits.Unauthenticated; c.Burst != 10 || c.Per != Duration(time.Second) {
		t.Errorf("defaults: %+v, want burst 10 per 1s", c)
	}
	if cfg, err := LoadConfig(writeConfig(t, validConfig)); err != nil || cfg.RateLimits.Unauthenticated != nil {
		t.Errorf("left out: %+v, %v; want no limit", cfg.RateLimits.Unauthenticated, err)
	}
}
