package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/policy"
	"github.com/sluicegw/sluice/state"
)

// openGateway is a gateway publishing two open releases of the visits
// fixture (statsFixture): people by district, and their mean cost.
type openGateway struct {
	t      *testing.T
	srv    *Server
	cancel context.CancelFunc
	ledger interface {
		Ledger
		AnswerCache
	}
	audit    *orderAudit
	upstream *atomic.Int64
	fail     *atomic.Bool
	now      *atomic.Pointer[time.Time]
}

// openConfig is the fixture's open section; rate is open.rate.
func openConfig(rate string) string {
	return `open:
  enabled: true
  publisher: Test City
` + rate + `  releases:
    - id: people-by-district
      title: People with a visit, by district
      title_zh: 就诊人数（按区）
      dataset: health/visits
      metric: count
      group_by: district
      epsilon: 0.5
      every: 30d
    - id: mean-cost
      title: Mean cost of a visit
      dataset: health/visits
      metric: mean
      field: cost
      bounds: [0, 100]
      epsilon: 0.25
      every: 7d
`
}

type openUpstream struct {
	reads atomic.Int64
	fail  atomic.Bool
	url   string
}

func newOpenUpstream(t *testing.T) *openUpstream {
	u := &openUpstream{}
	records := statsFixture()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.reads.Add(1)
		if u.fail.Load() {
			http.Error(w, `{"error":"down"}`, http.StatusInternalServerError)
			return
		}
		q := r.URL.Query()
		p, _ := strconv.Atoi(q.Get("page"))
		size, _ := strconv.Atoi(q.Get("page_size"))
		items := []map[string]any{}
		if start := (p - 1) * size; p >= 1 && size >= 1 && start < len(records) {
			items = records[start:min(start+size, len(records))]
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"items": items, "page": p, "page_size": size, "total": len(records)})
	}))
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

// openYAML is the whole configuration of the fixture.
func openYAML(upstream, open string) string {
	return `populations:
  - name: city
    budget: {epsilon: 6, delta: 1e-5}
    allocations: {statistician: 3, open: 2}
` + open + hsHealth(upstream) + `      - name: visits
        path: /visits
        population: city
        privacy_unit: patient_id
        meta: [page, page_size]
        stats_page_size: 100
        domains: {district: [朝阳区, 海淀区, 东城区]}
        fields: {visit_id: {type: string}, patient_id: {type: id_cn, level: L4}, district: {type: string},
          diagnosis: {type: string}, cost: {type: integer}, note: {type: string}}
`
}

// startOpen builds and starts a gateway on store (its ledger and answer
// cache), and waits for its first releases.
func startOpen(t *testing.T, up *openUpstream, open string, store interface {
	Ledger
	AnswerCache
}, now *atomic.Pointer[time.Time]) *openGateway {
	t.Helper()
	secret := make([]byte, 32)
	rand.Read(secret)
	cfg, set := loadFixture(t, map[string][]byte{"hs.key": secret, "policies/sluice.rego": []byte(statsPolicy),
		"sluice.yaml": []byte(openYAML(up.url, open))})
	g := &openGateway{t: t, ledger: store, audit: &orderAudit{}, upstream: &up.reads, fail: &up.fail, now: now}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	t.Cleanup(cancel)
	var err error
	g.srv, err = New(ctx, cfg, Deps{Audit: g.audit, Policies: policy.NewEngine(set), Logger: slog.New(slog.DiscardHandler),
		Ledger: store, Answers: store, Now: func() time.Time { return *now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	g.waitServed("people-by-district", "mean-cost")
	return g
}

func (g *openGateway) waitServed(ids ...string) {
	g.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, id := range ids {
		for g.srv.open.served(id) == nil {
			if time.Now().After(deadline) {
				g.t.Fatalf("release %s was never published", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// get asks as a visitor: no token, from addr.
func (g *openGateway) get(path, addr string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = addr + ":40000"
	w := httptest.NewRecorder()
	g.srv.ServeHTTP(w, r)
	return w
}

// releases are the trail's open.release records.
func (g *openGateway) releases() []audit.Event {
	g.audit.mu.Lock()
	defer g.audit.mu.Unlock()
	var out []audit.Event
	for _, e := range g.audit.events {
		if e.Action == "open.release" {
			out = append(out, e)
		}
	}
	return out
}

func clockAt(t time.Time) *atomic.Pointer[time.Time] {
	var p atomic.Pointer[time.Time]
	p.Store(&t)
	return &p
}

var openStart = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// TestOpenReleasesAreComputedOncePerPeriodWhateverTheVisitors: a hundred
// visitors from many addresses read the same tables; the department is
// read and the budget charged once per release and period, and the trail
// holds one record per release. The next period computes each anew, once.
func TestOpenReleasesAreComputedOncePerPeriodWhateverTheVisitors(t *testing.T) {
	up := newOpenUpstream(t)
	g := startOpen(t, up, openConfig(""), state.NewMemory(), clockAt(openStart))
	reads := g.upstream.Load()
	var first []byte
	for i := range 100 {
		w := g.get("/open/v1/releases/people-by-district", "10.0.0."+strconv.Itoa(i%50))
		if w.Code != http.StatusOK {
			t.Fatalf("visitor %d: %d %s", i, w.Code, w.Body)
		}
		if first == nil {
			first = w.Body.Bytes()
		} else if !bytes.Equal(first, w.Body.Bytes()) {
			t.Fatal("two visitors read different tables")
		}
	}
	if got := g.upstream.Load(); got != reads {
		t.Errorf("visitors caused %d upstream reads", got-reads)
	}
	if n := len(g.releases()); n != 2 {
		t.Errorf("%d open.release records for 2 releases", n)
	}
	open := jsonKey("allocation", "open")
	spent := openSpent(t, g.ledger, open)
	if want := 0.5 + 0.25; !sameFloat(spent, want) {
		t.Errorf("the open allocation spent ε=%g, want %g", spent, want)
	}
	// Recomputing within the period, as a restart or a second replica
	// would, charges and reads nothing.
	for _, rel := range g.srv.open.releases {
		if err := g.srv.refreshOpen(context.Background(), rel, openStart.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if g.upstream.Load() != reads || !sameFloat(openSpent(t, g.ledger, open), 0.75) || len(g.releases()) != 2 {
		t.Error("refreshing within the period read or charged again")
	}
	// Eight days on, the weekly release is due again, the monthly is not.
	later := openStart.Add(8 * 24 * time.Hour)
	g.now.Store(&later)
	for _, rel := range g.srv.open.releases {
		if err := g.srv.refreshOpen(context.Background(), rel, later); err != nil {
			t.Fatal(err)
		}
	}
	if got := openSpent(t, g.ledger, open); !sameFloat(got, 1.0) {
		t.Errorf("after a week the open allocation spent ε=%g, want 1.0", got)
	}
	if n := len(g.releases()); n != 3 {
		t.Errorf("%d open.release records after a week, want 3", n)
	}
}

// TestOpenReleasesSurviveARestart: a new gateway on the same state file
// serves the tables its predecessor computed, byte for byte, without
// reading the department or charging anything.
func TestOpenReleasesSurviveARestart(t *testing.T) {
	up := newOpenUpstream(t)
	path := filepath.Join(t.TempDir(), "state.db")
	bolt, err := state.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	g := startOpen(t, up, openConfig(""), bolt, clockAt(openStart))
	before := g.get("/open/v1/releases/people-by-district", "10.0.0.1").Body.String()
	reads := g.upstream.Load()
	g.cancel()
	bolt.Close()

	bolt, err = state.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	g2 := startOpen(t, up, openConfig(""), bolt, clockAt(openStart.Add(time.Hour)))
	after := g2.get("/open/v1/releases/people-by-district", "10.0.0.1").Body.String()
	if before != after {
		t.Errorf("the restarted gateway serves another table:\n%s\n%s", before, after)
	}
	if g2.upstream.Load() != reads || len(g2.releases()) != 0 {
		t.Errorf("the restart read the department %d times and made %d release records", g2.upstream.Load()-reads, len(g2.releases()))
	}
	if got := openSpent(t, bolt, jsonKey("allocation", "open")); !sameFloat(got, 0.75) {
		t.Errorf("after a restart the open allocation spent ε=%g, want 0.75", got)
	}
}

// TestOpenDataNeedsNoTokenAndTakesNoQuestions: every open route answers
// without a token (and ignores one), and refuses query parameters: there
// are no ad-hoc anonymous queries.
func TestOpenDataNeedsNoTokenAndTakesNoQuestions(t *testing.T) {
	g := startOpen(t, newOpenUpstream(t), openConfig(""), state.NewMemory(), clockAt(openStart))
	for _, path := range []string{"/open/v1/catalog", "/open/v1/releases", "/open/v1/releases/people-by-district",
		"/open/v1/releases/people-by-district.csv", "/open/v1/ledger"} {
		w := g.get(path, "10.0.0.9")
		if w.Code != http.StatusOK || w.Header().Get("X-Request-Id") == "" {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer not-a-token")
		w = httptest.NewRecorder()
		g.srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Errorf("%s with a bad token: %d", path, w.Code)
		}
	}
	for path, want := range map[string]int{
		"/open/v1/releases/people-by-district?group_by=diagnosis": http.StatusBadRequest,
		"/open/v1/releases/people-by-district?epsilon=5":          http.StatusBadRequest,
		"/open/v1/releases/nope":                                  http.StatusNotFound,
		"/open/v1/releases/nope.csv":                              http.StatusNotFound,
	} {
		w := g.get(path, "10.0.0.9")
		var body errorBody
		if w.Code != want || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code == "" || body.Error.RequestID == "" {
			t.Errorf("%s: %d %s, want %d with a JSON error", path, w.Code, w.Body, want)
		}
	}
	if n := len(g.releases()); n != 2 {
		t.Errorf("visitors' questions made %d release records, want the 2 declared", n)
	}
	// A record route still needs a token.
	if w := g.get("/v1/health/visits", "10.0.0.9"); w.Code != http.StatusUnauthorized {
		t.Errorf("records without a token: %d", w.Code)
	}
}

// TestOpenCSVSaysWhatTheJSONSays and no withheld cell carries a number,
// in either.
func TestOpenCSVSaysWhatTheJSONSays(t *testing.T) {
	g := startOpen(t, newOpenUpstream(t), openConfig(""), state.NewMemory(), clockAt(openStart))
	for _, id := range []string{"people-by-district", "mean-cost"} {
		w := g.get("/open/v1/releases/"+id, "10.0.0.1")
		var tab OpenTable
		if err := json.Unmarshal(w.Body.Bytes(), &tab); err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Cells []map[string]json.RawMessage `json:"cells"`
		}
		json.Unmarshal(w.Body.Bytes(), &raw)
		c := g.get("/open/v1/releases/"+id+".csv", "10.0.0.1")
		if ct := c.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("CSV content type %q", ct)
		}
		rows, err := csv.NewReader(c.Body).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(tab.Cells)+1 || strings.Join(rows[0], ",") != "group,value,ci95_low,ci95_high,epsilon,suppressed" {
			t.Fatalf("%s: CSV of %d rows for %d cells: %v", id, len(rows), len(tab.Cells), rows)
		}
		if id == "people-by-district" && len(tab.Cells) != 3 {
			t.Errorf("%d cells, want one per district of the public domain", len(tab.Cells))
		}
		for i, cell := range tab.Cells {
			row := rows[i+1]
			num := func(s string) float64 {
				f, err := strconv.ParseFloat(s, 64)
				if err != nil {
					t.Fatalf("%s row %d: %q is not a number", id, i, s)
				}
				return f
			}
			if cell.Key != nil && row[0] != *cell.Key {
				t.Errorf("%s row %d: group %q, JSON %q", id, i, row[0], *cell.Key)
			}
			if cell.Suppressed != "" {
				_, hasValue := raw.Cells[i]["value"]
				_, hasCI := raw.Cells[i]["ci95"]
				if hasValue || hasCI || row[1] != "" || row[2] != "" || row[3] != "" || row[5] != cell.Suppressed {
					t.Errorf("%s: withheld cell %d carries a number: %s / %v", id, i, raw.Cells[i], row)
				}
				continue
			}
			if cell.Value == nil || cell.CI95 == nil || num(row[1]) != *cell.Value || num(row[2]) != cell.CI95[0] ||
				num(row[3]) != cell.CI95[1] || num(row[4]) != cell.Epsilon || row[5] != "" {
				t.Errorf("%s row %d: CSV %v, JSON %+v", id, i, row, cell)
			}
			// A released number is larger than its own margin of error.
			if *cell.Value < (cell.CI95[1]-cell.CI95[0])/2 {
				t.Errorf("%s row %d: %g is released below its margin", id, i, *cell.Value)
			}
		}
		if tab.Epsilon <= 0 || tab.Margin <= 0 || !tab.Current || tab.Budget.Allocation != "open" || tab.Budget.EpsilonCap != 2 {
			t.Errorf("%s: table %+v", id, tab)
		}
	}
}

// TestOpenLedgerAddsUpToTheTrail: what the public ledger says each
// release spent, and the allocation in all, is what the trail's release
// records charged.
func TestOpenLedgerAddsUpToTheTrail(t *testing.T) {
	g := startOpen(t, newOpenUpstream(t), openConfig(""), state.NewMemory(), clockAt(openStart))
	later := openStart.Add(15 * 24 * time.Hour) // two more weekly releases
	for _, at := range []time.Time{openStart.Add(8 * 24 * time.Hour), later} {
		g.now.Store(&at)
		for _, rel := range g.srv.open.releases {
			if err := g.srv.refreshOpen(context.Background(), rel, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	var l OpenLedger
	if w := g.get("/open/v1/ledger", "10.0.0.1"); json.Unmarshal(w.Body.Bytes(), &l) != nil || len(l.Allocations) != 1 {
		t.Fatalf("ledger: %s", w.Body)
	}
	a := l.Allocations[0]
	trail := map[string]float64{}
	total := 0.0
	for _, e := range g.releases() {
		id := strings.TrimPrefix(e.Path, "/open/v1/releases/")
		trail[id] += e.Obligations.EpsilonSpent
		total += e.Obligations.EpsilonSpent
	}
	if !sameFloat(a.EpsilonSpent, total) || !sameFloat(a.EpsilonSpent, 0.5+3*0.25) || !sameFloat(a.EpsilonLeft, 2-a.EpsilonSpent) || a.EpsilonCap != 2 {
		t.Errorf("ledger %+v, trail ε=%g", a, total)
	}
	sum := 0.0
	for _, r := range a.Releases {
		sum += r.EpsilonSpent
		if !sameFloat(r.EpsilonSpent, trail[r.ID]) {
			t.Errorf("release %s: ledger ε=%g, trail ε=%g", r.ID, r.EpsilonSpent, trail[r.ID])
		}
	}
	if !sameFloat(sum, a.EpsilonSpent) {
		t.Errorf("the releases spent ε=%g, the allocation ε=%g", sum, a.EpsilonSpent)
	}
}

// TestOpenServesTheLastGoodReleaseWhenAPeriodFails: when the department
// is down at a period's start, the last good table is served, marked and
// dated, never a partial one; the failed attempt is on the trail and its
// charge stands, and the retry that succeeds charges nothing more.
func TestOpenServesTheLastGoodReleaseWhenAPeriodFails(t *testing.T) {
	up := newOpenUpstream(t)
	g := startOpen(t, up, openConfig(""), state.NewMemory(), clockAt(openStart))
	good := g.srv.open.served("mean-cost").table
	up.fail.Store(true)
	later := openStart.Add(8 * 24 * time.Hour)
	g.now.Store(&later)
	rel := g.srv.open.releases[1]
	if err := g.srv.refreshOpen(context.Background(), rel, later); err == nil {
		t.Fatal("a release was made from a department that is down")
	}
	var tab OpenTable
	w := g.get("/open/v1/releases/mean-cost", "10.0.0.1")
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &tab) != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if tab.Current || tab.Note == "" || !tab.Period.Start.Equal(good.Period.Start) || len(tab.Cells) != len(good.Cells) ||
		*tab.Cells[0].Value != *good.Cells[0].Value {
		t.Errorf("after a failure: %+v, want the last good table %+v marked", tab, good)
	}
	evs := g.releases()
	last := evs[len(evs)-1]
	if last.Decision != "error" || last.Obligations.EpsilonSpent != 0.25 {
		t.Errorf("the failed release's record: %+v", last)
	}
	spent := openSpent(t, g.ledger, jsonKey("allocation", "open"))
	up.fail.Store(false)
	if err := g.srv.refreshOpen(context.Background(), rel, later.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := openSpent(t, g.ledger, jsonKey("allocation", "open")); got != spent {
		t.Errorf("the retry charged again: ε=%g then %g", spent, got)
	}
	if sv := g.srv.open.served("mean-cost").table; !sv.Current || !sv.Period.Start.After(good.Period.Start) {
		t.Errorf("after the retry: %+v", sv)
	}
	evs = g.releases()
	if last := evs[len(evs)-1]; last.Decision != "allow" || last.Obligations.EpsilonSpent != 0 {
		t.Errorf("the retry's record charges again: %+v", last.Obligations)
	}
}

// TestOpenIsRateLimitedPerAddress: past open.rate, one address gets 429
// with Retry-After; another address is not affected.
func TestOpenIsRateLimitedPerAddress(t *testing.T) {
	g := startOpen(t, newOpenUpstream(t), openConfig("  rate: {rate: 3, per: 1m}\n"), state.NewMemory(), clockAt(openStart))
	for i := range 3 {
		if w := g.get("/open/v1/releases", "10.0.0.7"); w.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := g.get("/open/v1/releases", "10.0.0.7")
	var body errorBody
	if w.Code != http.StatusTooManyRequests || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != "rate_limited" ||
		w.Header().Get("Retry-After") == "" {
		t.Errorf("4th request: %d %s", w.Code, w.Body)
	}
	if w := g.get("/open/v1/releases", "10.0.0.8"); w.Code != http.StatusOK {
		t.Errorf("another address: %d", w.Code)
	}
}

// TestOpenCatalogIsDCAT: the catalogue is JSON-LD a DCAT harvester reads,
// one dcat:Dataset per table with JSON and CSV distributions that work.
func TestOpenCatalogIsDCAT(t *testing.T) {
	g := startOpen(t, newOpenUpstream(t), openConfig(""), state.NewMemory(), clockAt(openStart))
	w := g.get("/open/v1/catalog", "10.0.0.1")
	var cat struct {
		Context  map[string]string `json:"@context"`
		Type     string            `json:"@type"`
		Datasets []struct {
			Type         string `json:"@type"`
			Identifier   string `json:"dct:identifier"`
			Distribution []struct {
				DownloadURL string `json:"dcat:downloadURL"`
				MediaType   string `json:"dcat:mediaType"`
			} `json:"dcat:distribution"`
		} `json:"dcat:dataset"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &cat); err != nil || cat.Type != "dcat:Catalog" || cat.Context["dcat"] != "http://www.w3.org/ns/dcat#" {
		t.Fatalf("catalog %s: %v", w.Body, err)
	}
	if len(cat.Datasets) != 2 {
		t.Fatalf("%d datasets in the catalogue", len(cat.Datasets))
	}
	for _, d := range cat.Datasets {
		if d.Type != "dcat:Dataset" || len(d.Distribution) != 2 {
			t.Errorf("dataset %+v", d)
		}
		for _, dist := range d.Distribution {
			path := strings.TrimPrefix(dist.DownloadURL, "http://example.com")
			if r := g.get(path, "10.0.0.1"); r.Code != http.StatusOK || !strings.HasPrefix(r.Header().Get("Content-Type"), dist.MediaType) {
				t.Errorf("%s: %d %s", dist.DownloadURL, r.Code, r.Header().Get("Content-Type"))
			}
		}
	}
}

// TestOpenReleasesTheGatewayCannotMakeStopTheStart: each names the
// release and what is wrong.
func TestOpenReleasesTheGatewayCannotMakeStopTheStart(t *testing.T) {
	up := newOpenUpstream(t)
	release := func(body string) string {
		return "open:\n  enabled: true\n  releases:\n    - {id: r1, title: T, every: 30d, " + body + "}\n"
	}
	for _, c := range []struct{ open, want string }{
		{release("dataset: health/nope, metric: count, epsilon: 0.5"), `open.releases[0] (r1): dataset "health/nope" is not configured`},
		{release("dataset: health/visits, metric: count, group_by: diagnosis, epsilon: 0.5"), `group_by "diagnosis" has no public domain`},
		{release("dataset: health/visits, metric: sum, field: note, bounds: [0, 1], epsilon: 0.5"), `not declared numeric`},
		{release("dataset: health/visits, metric: count, epsilon: 3"), `more than the whole "open" allocation`},
		{release("dataset: health/visits, metric: median, epsilon: 0.5"), `open.releases[0].metric`},
		{release("dataset: health/visits, metric: mean, field: cost, epsilon: 0.5"), `open.releases[0].bounds`},
		{strings.Replace(release("dataset: health/visits, metric: count, epsilon: 0.5"), "id: r1", "id: R/1", 1), `open.releases[0].id`},
		{"open:\n  enabled: true\n", "open.releases: open data is enabled but declares no release"},
	} {
		secret := make([]byte, 32)
		rand.Read(secret)
		dir := t.TempDir()
		files := map[string][]byte{"hs.key": secret, "policies/sluice.rego": []byte(statsPolicy),
			"sluice.yaml": []byte(openYAML(up.url, c.open))}
		err := loadAndBuild(t, dir, files)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.open, err, c.want)
		}
	}
}

// loadAndBuild loads a configuration and builds a gateway from it,
// returning the first error.
func loadAndBuild(t *testing.T, dir string, files map[string][]byte) error {
	t.Helper()
	files["hmac.key"] = bytes.Repeat([]byte{7}, 32)
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := mkdirWrite(p, b); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := LoadConfig(filepath.Join(dir, "sluice.yaml"))
	if err != nil {
		return err
	}
	set, err := policy.Load(context.Background(), cfg.Path(cfg.Policy.Dir))
	if err != nil {
		t.Fatal(err)
	}
	m := state.NewMemory()
	_, err = New(t.Context(), cfg, Deps{Audit: &orderAudit{}, Policies: policy.NewEngine(set), Logger: slog.New(slog.DiscardHandler),
		Ledger: m, Answers: m})
	return err
}

func openSpent(t *testing.T, l Ledger, key string) float64 {
	t.Helper()
	b, err := l.Spent(context.Background(), jsonKey("city", "pure", ""), key)
	if err != nil {
		t.Fatal(err)
	}
	return b[0].Epsilon
}

func sameFloat(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func mkdirWrite(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o600)
}

// TestOpenStopsWhenTheOpenAllocationIsSpent: a release the allocation
// cannot pay for is refused (on the trail, charged nothing), the last
// good table is served, and nothing else's budget pays for it.
func TestOpenStopsWhenTheOpenAllocationIsSpent(t *testing.T) {
	daily := strings.Replace(openConfig(""), "epsilon: 0.5\n      every: 30d", "epsilon: 0.75\n      every: 1d", 1)
	g := startOpen(t, newOpenUpstream(t), daily, state.NewMemory(), clockAt(openStart))
	rel := g.srv.open.releases[0]
	day2 := openStart.Add(24 * time.Hour)
	if err := g.srv.refreshOpen(context.Background(), rel, day2); err != nil {
		t.Fatal(err)
	}
	good := g.srv.open.served(rel.cfg.ID).table
	err := g.srv.refreshOpen(context.Background(), rel, day2.Add(24*time.Hour))
	var ex *openExhausted
	if !errors.As(err, &ex) || ex.renews.Year() != 9999 {
		t.Fatalf("day 3: %v, want the allocation exhausted for good", err)
	}
	if got := openSpent(t, g.ledger, jsonKey("allocation", "open")); !sameFloat(got, 1.75) {
		t.Errorf("the open allocation spent ε=%g, want 1.75", got)
	}
	if got := openSpent(t, g.ledger, jsonKey("allocation", "statistician")); got != 0 {
		t.Errorf("another allocation paid ε=%g for open data", got)
	}
	sv := g.srv.open.served(rel.cfg.ID).table
	if sv.Current || !sv.Period.Start.Equal(good.Period.Start) || sv.Note == "" {
		t.Errorf("served %+v, want the last good table marked", sv)
	}
	evs := g.releases()
	if last := evs[len(evs)-1]; last.Decision != "deny" || last.Code != "privacy_budget_exhausted" {
		t.Errorf("the refusal's record: %+v", last)
	}
}
