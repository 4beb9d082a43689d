package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/policy"
)

const appOrigin = "https://app.example.gov.cn"

// newCORSGateway is newTestGateway's gateway with cors.origins naming
// appOrigin.
func newCORSGateway(t *testing.T, a *orderAudit) *testGateway {
	t.Helper()
	g := &testGateway{secret: make([]byte, 32)}
	rand.Read(g.secret)
	up := httptest.NewServer(http.HandlerFunc(serveItems))
	t.Cleanup(up.Close)
	cfg, set := loadFixture(t, map[string][]byte{"hs.key": g.secret, "policies/sluice.rego": []byte(testPolicy),
		"sluice.yaml": []byte("cors: {origins: [" + appOrigin + "]}\n" + hsHealth(up.URL) + `      - name: visits
        path: /visits
        id_field: visit_id
        meta: [page, page_size]
        filters: {district: district}
        fields:
          visit_id: {type: string, level: L2}
          patient_id: {type: id_cn, level: L4}
          district: {type: string, level: L1}
`)})
	var err error
	g.srv, err = New(context.Background(), cfg, Deps{Audit: a, Policies: policy.NewEngine(set), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *testGateway) send(t *testing.T, a *orderAudit, r *http.Request) *watchedWriter {
	t.Helper()
	w := &watchedWriter{ResponseRecorder: httptest.NewRecorder()}
	a.mu.Lock()
	a.w = w
	a.mu.Unlock()
	g.srv.ServeHTTP(w, r)
	return w
}

func TestCORSPreflightOfAConfiguredOriginIsAnsweredWithoutAToken(t *testing.T) {
	a := &orderAudit{}
	g := newCORSGateway(t, a)
	r := httptest.NewRequest(http.MethodOptions, "/v1/health/visits", nil)
	r.Header.Set("Origin", appOrigin)
	r.Header.Set("Access-Control-Request-Method", "GET")
	r.Header.Set("Access-Control-Request-Headers", "authorization, sluice-purpose")
	w := g.send(t, a, r)
	h := w.Header()
	if w.Code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != appOrigin ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), PurposeHeader) || h.Get("Access-Control-Max-Age") != "600" {
		t.Fatalf("preflight: %d %v", w.Code, h)
	}
	if ev := a.events[len(a.events)-1]; ev.Action != "preflight" || ev.Decision != "allow" || ev.Status != 204 {
		t.Errorf("preflight record %+v", ev)
	}
	if g.forwarded() != 0 {
		t.Error("a preflight reached the department")
	}
}

func TestCORSRefusesOtherOrigins(t *testing.T) {
	a := &orderAudit{}
	g := newCORSGateway(t, a)
	r := httptest.NewRequest(http.MethodOptions, "/v1/health/visits", nil)
	r.Header.Set("Origin", "https://evil.example")
	r.Header.Set("Access-Control-Request-Method", "GET")
	w := g.send(t, a, r)
	if w.Code != http.StatusForbidden || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of another origin: %d %v", w.Code, w.Header())
	}
	if ev := a.events[len(a.events)-1]; ev.Action != "preflight" || ev.Decision != "deny" {
		t.Errorf("record %+v, want a denied preflight", ev)
	}
	// Its actual request is served (a token is a token) but gets no CORS
	// header: the browser keeps the answer from the script.
	r = httptest.NewRequest(http.MethodGet, "/v1/health/visits", nil)
	r.Header.Set("Origin", "https://evil.example")
	r.Header.Set("Authorization", "Bearer "+g.token(t, "reader"))
	if w := g.send(t, a, r); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("an unlisted origin was allowed to read: %v", w.Header())
	}
}

// A configured origin reads answers and errors alike: a browser app must
// see why it was refused.
func TestCORSAnswersAndErrorsAreReadableByAConfiguredOrigin(t *testing.T) {
	a := &orderAudit{}
	g := newCORSGateway(t, a)
	for _, tc := range []struct {
		path   string
		token  bool
		status int
	}{{"/v1/health/visits?page_size=2", true, 200}, {"/v1/health/visits?cost=1", true, 403}, {"/v1/health/visits", false, 401}} {
		r := httptest.NewRequest(http.MethodGet, tc.path, nil)
		r.Header.Set("Origin", appOrigin)
		if tc.token {
			r.Header.Set("Authorization", "Bearer "+g.token(t, "reader"))
		}
		w := g.send(t, a, r)
		if w.Code != tc.status || w.Header().Get("Access-Control-Allow-Origin") != appOrigin ||
			!strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "X-Request-Id") || w.Header().Get("Vary") != "Origin" {
			t.Errorf("%s: %d %v", tc.path, w.Code, w.Header())
		}
	}
}

func TestCORSOriginsMustBeOrigins(t *testing.T) {
	for _, o := range []string{"*", "https://app.example/path", "app.example", "ftp://app.example", "https://app.example/"} {
		c := &CORSConfig{Origins: []string{o}}
		var errs []string
		c.validate(func(field, format string, args ...any) { errs = append(errs, field) })
		if len(errs) != 1 {
			t.Errorf("origin %q accepted", o)
		}
	}
}

func TestCatalogETagAnswers304WhenUnchanged(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveItems)
	tok := g.token(t, "reader")
	w := g.do(t, a, "/v1/catalog", tok)
	etag := w.Header().Get("ETag")
	if w.Code != 200 || len(etag) < 10 || w.Header().Get("Cache-Control") != "private, no-cache" {
		t.Fatalf("catalog: %d, ETag %q, Cache-Control %q", w.Code, etag, w.Header().Get("Cache-Control"))
	}
	r := httptest.NewRequest(http.MethodGet, "/v1/catalog", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("If-None-Match", `"other", `+etag)
	w2 := g.send(t, a, r)
	if w2.Code != http.StatusNotModified || w2.Body.Len() != 0 || w2.Header().Get("ETag") != etag {
		t.Errorf("revalidation: %d, %d bytes, ETag %q", w2.Code, w2.Body.Len(), w2.Header().Get("ETag"))
	}
	if ev := a.events[len(a.events)-1]; ev.Action != "catalog" || ev.Status != http.StatusNotModified || ev.Decision != "allow" {
		t.Errorf("304 record %+v", ev)
	}
	// A stale tag gets the body.
	r = httptest.NewRequest(http.MethodGet, "/v1/catalog", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("If-None-Match", `"stale"`)
	if w3 := g.send(t, a, r); w3.Code != 200 || w3.Body.Len() == 0 {
		t.Errorf("a stale tag: %d, %d bytes", w3.Code, w3.Body.Len())
	}
}

func TestRecordPagesLinkTheirNeighbours(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveItems) // the department returns two records a page
	tok := g.token(t, "reader")
	w := g.do(t, a, "/v1/health/visits?page=2&page_size=2&district=朝阳区", tok)
	link := w.Header().Get("Link")
	for _, want := range []string{`page=3&page_size=2>; rel="next"`, `page=1&page_size=2>; rel="prev"`, `rel="first"`, "</v1/health/visits?district="} {
		if !strings.Contains(link, want) {
			t.Errorf("Link %q lacks %q", link, want)
		}
	}
	// A short page is the last: no next.
	if l := g.do(t, a, "/v1/health/visits?page_size=5", tok).Header().Get("Link"); strings.Contains(l, "next") {
		t.Errorf("a short first page links %q", l)
	}
}

// The shipped fixture's reader sees 朝阳区 only: the department's page
// holds a 海淀区 visit too, which the row filter removes, and the answer
// says so.
func TestAPageSaysHowManyRecordsTheRowFiltersRemoved(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveItems)
	w := g.do(t, a, "/v1/health/visits", g.token(t, "reader"))
	var body struct {
		Items    []map[string]any `json:"items"`
		Filtered int              `json:"filtered"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Items) != 1 || body.Filtered != 1 {
		t.Errorf("body %s: want one record and filtered 1", w.Body)
	}
}

func TestMetaCannotShadowAMemberTheGatewayWrites(t *testing.T) {
	for _, m := range []string{"items", "suppressed", "filtered"} {
		cfg := &Config{Sources: []SourceConfig{{Datasets: []DatasetConfig{{Name: "d", Meta: []string{m}}}}}}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "a member the gateway writes itself") {
			t.Errorf("meta %q: %v", m, err)
		}
	}
}
