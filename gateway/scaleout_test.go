package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/policy"
	"github.com/sluicegw/sluice/state"
)

// flakyState is shared state that can be switched off, as Redis going
// away looks to the gateway: every call fails with an UnavailableError.
type flakyState struct {
	*state.Memory
	limiter *state.LocalLimiter
	down    atomic.Bool
	polls   atomic.Int32
}

func newFlakyState() *flakyState {
	return &flakyState{Memory: state.NewMemory(), limiter: state.NewLocalLimiter(nil)}
}

func (f *flakyState) err() error {
	if f.down.Load() {
		return &state.UnavailableError{Backend: "redis", Reason: "connection refused", Err: syscall.ECONNREFUSED}
	}
	return nil
}

func (f *flakyState) Ping(ctx context.Context) error { return f.err() }

func (f *flakyState) Charge(ctx context.Context, c state.Charge) (state.Receipt, error) {
	if err := f.err(); err != nil {
		return state.Receipt{}, err
	}
	return f.Memory.Charge(ctx, c)
}

func (f *flakyState) Spent(ctx context.Context, scope string, keys ...string) ([]state.Budget, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Memory.Spent(ctx, scope, keys...)
}

func (f *flakyState) Answer(ctx context.Context, key string) ([]byte, bool, error) {
	if err := f.err(); err != nil {
		return nil, false, err
	}
	return f.Memory.Answer(ctx, key)
}

func (f *flakyState) Revoked(ctx context.Context, since string) (state.RevocationList, error) {
	f.polls.Add(1)
	if err := f.err(); err != nil {
		return state.RevocationList{}, err
	}
	return f.Memory.Revoked(ctx, since)
}

func (f *flakyState) Revoke(ctx context.Context, id string, exp time.Time) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Memory.Revoke(ctx, id, exp)
}

func (f *flakyState) Allow(ctx context.Context, key string, r state.Rate) (time.Duration, error) {
	if err := f.err(); err != nil {
		return 0, err
	}
	return f.limiter.Allow(ctx, key, r)
}

// scalePolicy lets readers read (as testPolicy), officers revoke, and
// counters count.
const scalePolicy = testPolicy + `
decision := {"allow": true, "reason": "officer: token revocation"} if {
	input.action == "revoke"
	"officer" in input.subject.roles
}

decision := {"allow": true, "reason": "counter", "stats": {"metrics": ["count"], "max_epsilon": 1,
	"group_by": [], "bounds": {}, "account": "counter", "consumer_budget": 5}} if {
	input.action == "stats"
	"counter" in input.subject.roles
}
`

// scaleGateway is a gateway over flakyState, configured with extra YAML
// (state, rate_limits).
type scaleGateway struct {
	srv    *Server
	secret []byte
	st     *flakyState
	audit  *orderAudit
}

func newScaleGateway(t *testing.T, extra string) *scaleGateway {
	t.Helper()
	g := &scaleGateway{secret: make([]byte, 32), st: newFlakyState(), audit: &orderAudit{}}
	rand.Read(g.secret)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Query().Get("page"); p != "" && p != "1" { // statistics read pages until one is empty
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"items":[]}`))
			return
		}
		serveItems(w, r)
	}))
	t.Cleanup(up.Close)
	cfg, set := loadFixture(t, map[string][]byte{"hs.key": g.secret, "policies/sluice.rego": []byte(scalePolicy),
		"sluice.yaml": []byte(hsHealth(up.URL) + `      - name: visits
        path: /visits
        privacy_unit: patient_id
        fields:
          visit_id: {type: string, level: L2}
          patient_id: {type: id_cn, level: L4}
          district: {type: string, level: L1}
default_population: {budget: {epsilon: 50}, allocations: {counter: 50}}
` + extra)})
	var err error
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	g.srv, err = New(ctx, cfg, Deps{Audit: g.audit, Policies: policy.NewEngine(set), Logger: slog.New(slog.DiscardHandler),
		Ledger: g.st, Answers: g.st, Revocations: g.st, Limiter: g.st})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// token signs a token for sub with roles and the token id jti.
func (g *scaleGateway) token(t *testing.T, sub, jti string, roles ...string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "test-idp", "aud": "sluice", "sub": sub, "roles": roles, "jti": jti,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(g.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (g *scaleGateway) do(method, path, token, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	g.srv.ServeHTTP(w, r)
	return w
}

func (g *scaleGateway) get(path, token string) *httptest.ResponseRecorder {
	return g.do(http.MethodGet, path, token, "")
}

func errCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("status %d: not a JSON error: %s", w.Code, w.Body)
	}
	return body.Error.Code
}

// lastEvent is the audit record of the last request.
func (g *scaleGateway) lastEvent(t *testing.T) (decision string, status int, reason string) {
	t.Helper()
	g.audit.mu.Lock()
	defer g.audit.mu.Unlock()
	if len(g.audit.events) == 0 {
		t.Fatal("nothing audited")
	}
	e := g.audit.events[len(g.audit.events)-1]
	return e.Decision, e.Status, e.Reason
}

func (g *scaleGateway) readyz(t *testing.T) (int, string, map[string]check) {
	t.Helper()
	w := g.get("/readyz", "")
	var body struct {
		Status string           `json:"status"`
		Checks map[string]check `json:"checks"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("readyz: %s", w.Body)
	}
	return w.Code, body.Status, body.Checks
}

// eventually polls cond for up to 2s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConsumerRateLimitAnswers429WithRetryAfter(t *testing.T) {
	g := newScaleGateway(t, "rate_limits: {consumer: {rate: 2, per: 1h}}\n")
	alice, bob := g.token(t, "alice", "a1", "reader"), g.token(t, "bob", "b1", "reader")
	for i := range 2 {
		if w := g.get("/v1/health/visits", alice); w.Code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, w.Code, w.Body)
		}
	}
	w := g.get("/v1/health/visits", alice)
	if w.Code != http.StatusTooManyRequests || errCode(t, w) != "rate_limited" {
		t.Fatalf("third request in an hour: %d %s, want 429 rate_limited", w.Code, w.Body)
	}
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1700 || ra > 1800 {
		t.Errorf("Retry-After %q, want about half an hour in seconds", w.Header().Get("Retry-After"))
	}
	if d, status, _ := g.lastEvent(t); d != "deny" || status != http.StatusTooManyRequests {
		t.Errorf("audited as %s %d, want deny 429", d, status)
	}
	if w := g.get("/v1/catalog", alice); w.Code != http.StatusTooManyRequests {
		t.Errorf("the consumer limit spares other routes: %d", w.Code)
	}
	if w := g.get("/v1/health/visits", bob); w.Code != http.StatusOK {
		t.Errorf("another consumer was limited: %d %s", w.Code, w.Body)
	}
}

func TestDatasetRateLimitHoldsAcrossConsumers(t *testing.T) {
	g := newScaleGateway(t, "rate_limits: {dataset: {rate: 3, per: 1h, burst: 3}}\n")
	codes := []int{}
	for i := range 5 {
		codes = append(codes, g.get("/v1/health/visits", g.token(t, "user"+strconv.Itoa(i), "j"+strconv.Itoa(i), "reader")).Code)
	}
	if want := []int{200, 200, 200, 429, 429}; !slicesEqual(codes, want) {
		t.Errorf("statuses %v, want %v", codes, want)
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOfficerRevokesATokenThroughTheAdminEndpoint(t *testing.T) {
	g := newScaleGateway(t, "")
	alice := g.token(t, "alice", "alice-token-1", "reader")
	officer := g.token(t, "oscar", "oscar-1", "officer")
	if w := g.get("/v1/health/visits", alice); w.Code != http.StatusOK {
		t.Fatalf("before revocation: %d", w.Code)
	}
	if w := g.do(http.MethodPost, "/admin/v1/revocations", alice, `{"jti":"oscar-1"}`); w.Code != http.StatusForbidden {
		t.Errorf("a reader revoked a token: %d %s", w.Code, w.Body)
	}
	for _, bad := range []string{``, `{"jti":""}`, `{"jti":"x","extra":1}`, `{"jti":"x","expires_at":"2001-01-01T00:00:00Z"}`, `[1]`} {
		if w := g.do(http.MethodPost, "/admin/v1/revocations", officer, bad); w.Code != http.StatusBadRequest {
			t.Errorf("body %q: %d, want 400", bad, w.Code)
		}
	}
	w := g.do(http.MethodPost, "/admin/v1/revocations", officer, `{"jti":"alice-token-1"}`)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"revoked":"alice-token-1"`) {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if d, status, reason := g.lastEvent(t); d != "allow" || status != 200 || !strings.Contains(reason, `jti="alice-token-1"`) {
		t.Errorf("revocation audited as %s %d %q", d, status, reason)
	}
	// The replica that took the revocation applies it at once.
	w = g.get("/v1/health/visits", alice)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "revoked") {
		t.Errorf("a revoked token: %d %s, want 401 revoked", w.Code, w.Body)
	}
	if d, _, _ := g.lastEvent(t); d != "deny" {
		t.Errorf("the refusal was audited as %q", d)
	}
	if w := g.get("/v1/health/visits", g.token(t, "alice", "alice-token-2", "reader")); w.Code != http.StatusOK {
		t.Errorf("alice's other token was refused too: %d", w.Code)
	}
}

// TestRevocationMadeElsewhereIsSeenWithinAPoll: a revocation written to
// the shared list by another replica or `sluice token revoke` is refused
// here once the poller has seen it.
func TestRevocationMadeElsewhereIsSeenWithinAPoll(t *testing.T) {
	g := newScaleGateway(t, "state: {revocations: {poll: 20ms}}\n")
	tok := g.token(t, "alice", "t-1", "reader")
	if err := g.st.Memory.Revoke(context.Background(), "t-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, "the revoked token is refused", func() bool { return g.get("/v1/health/visits", tok).Code == http.StatusUnauthorized })
	if took := time.Since(start); took > time.Second {
		t.Errorf("the revocation took %v to be applied", took)
	}
}

// TestStateOutageFailsClosedAndRecovers: with state.on_failure closed,
// losing the shared state refuses statistics and rate-limited requests
// at once, every authenticated request once the revocation list is
// stale, says why on /readyz, and heals when the state is back.
func TestStateOutageFailsClosedAndRecovers(t *testing.T) {
	g := newScaleGateway(t, "state: {revocations: {poll: 10ms, max_stale: 100ms}}\nrate_limits: {consumer: {rate: 1000}}\n")
	reader, counter := g.token(t, "alice", "a1", "reader"), g.token(t, "carl", "c1", "counter")
	if code, status, _ := g.readyz(t); code != 200 || status != "ready" {
		t.Fatalf("readyz before: %d %s", code, status)
	}
	g.st.down.Store(true)
	for _, path := range []string{"/v1/health/visits", "/v1/health/visits/stats?metric=count&epsilon=0.5"} {
		tok := map[bool]string{true: counter, false: reader}[strings.Contains(path, "stats")]
		if w := g.get(path, tok); w.Code != http.StatusServiceUnavailable || errCode(t, w) != "unavailable" {
			t.Errorf("%s with the state down: %d %s, want 503 unavailable", path, w.Code, w.Body)
		}
	}
	code, status, checks := g.readyz(t)
	if code != http.StatusServiceUnavailable || status != "not ready" || checks["state"].OK ||
		checks["state"].Detail != "state backend unreachable: redis connection refused" {
		t.Errorf("readyz with the state down: %d %s %+v", code, status, checks)
	}
	eventually(t, "the revocation list is stale", func() bool { _, _, c := g.readyz(t); return !c["revocations"].OK })
	if _, _, c := g.readyz(t); !strings.Contains(c["revocations"].Detail, "redis connection refused") {
		t.Errorf("revocations check %+v does not say why", c["revocations"])
	}

	g.st.down.Store(false)
	eventually(t, "readyz is ready again", func() bool { code, _, _ := g.readyz(t); return code == http.StatusOK })
	if w := g.get("/v1/health/visits", reader); w.Code != http.StatusOK {
		t.Errorf("a read after recovery: %d %s", w.Code, w.Body)
	}
	if w := g.get("/v1/health/visits/stats?metric=count&epsilon=0.5", counter); w.Code != http.StatusOK {
		t.Errorf("statistics after recovery: %d %s", w.Code, w.Body)
	}
}

// TestStaleRevocationsRefuseEveryRequestUnderFailClosed: without rate
// limits a read needs nothing from the shared state but the revocation
// list; once that is older than max_stale, it is refused.
func TestStaleRevocationsRefuseEveryRequestUnderFailClosed(t *testing.T) {
	g := newScaleGateway(t, "state: {revocations: {poll: 10ms, max_stale: 100ms}}\n")
	reader := g.token(t, "alice", "a1", "reader")
	g.st.down.Store(true)
	eventually(t, "reads are refused", func() bool { return g.get("/v1/health/visits", reader).Code == http.StatusServiceUnavailable })
	if _, _, reason := g.lastEvent(t); !strings.Contains(reason, "revocations cannot be checked") {
		t.Errorf("audited reason %q", reason)
	}
}

// TestOnFailureOpenKeepsServingReadsWithLocalLimits: under on_failure
// open, reads go on with the last revocation list and per-replica rate
// limits, statistics are still refused, and the replica stays in
// rotation, degraded.
func TestOnFailureOpenKeepsServingReadsWithLocalLimits(t *testing.T) {
	g := newScaleGateway(t, "state: {on_failure: open, revocations: {poll: 10ms, max_stale: 50ms}}\nrate_limits: {consumer: {rate: 1, per: 1h}}\n")
	reader, counter := g.token(t, "alice", "a1", "reader"), g.token(t, "carl", "c1", "counter")
	if err := g.st.Memory.Revoke(context.Background(), "revoked-before", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the revocation is seen", func() bool {
		return g.get("/v1/catalog", g.token(t, "eve", "revoked-before", "reader")).Code == http.StatusUnauthorized
	})
	g.st.down.Store(true)
	time.Sleep(100 * time.Millisecond) // past max_stale
	if w := g.get("/v1/health/visits", reader); w.Code != http.StatusOK {
		t.Errorf("a read under on_failure open: %d %s", w.Code, w.Body)
	}
	if w := g.get("/v1/health/visits", reader); w.Code != http.StatusTooManyRequests {
		t.Errorf("the second read in an hour: %d, want 429 from this replica's own limiter", w.Code)
	}
	if w := g.get("/v1/health/visits", g.token(t, "eve", "revoked-before", "reader")); w.Code != http.StatusUnauthorized {
		t.Errorf("a token revoked before the outage: %d, want 401", w.Code)
	}
	if w := g.get("/v1/health/visits/stats?metric=count&epsilon=0.5", counter); w.Code != http.StatusServiceUnavailable {
		t.Errorf("statistics under on_failure open: %d, want 503", w.Code)
	}
	if code, status, _ := g.readyz(t); code != http.StatusOK || status != "degraded" {
		t.Errorf("readyz under on_failure open: %d %s, want 200 degraded", code, status)
	}
}

func TestScaleOutConfigNamesTheField(t *testing.T) {
	for want, extra := range map[string]string{
		"state.on_failure":             "state: {on_failure: sometimes}\n",
		"state: set one of":            "state: {path: s.db, redis: {addrs: [127.0.0.1:6379]}}\n",
		"state.redis.addrs":            "state: {redis: {}}\n",
		"state.redis.addrs[1]":         "state: {redis: {addrs: [127.0.0.1:6379, nohost]}}\n",
		"state.redis.db":               "state: {redis: {addrs: [a:1, b:2], db: 2}}\n",
		"state.redis.prefix":           "state: {redis: {addrs: [a:1], prefix: 'x{y'}}\n",
		"state.redis.tls":              "state: {redis: {addrs: [a:1], tls: {cert_file: c.pem}}}\n",
		"state.revocations.poll":       "state: {revocations: {poll: 2s}}\n",
		"state.revocations.max_stale":  "state: {revocations: {poll: 500ms, max_stale: 100ms}}\n",
		"rate_limits.consumer.rate":    "rate_limits: {consumer: {rate: 0}}\n",
		"rate_limits.dataset.per":      "rate_limits: {dataset: {rate: 5, per: 48h}}\n",
		"audit.redis_witness":          "audit: {dir: a, redis_witness: true, replica: r1}\n",
		"audit.stream":                 "audit: {dir: a, stream: {}, replica: r1}\n",
		"audit.replica: required":      "state: {redis: {addrs: [a:1]}}\naudit: {dir: a, stream: {}}\n",
		"audit.replica: want lower":    "audit: {dir: a, replica: 'R 1'}\n",
		"state.redis.charge_retention": "state: {redis: {addrs: [a:1], charge_retention: 1s}}\n",
	} {
		base := strings.Replace(validConfig, "audit:\n  dir: /var/lib/sluice/audit\n", "", 1)
		_, err := LoadConfig(writeConfig(t, base+extra))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v does not name %q", strings.TrimSpace(extra), err, want)
		}
	}
	cfg, err := LoadConfig(writeConfig(t, validConfig+"rate_limits: {consumer: {rate: 100}}\nstate: {redis: {addrs: [127.0.0.1:6379]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.RateLimits.Consumer; c.Burst != 100 || c.Per != Duration(time.Second) {
		t.Errorf("rate limit defaults: %+v", c)
	}
	if r := cfg.State.Redis; r.Prefix != "sluice" || r.Timeout != Duration(time.Second) || *r.ChargeRetention != Duration(168*time.Hour) {
		t.Errorf("redis defaults: %+v", r)
	}
}

// TestExplainingATokenTakesNothingFromItsRateLimit: an officer asking
// what alice would get does not spend alice's allowance.
func TestExplainingATokenTakesNothingFromItsRateLimit(t *testing.T) {
	g := newScaleGateway(t, "rate_limits: {consumer: {rate: 1, per: 1h}}\n")
	src := scalePolicy + `
decision := {"allow": true, "reason": "officer: explain"} if {
	input.action == "explain"
	"officer" in input.subject.roles
}
`
	g.srv.policies = loadPolicies(t, src)
	alice := g.token(t, "alice", "a1", "reader")
	for i := range 3 {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/v1/explain?path=/v1/health/visits", nil)
		r.Header.Set("Authorization", "Bearer "+g.token(t, "oscar"+strconv.Itoa(i), "o"+strconv.Itoa(i), "officer"))
		r.Header.Set(ExplainTokenHeader, alice)
		g.srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("explain %d: %d %s", i, w.Code, w.Body)
		}
	}
	if w := g.get("/v1/health/visits", alice); w.Code != http.StatusOK {
		t.Errorf("alice's own first request after three explanations: %d %s", w.Code, w.Body)
	}
}

// loadPolicies compiles one Rego file into a policy engine.
func loadPolicies(t *testing.T, src string) Policies {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sluice.rego"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := policy.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return policy.NewEngine(set)
}
