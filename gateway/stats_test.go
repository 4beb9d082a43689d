package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
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

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/policy"
	"github.com/sluicegw/sluice/state"
)

// statsPolicy grants statistics to "statistician" (with a district
// filter) and to "narrow", whose decision keeps only 朝阳区 rows.
const statsPolicy = `package sluice

default decision := {"allow": false, "reason": "no rule grants this access"}

limits := {
	"metrics": ["count", "sum", "mean"],
	"max_epsilon": 1,
	"group_by": ["district", "diagnosis"],
	"bounds": {"cost": [0, 100], "visits": [0, 1000000]},
	"consumer_budget": 3,
	"dataset_budget": 5,
}

decision := {"allow": true, "reason": "statistician", "stats": limits, "params": ["district"]} if {
	input.action == "stats"
	"statistician" in input.subject.roles
}

decision := {"allow": true, "reason": "narrow", "stats": limits, "rows": [{"field": "district", "in": ["朝阳区"]}]} if {
	input.action == "stats"
	"narrow" in input.subject.roles
	not "statistician" in input.subject.roles
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
}

func newStatsGateway(t *testing.T, withState bool) *statsGateway {
	t.Helper()
	g := &statsGateway{secret: make([]byte, 32), ledger: state.NewMemory(), audit: &orderAudit{}}
	rand.Read(g.secret)
	records := statsFixture()
	agg := []map[string]any{{"district": "朝阳区", "visits": 500}, {"district": "海淀区", "visits": 200},
		{"district": "海淀区", "visits": 50}, {"district": "火星区", "visits": 9}}
	page := func(w http.ResponseWriter, r *http.Request, rows []map[string]any) {
		g.upstream.Add(1)
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
	cfg, set := loadFixture(t, map[string][]byte{"hs.key": g.secret, "policies/sluice.rego": []byte(statsPolicy),
		"sluice.yaml": []byte(hsHealth(up.URL) + `      - name: visits
        path: /visits
        privacy_unit: patient_id
        filters: {district: district}
        stats_page_size: 50
        max_records: 1000
        domains: {district: [朝阳区, 海淀区, 东城区]}
        fields: ` + fields + `
      - name: big
        path: /visits
        privacy_unit: patient_id
        max_records: 100
        fields: ` + fields + `
      - name: anonymous
        path: /visits
        fields: ` + fields + `
      - name: byarea
        path: /agg
        domains: {district: [朝阳区, 海淀区, 东城区]}
        noise: {sensitivity: {visits: 1}}
        fields: {district: {type: string}, visits: {type: integer}}
`)})
	deps := Deps{Audit: g.audit, Policies: policy.NewEngine(set), Logger: slog.New(slog.DiscardHandler)}
	if withState {
		deps.Ledger, deps.Answers = g.ledger, g.ledger
	}
	var err error
	if g.srv, err = New(context.Background(), cfg, deps); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *statsGateway) token(t *testing.T, sub string, roles ...string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "test-idp", "aud": "sluice", "sub": sub, "roles": roles,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(g.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

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
	Mechanism  string `json:"mechanism"`
	Selection  string `json:"partition_selection"`
	Epsilon    float64
	Delta      float64
	Partitions []struct {
		Key   *string    `json:"key"`
		Value float64    `json:"value"`
		CI95  [2]float64 `json:"ci95"`
	} `json:"partitions"`
	Bounds    map[string]any `json:"contribution_bounds"`
	Spent     state.Budget   `json:"spent"`
	Remaining struct {
		Consumer state.Budget `json:"consumer"`
		Dataset  state.Budget `json:"dataset"`
	} `json:"remaining"`
	Cached bool `json:"cached"`
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

const countByDistrict = "/v1/health/visits/stats?metric=count&group_by=district&epsilon=0.5"

func TestStatsReleasesNoisyCountsOfEveryPublicPartition(t *testing.T) {
	g := newStatsGateway(t, true)
	w := g.get(t, countByDistrict, g.token(t, "ann", "statistician"))
	b := decodeStats(t, w)
	near(t, b.values(), statsTruth)
	if b.Mechanism != "laplace" || b.Selection != "public_domain" || b.Cached {
		t.Errorf("mechanism %q, selection %q, cached %v", b.Mechanism, b.Selection, b.Cached)
	}
	if b.Spent != (state.Budget{Epsilon: 0.5}) || b.Remaining.Consumer != (state.Budget{Epsilon: 2.5, Delta: 1e-5}) ||
		b.Remaining.Dataset != (state.Budget{Epsilon: 4.5, Delta: 1e-4}) {
		t.Errorf("spent %+v, remaining %+v", b.Spent, b.Remaining)
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
	spent, _ := g.ledger.Spent(context.Background(), "health/visits", "ann")
	if spent.Consumer.Epsilon != 0.5 || spent.Dataset.Epsilon != 0.5 {
		t.Errorf("ledger %+v, want ε 0.5 charged to both accounts", spent)
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
		if !b.Cached || b.Spent != (state.Budget{}) {
			t.Errorf("%s: cached %v, spent %+v", who, b.Cached, b.Spent)
		}
		if ev := g.event(t, w); spentOf(ev) != 0 || ev.EpsilonRequested != 0.5 {
			t.Errorf("audit of a cached answer: %+v", ev)
		}
	}
	if g.upstream.Load() != calls {
		t.Error("a cached answer read the upstream again")
	}
	spent, _ := g.ledger.Spent(context.Background(), "health/visits", "bob")
	if spent.Consumer.Epsilon != 0 || spent.Dataset.Epsilon != 0.5 {
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
		{"no privacy unit", "/v1/health/anonymous/stats?metric=count&epsilon=0.1", "statistician", 403, "forbidden", 0.1},
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
	if spent, _ := g.ledger.Spent(context.Background(), "health/visits", "ann"); spent != (state.Balance{}) {
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
	if !strings.Contains(msg, "you ε=0.3") || !strings.Contains(msg, "the dataset ε=2.3") {
		t.Errorf("message %q does not say what is left", msg)
	}
	if ev := g.event(t, w); ev.EpsilonRequested != 0.7 || ev.Decision != "deny" || ev.Code != "privacy_budget_exhausted" {
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
	spent, _ := g.ledger.Spent(context.Background(), "health/visits", "ann")
	if math.Abs(spent.Consumer.Epsilon-3) > 1e-12 {
		t.Errorf("spent ε=%v, want the whole budget of 3 and no more", spent.Consumer.Epsilon)
	}
	// The dataset's budget of 5 is shared: bob may spend the 2 left.
	bob := g.token(t, "bob", "statistician")
	decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon=1&group_by=district", bob))
	decodeStats(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon=0.95&group_by=district", bob))
	msg = expectStatsError(t, g.get(t, "/v1/health/visits/stats?metric=count&epsilon=0.1", bob), 403, "privacy_budget_exhausted")
	if !strings.Contains(msg, "the dataset ε=0.05") {
		t.Errorf("message %q does not say the dataset is short", msg)
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
	spent, _ := g.ledger.Spent(context.Background(), "health/visits", "ann")
	if ok.Load() != 5 || spent.Consumer.Epsilon > 3 {
		t.Errorf("%d releases and %d refusals spent ε=%v of 3", ok.Load(), refused.Load(), spent.Consumer.Epsilon)
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
	if b.Selection != "private_selection" || b.Delta != 1e-6 || b.Spent != (state.Budget{Epsilon: 1, Delta: 1e-6}) {
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
	if b.Mechanism != "laplace" || b.Bounds["sensitivity"] != 1.0 || b.Spent != (state.Budget{Epsilon: 1}) {
		t.Errorf("mechanism %q, bounds %v, spent %+v", b.Mechanism, b.Bounds, b.Spent)
	}
	if ev := g.event(t, w); spentOf(ev) != 1 {
		t.Errorf("audit record %+v", ev)
	}
}

func TestStatsRefuseDatasetsOverTheirRecordLimit(t *testing.T) {
	g := newStatsGateway(t, true)
	w := g.get(t, "/v1/health/big/stats?metric=count&epsilon=0.5", g.token(t, "ann", "statistician"))
	expectStatsError(t, w, 413, "too_large")
	if spent, _ := g.ledger.Spent(context.Background(), "health/big", "ann"); spent != (state.Balance{}) {
		t.Errorf("a refused release spent %+v", spent)
	}
}

func TestStatsChargeNothingWhenTheUpstreamFails(t *testing.T) {
	g := newStatsGateway(t, true)
	g.fail.Store(true)
	w := g.get(t, countByDistrict, g.token(t, "ann", "statistician"))
	expectStatsError(t, w, 502, "upstream_invalid")
	if spent, _ := g.ledger.Spent(context.Background(), "health/visits", "ann"); spent != (state.Balance{}) {
		t.Errorf("a failed release spent %+v", spent)
	}
	if ev := g.event(t, w); ev.EpsilonRequested != 0.5 || ev.Decision != "allow" || ev.Status != 502 {
		t.Errorf("audit record %+v", ev)
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
        delta_budget: {consumer: 1e-6, dataset: 1e-5}
`)
	yaml = strings.Replace(yaml, "audit:\n", "state:\n  path: state/sluice.db\naudit:\n", 1)
	c, err := LoadConfig(writeConfig(t, yaml))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Sources[0].Datasets[0]
	if c.State.Path != "state/sluice.db" || !slices.Equal(d.Domains["district"], []string{"朝阳区", "海淀区"}) ||
		d.MaxRecords != 5000 || d.StatsPageSize != 200 || d.MaxPartitions != 3 || d.Delta != 1e-7 ||
		d.DeltaBudget != (DeltaBudgetConfig{Consumer: 1e-6, Dataset: 1e-5}) {
		t.Errorf("state %+v, dataset %+v", c.State, d)
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
		{"delta budget of 1", "        delta_budget: {consumer: 1, dataset: 1}\n", "sources[0].datasets[0].delta_budget: want each"},
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
