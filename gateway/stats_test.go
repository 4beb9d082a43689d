package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sluicegw/sluice/anonymize/dp"
	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/policy"
	"github.com/sluicegw/sluice/state"
)

// statsPolicy grants statistics to "statistician" (with a district
// filter), to "narrow", whose decision keeps only 朝阳区 rows, to
// "orgstat", whose organisation is capped as a whole, and to "public",
// charged to another allocation; "reader" may read the records and count
// them too, which the gateway must refuse.
const statsPolicy = `package sluice

default decision := {"allow": false, "reason": "no rule grants this access"}

limits(class, consumer) := {
	"metrics": ["count", "sum", "mean"],
	"max_epsilon": 1,
	"group_by": ["district", "diagnosis"],
	"bounds": {"cost": [0, 100], "visits": [0, 1000000]},
	"account": class,
	"consumer_budget": consumer,
}

decision := {"allow": true, "reason": "statistician", "stats": limits("statistician", 3), "params": ["district"]} if {
	input.action == "stats"
	"statistician" in input.subject.roles
}

decision := {"allow": true, "reason": "narrow", "stats": limits("statistician", 3), "rows": [{"field": "district", "in": ["朝阳区"]}]} if {
	input.action == "stats"
	"narrow" in input.subject.roles
	not "statistician" in input.subject.roles
}

decision := {"allow": true, "reason": "orgstat", "stats": object.union(limits("statistician", 3), {"org_budget": 4})} if {
	input.action == "stats"
	"orgstat" in input.subject.roles
}

decision := {"allow": true, "reason": "public", "stats": limits("public", 5)} if {
	input.action == "stats"
	"public" in input.subject.roles
}

decision := {"allow": true, "reason": "reader", "fields": {"district": "keep"}} if {
	input.action == "read"
	"reader" in input.subject.roles
}

decision := {"allow": true, "reason": "reader counts", "stats": limits("statistician", 3)} if {
	input.action == "stats"
	"reader" in input.subject.roles
}
`

// statsFixture is the upstream's visits: 120 patients in 朝阳区 with 1 to
// 3 visits, 60 in 海淀区 with 1 or 2, one more in 海淀区 with a rare
// diagnosis, and one visit in a district outside the public domain.
func statsFixture() []map[string]any {
	var out []map[string]any
	n := 0
	visit := func(patient, district, diagnosis string) {
		n++
		out = append(out, map[string]any{"visit_id": fmt.Sprint("V", n), "patient_id": patient, "district": district,
			"diagnosis": diagnosis, "cost": 40, "note": "raw record " + patient})
	}
	for i := range 120 {
		for range 1 + i%3 {
			visit(fmt.Sprint("CY", i), "朝阳区", "J06.9")
		}
	}
	for i := range 60 {
		for range 1 + i%2 {
			visit(fmt.Sprint("HD", i), "海淀区", "J06.9")
		}
	}
	visit("RARE", "海淀区", "Z99.9")
	visit("MARS", "火星区", "J06.9")
	return out
}

// statsTruth is the count of patients per district of the fixture.
var statsTruth = map[string]float64{"朝阳区": 120, "海淀区": 61, "东城区": 0}

type statsGateway struct {
	srv      *Server
	secret   []byte
	ledger   *state.Memory
	audit    *orderAudit
	upstream atomic.Int64 // requests the upstream received
	fail     atomic.Bool  // the upstream answers 500
	// hook, when set, answers the upstream's pages instead of the fixture.
	hook atomic.Pointer[http.HandlerFunc]
	now  atomic.Pointer[time.Time] // the gateway's clock, when set
	// storeFails makes the answer cache refuse to store answers.
	storeFails atomic.Bool
}

// storeFails is an answer cache that can fail to store, after the read.
type storeFails struct {
	*state.Memory
	fail *atomic.Bool
}

func (c storeFails) StoreAnswer(ctx context.Context, key string, answer []byte) ([]byte, error) {
	if c.fail.Load() {
		return nil, &state.UnavailableError{Backend: "redis", Reason: "connection refused", Err: errors.New("refused")}
	}
	return c.Memory.StoreAnswer(ctx, key, answer)
}

// The fixture's populations: city (ε 6: 5 for statisticians, 1 for the
// public) holds visits, big, slow and byarea; monthly renews every 30
// days; zcity is accounted in zCDP. anonymous belongs to none.
const statsPopulations = `populations:
  - name: city
    budget: {epsilon: 6, delta: 1e-5}
    allocations: {statistician: 5, public: 1}
  - name: monthly
    budget: {epsilon: 6, delta: 1e-5, period: 30d, period_start: "2026-01-01"}
    allocations: {statistician: 5}
  - name: zcity
    budget: {epsilon: 6, delta: 1e-5}
    allocations: {statistician: 5}
    accounting: zcdp
`

func newStatsGateway(t testing.TB, withState bool) *statsGateway {
	t.Helper()
	g := &statsGateway{secret: make([]byte, 32), ledger: state.NewMemory(), audit: &orderAudit{}}
	rand.Read(g.secret)
	records := statsFixture()
	agg := []map[string]any{{"district": "朝阳区", "visits": 500}, {"district": "海淀区", "visits": 200},
		{"district": "海淀区", "visits": 50}, {"district": "火星区", "visits": 9}}
	page := func(w http.ResponseWriter, r *http.Request, rows []map[string]any) {
		g.upstream.Add(1)
		if h := g.hook.Load(); h != nil {
			(*h)(w, r)
			return
		}
		if g.fail.Load() {
			http.Error(w, `{"error":"down"}`, http.StatusInternalServerError)
			return
		}
		q := r.URL.Query()
		p, _ := strconv.Atoi(q.Get("page"))
		size, _ := strconv.Atoi(q.Get("page_size"))
		if p < 1 || size < 1 || size > 1000 {
			http.Error(w, "bad paging", http.StatusBadRequest)
			return
		}
		var sel []map[string]any
		for _, rec := range rows {
			if d := q["district"]; len(d) > 0 && !slices.Contains(d, rec["district"].(string)) {
				continue
			}
			sel = append(sel, rec)
		}
		items := []map[string]any{}
		if start := (p - 1) * size; start < len(sel) {
			items = sel[start:min(start+size, len(sel))]
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"items": items, "page": p, "page_size": size, "total": len(sel)})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/visits", func(w http.ResponseWriter, r *http.Request) { page(w, r, records) })
	mux.HandleFunc("/agg", func(w http.ResponseWriter, r *http.Request) { page(w, r, agg) })
	up := httptest.NewServer(mux)
	t.Cleanup(up.Close)

	fields := `{visit_id: {type: string}, patient_id: {type: id_cn, level: L4}, district: {type: string},
          diagnosis: {type: string}, cost: {type: integer}, note: {type: string}}`
	visits := func(name, population string) string {
		return `      - name: ` + name + `
        path: /visits
        population: ` + population + `
        privacy_unit: patient_id
        filters: {district: district}
        stats_page_size: 50
        max_records: 1000
        domains: {district: [朝阳区, 海淀区, 东城区]}
        fields: ` + fields + "\n"
	}
	cfg, set := loadFixture(t, map[string][]byte{"hs.key": g.secret, "policies/sluice.rego": []byte(statsPolicy),
		"sluice.yaml": []byte(statsPopulations + hsHealth(up.URL) + visits("visits", "city") + visits("monthly", "monthly") +
			visits("zvisits", "zcity") + `      - name: big
        path: /visits
        population: city
        privacy_unit: patient_id
        max_records: 100
        fields: ` + fields + `
      - name: slow
        path: /visits
        population: city
        privacy_unit: patient_id
        stats_page_size: 1
        stats_timeout: 300ms
        fields: ` + fields + `
      - name: anonymous
        path: /visits
        fields: ` + fields + `
      - name: byarea
        path: /agg
        population: city
        domains: {district: [朝阳区, 海淀区, 东城区]}
        noise: {sensitivity: {visits: 1}}
        fields: {district: {type: string}, visits: {type: integer}}
`)})
	deps := Deps{Audit: g.audit, Policies: policy.NewEngine(set), Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time {
			if t := g.now.Load(); t != nil {
				return *t
			}
			return time.Now()
		}}
	if withState {
		deps.Ledger, deps.Answers = g.ledger, storeFails{g.ledger, &g.storeFails}
	}
	var err error
	if g.srv, err = New(context.Background(), cfg, deps); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *statsGateway) token(t testing.TB, sub string, roles ...string) string {
	t.Helper()
	return g.tokenOf(t, jwt.MapClaims{"sub": sub, "roles": roles})
}

// tokenOf signs claims, adding the issuer, audience and times.
func (g *statsGateway) tokenOf(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	claims["iss"], claims["aud"] = "test-idp", "sluice"
	claims["iat"], claims["exp"] = g.tokenTime().Add(-400*24*time.Hour).Unix(), g.tokenTime().Add(400*24*time.Hour).Unix()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(g.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// consumer is the ledger key of a consumer's account, as accounts.go
// lays it out.
func consumer(sub string) string { return jsonKey("consumer", "test-idp", "", sub) }

// spent reads what accounts of population city (pure, no period) have
// spent.
func (g *statsGateway) spent(t *testing.T, keys ...string) []state.Budget {
	t.Helper()
	return g.spentIn(t, jsonKey("city", "pure", ""), keys...)
}

func (g *statsGateway) spentIn(t *testing.T, scope string, keys ...string) []state.Budget {
	t.Helper()
	b, err := g.ledger.Spent(context.Background(), scope, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var statisticians = jsonKey("allocation", "statistician")

// get serves one request and checks that the audit record was written
// before the caller received anything.
func (g *statsGateway) get(t *testing.T, path, token string) *httptest.ResponseRecorder {
	t.Helper()
	w := &watchedWriter{ResponseRecorder: httptest.NewRecorder()}
	g.audit.mu.Lock()
	g.audit.w = w
	g.audit.mu.Unlock()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	g.srv.ServeHTTP(w, r)
	g.audit.mu.Lock()
	defer g.audit.mu.Unlock()
	if len(g.audit.early) > 0 {
		t.Fatalf("%s: bytes reached the caller before the audit record of %v", path, g.audit.early)
	}
	return w.ResponseRecorder
}

// event returns the audit record of the response's request.
func (g *statsGateway) event(t *testing.T, w *httptest.ResponseRecorder) audit.Event {
	t.Helper()
	g.audit.mu.Lock()
	defer g.audit.mu.Unlock()
	id := w.Header().Get("X-Request-Id")
	for _, e := range g.audit.events {
		if e.RequestID == id {
			return e
		}
	}
	t.Fatalf("no audit record for request %q", id)
	return audit.Event{}
}

// statsBody is the response as a caller reads it.
type statsBody struct {
	Metric     string `json:"metric"`
	Counts     string `json:"counts"`
	Mechanism  string `json:"mechanism"`
	Selection  string `json:"partition_selection"`
	Epsilon    float64
	Delta      float64
	Partitions []struct {
		Key   *string    `json:"key"`
		Value float64    `json:"value"`
		CI95  [2]float64 `json:"ci95"`
	} `json:"partitions"`
	Bounds     map[string]any `json:"contribution_bounds"`
	Accounting string         `json:"accounting"`
	Account    statsAccount   `json:"account"`
	Guarantee  string         `json:"guarantee"`
	Spent      statsSpent     `json:"spent"`
	Remaining  statsRemaining `json:"remaining"`
	Cached     bool           `json:"cached"`
}

func decodeStats(t *testing.T, w *httptest.ResponseRecorder) statsBody {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var b statsBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("body: %v\n%s", err, w.Body)
	}
	return b
}

func (b statsBody) values() map[string]float64 {
	out := map[string]float64{}
	for _, p := range b.Partitions {
		k := ""
		if p.Key != nil {
			k = *p.Key
		}
		out[k] = p.Value
	}
	return out
}

// near checks noisy counts against the truth. Each count's Laplace noise
// has scale 1/ε ≤ 2 here: it exceeds 40 with probability e^-20 < 1e-8.
func near(t *testing.T, got, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("partitions %v, want those of %v", got, want)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || math.Abs(g-w) > 40 {
			t.Errorf("partition %q: %v, want %v ± 40", k, g, w)
		}
	}
}

func expectStatsError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) string {
	t.Helper()
	var body errorBody
	if w.Code != status || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != code {
		t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, status, code)
	}
	return body.Error.Message
}

// approx compares budgets to the ledger's precision.
var approx = cmpopts.EquateApprox(1e-9, 0)

const countByDistrict = "/v1/health/visits/stats?metric=count&group_by=district&epsilon=0.5"

func TestStatsReleasesNoisyCountsOfEveryPublicPartition(t *testing.T) {
	g := newStatsGateway(t, true)
	w := g.get(t, countByDistrict, g.token(t, "ann", "statistician"))
	b := decodeStats(t, w)
	near(t, b.values(), statsTruth)
	if b.Mechanism != "laplace" || b.Selection != "public_domain" || b.Cached || b.Counts != "people (patient_id)" {
		t.Errorf("mechanism %q, selection %q, cached %v, counts %q", b.Mechanism, b.Selection, b.Cached, b.Counts)
	}
	// The consumer's δ cap is its class's: 1e-5 × 5/6 of the population's.
	if diff := cmp.Diff(statsSpent{Epsilon: 0.5}, b.Spent); diff != "" {
		t.Errorf("spent (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(statsRemaining{Consumer: statsLeft{Epsilon: 2.5, Delta: 8.333333333e-06, EpsilonCap: 3, DeltaCap: 8.333333333e-06}}, b.Remaining, approx); diff != "" {
		t.Errorf("remaining (-want +got):\n%s", diff)
	}
	if b.Accounting != "pure" || b.Account != (statsAccount{Population: "city", Allocation: "statistician"}) ||
		!strings.Contains(b.Guarantee, "population city: (ε = 6, δ = 1e-05)-DP") {
		t.Errorf("accounting %q, account %+v, guarantee %q", b.Accounting, b.Account, b.Guarantee)
	}
	for _, p := range b.Partitions {
		// The library's interval for a count never goes below 0, where a
		// noisy count may.
		lo, hi := p.CI95[0], p.CI95[1]
		if lo > hi || hi-lo > 20 || lo < p.Value-20 || hi > max(p.Value, 0)+20 {
			t.Errorf("partition %s: interval %v around %v", *p.Key, p.CI95, p.Value)
		}
	}
	if strings.Contains(w.Body.String(), "raw record") || strings.Contains(w.Body.String(), "CY1") {
		t.Errorf("record-level data in a statistics answer: %s", w.Body)
	}
	ev := g.event(t, w)
	if ev.Action != "stats" || ev.Decision != "allow" || ev.EpsilonRequested != 0.5 || spentOf(ev) != 0.5 || ev.Status != 200 {
		t.Errorf("audit record %+v", ev)
	}
	if o := ev.Obligations; o.Population != "city" || o.Allocation != "statistician" || o.Accounting != "pure" || o.ConsumerBudget != 3 {
		t.Errorf("audit obligations %+v", o)
	}
	spent := g.spent(t, consumer("ann"), statisticians)
	if spent[0].Epsilon != 0.5 || spent[1].Epsilon != 0.5 {
		t.Errorf("ledger %+v, want ε 0.5 charged to the consumer and its allocation", spent)
	}
}

func TestStatsRepeatedQueryGetsTheCachedAnswerForNothing(t *testing.T) {
	g := newStatsGateway(t, true)
	first := g.get(t, countByDistrict, g.token(t, "ann", "statistician"))
	decodeStats(t, first)
	calls := g.upstream.Load()
	// The same query, its parameters in another order, by its author and
	// by someone else: the same answer, nothing charged, upstream untouched.
	for _, who := range []string{"ann", "bob", "ann"} {
		w := g.get(t, "/v1/health/visits/stats?epsilon=0.5&group_by=district&metric=count", g.token(t, who, "statistician"))
		b := decodeStats(t, w)
		if diff := cmp.Diff(decodeStats(t, first).Partitions, b.Partitions); diff != "" {
			t.Errorf("%s got another answer (-first +now):\n%s", who, diff)
		}
		if !b.Cached || b.Spent != (statsSpent{}) {
			t.Errorf("%s: cached %v, spent %+v", who, b.Cached, b.Spent)
		}
		if ev := g.event(t, w); spentOf(ev) != 0 || ev.EpsilonRequested != 0.5 {
			t.Errorf("audit of a cached answer: %+v", ev)
		}
	}
	if g.upstream.Load() != calls {
		t.Error("a cached answer read the upstream again")
	}
	if spent := g.spent(t, consumer("bob"), statisticians); spent[0].Epsilon != 0 || spent[1].Epsilon != 0.5 {
		t.Errorf("ledger %+v after one release and three cached answers", spent)
	}
}

func TestStatsRefusesWhatThePolicyDoesNotAllowAndAuditsIt(t *testing.T) {
	g := newStatsGateway(t, true)
	for _, tc := range []struct {
		name, path, role string
		status           int
		code             string
		epsilon          float64
	}{
		{"epsilon above the maximum", "/v1/health/visits/stats?metric=count&epsilon=1.5", "statistician", 403, "forbidden", 1.5},
		{"group-by not allowed", "/v1/health/visits/stats?metric=count&group_by=patient_id&epsilon=0.1", "statistician", 403, "forbidden", 0.1},
		{"sum of an unbounded field", "/v1/health/visits/stats?metric=sum&field=visit_id&epsilon=0.1", "statistician", 403, "forbidden", 0.1},
		{"filter not allowed", "/v1/health/visits/stats?metric=count&epsilon=0.1&patient_id=CY1", "statistician", 403, "forbidden", 0.1},
		{"no statistics role", "/v1/health/visits/stats?metric=count&epsilon=0.1", "reader", 403, "forbidden", 0.1},
		{"no population", "/v1/health/anonymous/stats?metric=count&epsilon=0.1", "statistician", 403, "forbidden", 0.1},
		{"records and statistics of one dataset", "/v1/health/visits/stats?metric=count&epsilon=0.1", "reader", 403, "forbidden", 0.1},
		{"epsilon too small for the noise", "/v1/health/visits/stats?metric=count&epsilon=1e-300", "statistician", 400, "bad_request", 1e-300},
		{"epsilon below the ledger's unit", "/v1/health/visits/stats?metric=count&epsilon=1e-10", "statistician", 400, "bad_request", 1e-10},
		{"epsilon beyond any budget", "/v1/health/visits/stats?metric=count&epsilon=1e9", "statistician", 400, "bad_request", 1e9},
		{"paging", "/v1/health/visits/stats?metric=count&epsilon=0.1&page=2", "statistician", 400, "bad_request", 0.1},
		{"no epsilon", "/v1/health/visits/stats?metric=count", "statistician", 400, "bad_request", 0},
		{"bad epsilon", "/v1/health/visits/stats?metric=count&epsilon=NaN", "statistician", 400, "bad_request", 0},
		{"unknown metric", "/v1/health/visits/stats?metric=median&epsilon=0.1", "statistician", 400, "bad_request", 0.1},
		{"count of a field", "/v1/health/visits/stats?metric=count&field=cost&epsilon=0.1", "statistician", 400, "bad_request", 0.1},
		{"mean of an aggregate", "/v1/health/byarea/stats?metric=mean&field=visits&epsilon=0.1", "statistician", 400, "bad_request", 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := g.get(t, tc.path, g.token(t, "ann", tc.role))
			expectStatsError(t, w, tc.status, tc.code)
			ev := g.event(t, w)
			if ev.Action != "stats" || ev.EpsilonRequested != tc.epsilon || spentOf(ev) != 0 || ev.Status != tc.status {
				t.Errorf("audit record %+v", ev)
			}
			if tc.status == 403 && ev.Decision != "deny" {
				t.Errorf("audit decision %q, want deny", ev.Decision)
			}
		})
	}
	if n := g.upstream.Load(); n != 0 {
		t.Errorf("refused requests reached the upstream %d times", n)
	}
	if spent := g.spent(t, consumer("ann"), statisticians); spent[0] != (state.Budget{}) || spent[1] != (state.Budget{}) {
		t.Errorf("refused requests spent %+v", spent)
	}
}

func TestStatsRefusesAnExhaustedBudgetSayingWhatIsLeft(t *testing.T) {
	g := newStatsGateway(t, true)
	tok := g.token(t, "ann", "statistician")
	for _, eps := range []string{"1", "0.9", "0.8"} {
		decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon="+eps, tok))
	}
	calls := g.upstream.Load()
	w := g.get(t, "/v1/health/visits/stats?metric=count&epsilon=0.7", tok)
	msg := expectStatsError(t, w, 403, "privacy_budget_exhausted")
	if !strings.Contains(msg, "needs ε=0.7") || !strings.Contains(msg, "your account on population city has ε=0.3 left") {
		t.Errorf("message %q does not say what is left", msg)
	}
	// The same, as numbers a client can act on.
	var body errorBody
	json.Unmarshal(w.Body.Bytes(), &body)
	if b := body.Error.BudgetRefusal; b == nil || b.Account != "consumer" || b.Population != "city" || b.Needed.Epsilon != 0.7 ||
		b.Left == nil || math.Abs(b.Left.Epsilon-0.3) > 1e-9 || b.Left.EpsilonCap != 3 {
		t.Errorf("structured refusal %s, want the consumer account needing 0.7 with 0.3 of 3 left", w.Body)
	}
	if ev := g.event(t, w); ev.EpsilonRequested != 0.7 || ev.Decision != "deny" || ev.Code != "privacy_budget_exhausted" || spentOf(ev) != 0 {
		t.Errorf("audit record %+v", ev)
	}
	if g.upstream.Load() != calls {
		t.Error("an exhausted budget still read the upstream")
	}
	// What fits is still released, and earlier answers stay free.
	decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon=0.3", tok))
	if b := decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon=1", tok)); !b.Cached {
		t.Error("a repeated query was not answered from the cache")
	}
	if spent := g.spent(t, consumer("ann"))[0]; math.Abs(spent.Epsilon-3) > 1e-12 {
		t.Errorf("spent ε=%v, want the whole budget of 3 and no more", spent.Epsilon)
	}
	// The statisticians' allocation of 5 is shared: bob may spend the 2
	// left, and is then told the allocation cannot pay — not what others
	// spent.
	bob := g.token(t, "bob", "statistician")
	decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon=1&group_by=district", bob))
	decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon=0.95&group_by=district", bob))
	msg = expectStatsError(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon=0.1", bob), 403, "privacy_budget_exhausted")
	if !strings.Contains(msg, `the "statistician" allocation of population city cannot pay for it`) || strings.Contains(msg, "0.05") {
		t.Errorf("message %q does not say the allocation is short, or says by how much", msg)
	}
}

func TestConcurrentStatsNeverOverspendTheBudget(t *testing.T) {
	g := newStatsGateway(t, true)
	tok := g.token(t, "ann", "statistician")
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 20 distinct queries of ε = 0.500 to 0.519: the budget of 3
			// pays for any 5 of them and for no 6.
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/v1/health/visits/stats?metric=count&epsilon=0.5%02d", i), nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			g.srv.ServeHTTP(w, r)
			switch {
			case w.Code == 200:
				ok.Add(1)
			case w.Code == 403 && strings.Contains(w.Body.String(), "privacy_budget_exhausted"):
				refused.Add(1)
			default:
				t.Errorf("%d %s", w.Code, w.Body)
			}
		}()
	}
	wg.Wait()
	spent := g.spent(t, consumer("ann"))[0]
	if ok.Load() != 5 || spent.Epsilon > 3 {
		t.Errorf("%d releases and %d refusals spent ε=%v of 3", ok.Load(), refused.Load(), spent.Epsilon)
	}
}

func TestStatsApplyTheDecisionsRowFilter(t *testing.T) {
	g := newStatsGateway(t, true)
	b := decodeStats(t, g.get(t, countByDistrict, g.token(t, "nat", "narrow")))
	near(t, b.values(), map[string]float64{"朝阳区": 120, "海淀区": 0, "东城区": 0})
	// The row filter is part of the query: the statistician's answer is
	// its own, not the narrow one from the cache.
	b = decodeStats(t, g.get(t, countByDistrict, g.token(t, "ann", "statistician")))
	if b.Cached {
		t.Error("a caller with another row filter got the cached answer")
	}
	near(t, b.values(), statsTruth)
	// A caller's own filter narrows the data too.
	b = decodeStats(t, g.get(t, countByDistrict+"&district=海淀区", g.token(t, "ann", "statistician")))
	near(t, b.values(), map[string]float64{"朝阳区": 0, "海淀区": 61, "东城区": 0})
}

func TestStatsSelectPartitionsPrivatelyWithoutAPublicDomain(t *testing.T) {
	g := newStatsGateway(t, true)
	b := decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=count&group_by=diagnosis&epsilon=1", g.token(t, "ann", "statistician")))
	// Z99.9 has one patient: it shows with probability δ = 1e-6.
	near(t, b.values(), map[string]float64{"J06.9": 181})
	if b.Selection != "private_selection" || b.Delta != 1e-6 || b.Spent != (statsSpent{Epsilon: 1, Delta: 1e-6}) {
		t.Errorf("selection %q, delta %v, spent %+v", b.Selection, b.Delta, b.Spent)
	}
}

func TestStatsSumsAndMeansUseThePolicysBounds(t *testing.T) {
	g := newStatsGateway(t, true)
	tok := g.token(t, "ann", "statistician")
	b := decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=sum&field=cost&epsilon=1", tok))
	// Every visit costs 40; summed per patient and clamped to 100, the
	// patients of 朝阳区 add up to 8,800, those of 海淀区 to 3,640, and the
	// one elsewhere to 40 (an ungrouped total has no domain to leave it
	// out of). Laplace scale 100: off by more than 2,000 with probability
	// e^-20.
	if v := b.values()[""]; math.Abs(v-(8800+3640+40)) > 2000 {
		t.Errorf("sum %v, want 12,480 ± 2,000", v)
	}
	if fmt.Sprint(b.Bounds["bounds"]) != "[0 100]" || b.Bounds["privacy_unit"] != "patient_id" {
		t.Errorf("contribution bounds %v", b.Bounds)
	}
	b = decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=mean&field=cost&group_by=district&epsilon=1", tok))
	if v := b.values()["朝阳区"]; v < 0 || v > 100 {
		t.Errorf("mean %v outside the bounds", v)
	}
}

func TestStatsAddCalibratedNoiseToUpstreamAggregates(t *testing.T) {
	g := newStatsGateway(t, true)
	w := g.get(t, "/v1/health/byarea/stats?metric=sum&field=visits&group_by=district&epsilon=1", g.token(t, "ann", "statistician"))
	b := decodeStats(t, w)
	near(t, b.values(), map[string]float64{"朝阳区": 500, "海淀区": 250, "东城区": 0})
	if b.Mechanism != "laplace" || b.Bounds["sensitivity"] != 1.0 || b.Spent != (statsSpent{Epsilon: 1}) {
		t.Errorf("mechanism %q, bounds %v, spent %+v", b.Mechanism, b.Bounds, b.Spent)
	}
	if ev := g.event(t, w); spentOf(ev) != 1 {
		t.Errorf("audit record %+v", ev)
	}
}

func TestStatsOverTheRecordLimitAreRefusedAndCharged(t *testing.T) {
	g := newStatsGateway(t, true)
	w := g.get(t, "/v1/health/big/stats?metric=count&epsilon=0.5", g.token(t, "ann", "statistician"))
	expectStatsError(t, w, 413, "too_large")
	if spent := g.spent(t, consumer("ann"))[0]; spent.Epsilon != 0.5 {
		t.Errorf("a release stopped at its record limit spent %+v, want ε=0.5: the records were read", spent)
	}
	if ev := g.event(t, w); spentOf(ev) != 0.5 || ev.Status != 413 {
		t.Errorf("audit record %+v, want the charge on it", ev)
	}
}

// Every way a department can fail a statistics read after the cost was
// reserved: each is charged, so none is a free answer about the data.
func TestStatsFailuresAfterTheFirstReadAreCharged(t *testing.T) {
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body)
		}
	}
	for _, tc := range []struct {
		name    string
		path    string
		handler http.HandlerFunc
		status  int
		code    string
	}{
		{"department error", countByDistrict, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"down"}`, http.StatusInternalServerError)
		}, 502, "upstream_invalid"},
		{"not JSON", countByDistrict, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>")
		}, 502, "upstream_invalid"},
		{"malformed page", countByDistrict, page(`{"items": [{"patient_id": "P1", "district": "朝阳区"}, {"patient_id": `), 502, "upstream_invalid"},
		{"a record without its privacy unit", countByDistrict, page(`{"items": [{"district": "朝阳区"}]}`), 502, "upstream_invalid"},
		{"a non-integer in an integer field", "/v1/health/visits/stats?metric=sum&field=cost&epsilon=0.5",
			page(`{"items": [{"patient_id": "P1", "district": "朝阳区", "cost": 1.5}]}`), 502, "upstream_invalid"},
		{"a body cut short", countByDistrict, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, `{"items": [`)
		}, 502, "upstream_invalid"},
		{"pages that never end", "/v1/health/big/stats?metric=count&epsilon=0.5",
			page(`{"items": [{"patient_id": "P1", "district": "朝阳区"}]}`), 413, "too_large"},
		{"a department slower than the read's deadline", "/v1/health/slow/stats?metric=count&epsilon=0.5", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(100 * time.Millisecond)
			page(`{"items": [{"patient_id": "P1", "district": "朝阳区"}]}`)(w, r)
		}, 504, "upstream_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newStatsGateway(t, true)
			h := tc.handler
			g.hook.Store(&h)
			w := g.get(t, tc.path, g.token(t, "ann", "statistician"))
			expectStatsError(t, w, tc.status, tc.code)
			if spent := g.spent(t, consumer("ann"), statisticians); spent[0].Epsilon != 0.5 || spent[1].Epsilon != 0.5 {
				t.Errorf("a release that failed after reading spent %+v, want ε=0.5 on both accounts", spent)
			}
			if ev := g.event(t, w); ev.EpsilonRequested != 0.5 || spentOf(ev) != 0.5 || ev.Decision != outcomeDecision(tc.status) || ev.Status != tc.status {
				t.Errorf("audit record %+v", ev)
			}
			if strings.Contains(w.Body.String(), "P1") || strings.Contains(w.Body.String(), "1.5") {
				t.Errorf("the error quotes the department's data: %s", w.Body)
			}
			if ev := g.event(t, w); strings.Contains(ev.Reason, "P1") || strings.Contains(ev.Reason, "1.5") || strings.Contains(ev.Reason, "html") {
				t.Errorf("the audit record quotes the department's data: %q", ev.Reason)
			}
		})
	}
}

// The failures that are the gateway's own, after the read: the answer
// cannot be stored, or the caller goes away while the pages are read.
// Both are charged.
func TestStatsFailuresOfTheGatewayAfterTheReadAreCharged(t *testing.T) {
	t.Run("the answer cache cannot store the answer", func(t *testing.T) {
		g := newStatsGateway(t, true)
		g.storeFails.Store(true)
		w := g.get(t, countByDistrict, g.token(t, "ann", "statistician"))
		expectStatsError(t, w, 503, "unavailable")
		if spent := g.spent(t, consumer("ann"))[0]; spent.Epsilon != 0.5 {
			t.Errorf("spent %+v, want ε=0.5", spent)
		}
		if ev := g.event(t, w); spentOf(ev) != 0.5 || ev.Status != 503 {
			t.Errorf("audit record %+v", ev)
		}
	})
	t.Run("the caller goes away during the read", func(t *testing.T) {
		g := newStatsGateway(t, true)
		ctx, cancel := context.WithCancel(context.Background())
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cancel() // the caller leaves once the department is asked
			<-r.Context().Done()
		})
		g.hook.Store(&h)
		w := httptest.NewRecorder()
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, countByDistrict, nil)
		r.Header.Set("Authorization", "Bearer "+g.token(t, "ann", "statistician"))
		g.srv.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if spent := g.spent(t, consumer("ann"))[0]; spent.Epsilon != 0.5 {
			t.Errorf("a caller that left during the read spent %+v, want ε=0.5", spent)
		}
	})
}

func TestStatsSybilSubjectsOfOneOrganisationShareItsCap(t *testing.T) {
	g := newStatsGateway(t, true)
	ok := 0
	for i := range 10 {
		tok := g.tokenOf(t, jwt.MapClaims{"sub": fmt.Sprint("sybil", i), "roles": []string{"orgstat"}, "dept": "acme"})
		w := g.get(t, fmt.Sprintf("/v1/health/visits/stats?metric=count&epsilon=0.9%d", i), tok)
		switch w.Code {
		case 200:
			ok++
		default:
			msg := expectStatsError(t, w, 403, "privacy_budget_exhausted")
			if !strings.Contains(msg, "your organisation's account") {
				t.Errorf("sybil %d refused with %q", i, msg)
			}
		}
	}
	// The organisation's cap of 4 pays for four answers of ε ≈ 0.9 however
	// many subjects ask; each subject's own cap (3) would have paid for 30.
	if ok != 4 {
		t.Errorf("%d answers for one organisation's subjects, want 4", ok)
	}
	if org := g.spent(t, jsonKey("organisation", "test-idp", "acme"))[0]; org.Epsilon > 4 {
		t.Errorf("the organisation spent ε=%v of its cap of 4", org.Epsilon)
	}
	// Another organisation has its own account.
	other := g.tokenOf(t, jwt.MapClaims{"sub": "sybil0", "roles": []string{"orgstat"}, "dept": "other"})
	b := decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon=0.5", other))
	if b.Remaining.Organisation == nil || math.Abs(b.Remaining.Organisation.Epsilon-3.5) > 1e-9 {
		t.Errorf("another organisation's remaining %+v, want ε=3.5 of its own 4", b.Remaining)
	}
}

func TestStatsAnExhaustedClassLeavesTheOthersTheirAllocation(t *testing.T) {
	g := newStatsGateway(t, true)
	// The public's allocation is 1: two public callers spend it.
	for i, who := range []string{"pat", "pam"} {
		decodeStats(t, g.get(t, []string{"/v1/health/visits/stats?metric=count&epsilon=0.5", countByDistrict}[i], g.token(t, who, "public")))
	}
	w := g.get(t, "/v1/health/visits/stats?metric=count&epsilon=0.4", g.token(t, "pia", "public"))
	msg := expectStatsError(t, w, 403, "privacy_budget_exhausted")
	if !strings.Contains(msg, `the "public" allocation`) {
		t.Errorf("a public caller refused with %q", msg)
	}
	// What the other public callers left of the shared allocation is
	// theirs: the refusal names the account, not its balance.
	var body errorBody
	json.Unmarshal(w.Body.Bytes(), &body)
	if r := body.Error.BudgetRefusal; r == nil || r.Account != "allocation" || r.Left != nil || r.Needed.Epsilon != 0.4 {
		t.Errorf("structured refusal %+v, want the allocation named, what was needed, and no balance", r)
	}
	// The statisticians' allocation is untouched.
	b := decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon=1", g.token(t, "ann", "statistician")))
	if b.Account.Allocation != "statistician" || b.Spent.Epsilon != 1 {
		t.Errorf("statistician answer account %+v spent %+v", b.Account, b.Spent)
	}
	if spent := g.spent(t, jsonKey("allocation", "public"), statisticians); spent[0].Epsilon > 1 || spent[1].Epsilon != 1 {
		t.Errorf("allocations spent %+v", spent)
	}
}

func TestStatsTwoDatasetsOfOnePopulationDrawOnOneAccount(t *testing.T) {
	g := newStatsGateway(t, true)
	tok := g.token(t, "ann", "statistician")
	decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon=1", tok))
	b := decodeStats(t, g.get(t, "/v1/health/byarea/stats?metric=sum&field=visits&epsilon=1", tok))
	if b.Account.Population != "city" || math.Abs(b.Remaining.Consumer.Epsilon-1) > 1e-9 {
		t.Errorf("the second dataset's answer: account %+v, remaining %+v; want city with ε=1 of 3 left", b.Account, b.Remaining)
	}
	if spent := g.spent(t, consumer("ann"), statisticians); spent[0].Epsilon != 2 || spent[1].Epsilon != 2 {
		t.Errorf("population accounts spent %+v, want ε=2 on each", spent)
	}
}

func TestStatsAPeriodBoundaryRenewsTheAccounts(t *testing.T) {
	g := newStatsGateway(t, true)
	at := func(s string) {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		g.now.Store(&tm)
	}
	tok := g.token(t, "ann", "statistician")
	at("2026-01-10T12:00:00Z")
	for _, eps := range []string{"1", "0.99", "0.98"} {
		b := decodeStats(t, g.get(t, "/v1/health/monthly/stats?metric=count&epsilon="+eps, tok))
		want := &period{Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)}
		if diff := cmp.Diff(want, b.Account.Period); diff != "" {
			t.Errorf("period (-want +got):\n%s", diff)
		}
		if !strings.Contains(b.Guarantee, "in each period of 720h0m0s (this one 2026-01-01 to 2026-01-31)") {
			t.Errorf("guarantee %q does not say it is per period", b.Guarantee)
		}
	}
	msg := expectStatsError(t, g.get(t, "/v1/health/monthly/stats?metric=count&epsilon=0.5", tok), 403, "privacy_budget_exhausted")
	if !strings.Contains(msg, "budgets renew at 2026-01-31T00:00:00Z") {
		t.Errorf("message %q does not say when the budget renews", msg)
	}
	at("2026-01-31T00:00:01Z")
	b := decodeStats(t, g.get(t, "/v1/health/monthly/stats?metric=count&epsilon=0.5", tok))
	if b.Account.Period == nil || !b.Account.Period.Start.Equal(time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)) ||
		math.Abs(b.Remaining.Consumer.Epsilon-2.5) > 1e-9 {
		t.Errorf("after the boundary: period %+v, remaining %+v", b.Account.Period, b.Remaining)
	}
}

func TestStatsUnderZCDPChargeRhoAndAddGaussianNoise(t *testing.T) {
	g := newStatsGateway(t, true)
	w := g.get(t, "/v1/health/zvisits/stats?metric=count&group_by=district&epsilon=1", g.token(t, "ann", "statistician"))
	b := decodeStats(t, w)
	near(t, b.values(), statsTruth)
	q := dp.Query{Metric: dp.Count, Epsilon: 1, Grouped: true, Domain: []string{"朝阳区", "海淀区", "东城区"}, MaxPartitions: 1,
		Accounting: dp.ZCDP, NoiseDelta: 1e-6}
	want := q.Cost()
	if b.Accounting != "zcdp" || b.Mechanism != "gaussian" || b.Spent.Rho == nil || *b.Spent.Rho != want.Rho || want.Rho <= 0 {
		t.Fatalf("accounting %q, mechanism %q, spent %+v; want ρ=%v", b.Accounting, b.Mechanism, b.Spent, want.Rho)
	}
	// The consumer's cap of ε=3 is ρ by the conversion at half the
	// population's δ; what is left is stated in both.
	capRho := dp.RhoForEpsilon(3, 1e-5/2)
	if r := b.Remaining.Consumer; r.Rho == nil || math.Abs(*r.Rho-(capRho-want.Rho)) > 1e-8 ||
		math.Abs(r.Epsilon-(3-dp.EpsilonForRho(want.Rho, 1e-5/2))) > 1e-6 {
		t.Errorf("remaining %+v, want ρ=%v", r, capRho-want.Rho)
	}
	if ev := g.event(t, w); ev.Obligations.RhoSpent != want.Rho || ev.Obligations.Accounting != "zcdp" {
		t.Errorf("audit obligations %+v", ev.Obligations)
	}
	if spent := g.spentIn(t, jsonKey("zcity", "zcdp", ""), consumer("ann"))[0]; math.Abs(spent.Epsilon-want.Rho) > 1e-8 {
		t.Errorf("ledger holds %v, want ρ=%v", spent.Epsilon, want.Rho)
	}
}

func TestLoadConfigNamesInvalidPopulations(t *testing.T) {
	for _, tc := range []struct{ name, populations, want string }{
		{"no name", "  - {budget: {epsilon: 1}, allocations: {a: 1}}\n", "populations[0].name: want lower-case"},
		{"twice", "  - {name: p, budget: {epsilon: 1}, allocations: {a: 1}}\n  - {name: p, budget: {epsilon: 1}, allocations: {a: 1}}\n",
			`populations[1].name: duplicate population "p"`},
		{"no epsilon", "  - {name: p, allocations: {a: 1}}\n", "populations[0].budget.epsilon: want 0 < ε"},
		{"a large delta", "  - {name: p, budget: {epsilon: 1, delta: 0.1}, allocations: {a: 1}}\n", "populations[0].budget.delta: want 0 < δ <= 0.001"},
		{"a short period", "  - {name: p, budget: {epsilon: 1, period: 1m}, allocations: {a: 1}}\n", "populations[0].budget.period: want at least 1h"},
		{"a period of no days", "  - {name: p, budget: {epsilon: 1, period: 0d}, allocations: {a: 1}}\n", "want a positive whole number of days"},
		{"a start without a period", `  - {name: p, budget: {epsilon: 1, period_start: "2026-01-01"}, allocations: {a: 1}}` + "\n", "populations[0].budget.period_start: needs budget.period"},
		{"a bad start", `  - {name: p, budget: {epsilon: 1, period: 30d, period_start: "Monday"}, allocations: {a: 1}}` + "\n", "populations[0].budget.period_start: want an RFC 3339"},
		{"no allocations", "  - {name: p, budget: {epsilon: 1}}\n", "populations[0].allocations: name at least one"},
		{"allocations over the budget", "  - {name: p, budget: {epsilon: 1}, allocations: {a: 0.6, b: 0.5}}\n", "populations[0].allocations: they sum to ε=1.1, more than budget.epsilon=1"},
		{"a zero allocation", "  - {name: p, budget: {epsilon: 1}, allocations: {a: 0}}\n", "populations[0].allocations.a: want a positive ε"},
		{"a bad class", "  - {name: p, budget: {epsilon: 1}, allocations: {A B: 1}}\n", `populations[0].allocations: "A B": want lower-case`},
		{"an unknown accountant", "  - {name: p, budget: {epsilon: 1}, allocations: {a: 1}, accounting: renyi}\n", `populations[0].accounting: want pure or zcdp, got "renyi"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, "populations:\n"+tc.populations+validConfig))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestStatsWithoutALedgerAreUnavailable(t *testing.T) {
	g := newStatsGateway(t, false)
	expectStatsError(t, g.get(t, countByDistrict, g.token(t, "ann", "statistician")), 503, "unavailable")
	if g.upstream.Load() != 0 {
		t.Error("the upstream was read without a ledger to charge")
	}
}

func TestLoadConfigReadsStatisticsSettings(t *testing.T) {
	yaml := edit(t, "        filters: {district: district}\n", `        filters: {district: district}
        domains: {district: [朝阳区, 海淀区]}
        max_records: 5000
        stats_page_size: 200
        max_partitions: 3
        delta: 1e-7
        population: residents
        stats_timeout: 2m
`)
	yaml = `populations:
  - name: residents
    budget: {epsilon: 10, period: 365d, period_start: "2026-01-01"}
    allocations: {analyst: 6, public: 2, open: 2}
    accounting: zcdp
` + yaml
	yaml = strings.Replace(yaml, "audit:\n", "state:\n  path: state/sluice.db\naudit:\n", 1)
	c, err := LoadConfig(writeConfig(t, yaml))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Sources[0].Datasets[0]
	if c.State.Path != "state/sluice.db" || !slices.Equal(d.Domains["district"], []string{"朝阳区", "海淀区"}) ||
		d.MaxRecords != 5000 || d.StatsPageSize != 200 || d.MaxPartitions != 3 || d.Delta != 1e-7 ||
		d.Population != "residents" || d.StatsTimeout != Duration(2*time.Minute) {
		t.Errorf("state %+v, dataset %+v", c.State, d)
	}
	p := c.Populations[0]
	if p.Budget.Epsilon != 10 || p.Budget.Delta != 1e-6 || p.Budget.Period != Duration(365*24*time.Hour) ||
		p.Accounting != "zcdp" || p.Allocations["analyst"] != 6 {
		t.Errorf("population %+v", p)
	}
}

func TestLoadConfigNamesInvalidStatisticsSettings(t *testing.T) {
	const at = "        filters: {district: district}\n"
	for _, tc := range []struct{ name, add, want string }{
		{"domain of an undeclared field", "        domains: {ward: [a]}\n", `sources[0].datasets[0].domains.ward: "ward" is not a declared field`},
		{"empty domain", "        domains: {district: []}\n", "sources[0].datasets[0].domains.district: list at least one value"},
		{"duplicate domain value", "        domains: {district: [a, a]}\n", `sources[0].datasets[0].domains.district: "a" is listed twice`},
		{"negative max records", "        max_records: -1\n", "sources[0].datasets[0].max_records: must be positive"},
		{"too many partitions", "        max_partitions: 5000\n", "sources[0].datasets[0].max_partitions: want 1 to 1000"},
		{"large delta", "        delta: 0.01\n", "sources[0].datasets[0].delta: want 0 < δ <= 0.001"},
		{"the old delta budget", "        delta_budget: {consumer: 1, dataset: 1}\n", "field delta_budget not found"},
		{"an unknown population", "        population: martians\n", `sources[0].datasets[0].population: "martians" is not among populations`},
		{"a negative read deadline", "        stats_timeout: -1s\n", "sources[0].datasets[0].stats_timeout: must be positive"},
		{"a k-anonymity refresh under a second", "        k_anonymity_refresh: 10ms\n", "sources[0].datasets[0].k_anonymity_refresh: want at least 1s"},
		{"unknown mechanism", "        noise: {mechanism: exponential, sensitivity: {visit_id: 1}}\n", `sources[0].datasets[0].noise.mechanism: want laplace or gaussian, got "exponential"`},
		{"no sensitivity", "        noise: {mechanism: laplace}\n", "sources[0].datasets[0].noise.sensitivity: declare"},
		{"sensitivity of a string", "        noise: {sensitivity: {district: 1}}\n", `sources[0].datasets[0].noise.sensitivity.district: "district" is not declared numeric`},
		{"laplace with delta", "        noise: {delta: 1e-6, sensitivity: {district: 1}}\n", "sources[0].datasets[0].noise.delta: only Gaussian noise spends δ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, edit(t, at, at+tc.add)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// spentOf is the ε an audit record says was charged.
func spentOf(ev audit.Event) float64 {
	if ev.Obligations == nil {
		return 0
	}
	return ev.Obligations.EpsilonSpent
}

// tokenTime is the gateway's clock when the test moved it, else now: its
// tokens are valid for 400 days either side, since the gateway judges
// token times by its own clock and the test moves it by days.
func (g *statsGateway) tokenTime() time.Time {
	if c := g.now.Load(); c != nil {
		return *c
	}
	return time.Now()
}
