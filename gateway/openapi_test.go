package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/internal/version"
	"github.com/sluicegw/sluice/policy"
)

// notDescribed are the route patterns openapi.json leaves out, each with
// why. Every other pattern the gateway serves is described.
var notDescribed = map[string]string{
	"/": "the catch-all: it answers what no route serves with the error document (401 before authentication, then 404 or 405), which every answer outside the description is checked against",
}

// TestEveryRouteIsDescribedAndNothingElse: each pattern the gateway
// serves (open data on, so that its routes are served too) has its
// operation in openapi.json, and each operation there is served by the
// route of that pattern, not by another or by the catch-all.
func TestEveryRouteIsDescribedAndNothingElse(t *testing.T) {
	g := newTestGateway(t, &orderAudit{}, serveItems)
	g.srv.open = &openData{} // the open routes are served only when open data is on
	mux := g.srv.mux()
	spec := loadedSpec(t)

	for _, pattern := range mux.patterns {
		if why, ok := notDescribed[pattern]; ok {
			t.Logf("not described: %s (%s)", pattern, why)
			continue
		}
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "", pattern
		}
		item := spec.doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %q is served but openapi.json does not describe %s %s", pattern, method, path)
		}
	}
	for _, path := range spec.doc.Paths.InMatchingOrder() {
		for method := range spec.doc.Paths.Value(path).Operations() {
			r := httptest.NewRequest(method, sampleTarget(path), nil)
			_, pattern := mux.Handler(r)
			_, served, _ := strings.Cut(pattern, " ")
			subtree := strings.HasSuffix(served, "/") && strings.HasPrefix(path, served) // /audit/ serves /audit/{file}
			if served != path && !subtree {
				t.Errorf("openapi.json describes %s %s, which no route serves (%q answers it)", method, path, pattern)
			}
		}
	}
}

// sampleTarget is path with a value in each of its parameters.
func sampleTarget(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			segs[i] = "x"
		}
	}
	return strings.Join(segs, "/")
}

// TestOpenAPIIsServedWithoutATokenAndNamesTheBuild: GET /openapi.json
// needs no token and answers the description kept in the repository, a
// valid OpenAPI 3.1 document, with the build that serves it as its
// version; its ETag lets a cache revalidate it.
func TestOpenAPIIsServedWithoutATokenAndNamesTheBuild(t *testing.T) {
	g := newTestGateway(t, &orderAudit{}, serveItems)
	w := httptest.NewRecorder()
	g.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json without a token: %d %s, want 200", w.Code, w.Body)
	}
	h := w.Header()
	for name, want := range map[string]string{"Content-Type": "application/json", "Cache-Control": "public, no-cache"} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if h.Get("ETag") == "" || h.Get("X-Request-Id") == "" {
		t.Errorf("headers %v: want an ETag and an X-Request-Id", h)
	}

	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(w.Body.Bytes())
	if err != nil {
		t.Fatalf("the served description does not load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Errorf("the served description is not valid: %v", err)
	}
	if got, want := doc.Info.Version, version.Version().Module; got != want {
		t.Errorf("info.version %q, want the build's %q", got, want)
	}

	var served, kept map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &served); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(openapiJSON, &kept); err != nil {
		t.Fatal(err)
	}
	served["info"].(map[string]any)["version"] = kept["info"].(map[string]any)["version"]
	if diff := cmp.Diff(kept, served); diff != "" {
		t.Errorf("served description differs from openapi.json beyond info.version (-kept +served):\n%s", diff)
	}

	r := httptest.NewRequest(http.MethodGet, "/openapi.json", nil)
	r.Header.Set("If-None-Match", h.Get("ETag"))
	w = httptest.NewRecorder()
	g.srv.ServeHTTP(w, r)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("revalidated with its ETag: %d %q, want 304 without a body", w.Code, w.Body)
	}
}

// TestTheDescriptionRefusesAnswersThatDrift: the checks the tests run on
// every answer do refuse one that leaves the description — a member the
// description does not name, a missing one, a wrong type, an undescribed
// status or content type, an error without its request id — so that a
// shape drifting from openapi.json fails the test that sees it.
func TestTheDescriptionRefusesAnswersThatDrift(t *testing.T) {
	spec := loadedSpec(t)
	rid := "0123456789abcdef0123456789abcdef"
	headers := func(kv ...string) http.Header {
		h := http.Header{"X-Request-Id": {rid}, "Content-Type": {"application/json"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	health := `{"status":"ok","version":"v1"}`
	for _, tc := range []struct {
		name, method, target string
		status               int
		header               http.Header
		body                 string
		wantErr              string // "" for an answer the description allows
	}{
		{"healthz as described", "GET", "/healthz", 200, headers(), health, ""},
		{"a member not described", "GET", "/healthz", 200, headers(), `{"status":"ok","version":"v1","uptime":3}`, "uptime"},
		{"a member missing", "GET", "/healthz", 200, headers(), `{"status":"ok"}`, "version"},
		{"a value outside its enum", "GET", "/healthz", 200, headers(), `{"status":"fine","version":"v1"}`, "status"},
		{"no request id", "GET", "/healthz", 200, http.Header{"Content-Type": {"application/json"}}, health, "X-Request-Id"},
		{"an undescribed content type", "GET", "/healthz", 200, headers("Content-Type", "text/plain"), "ok", "text/plain"},
		{"an undescribed status", "GET", "/healthz", 202, headers(), health, "status"},
		{"records not under items", "GET", "/v1/health/visits", 200, headers(), `{"records":[{"a":1}]}`, "items"},
		{"records with a member that is no scalar", "GET", "/v1/health/visits", 200, headers(), `{"items":[],"page":{"n":1}}`, "page"},
		{"records as described", "GET", "/v1/health/visits?page=2", 200, headers("Link", `</v1/health/visits?page=3>; rel="next"`),
			`{"items":[{"visit_id":"V1","nested":{"x":[1]}}],"page":2,"total":40,"filtered":3}`, ""},
		{"an error as described", "GET", "/v1/health/visits", 403, headers(),
			`{"error":{"code":"forbidden","message":"no","request_id":"` + rid + `"}}`, ""},
		{"an error without its request id", "GET", "/v1/health/visits", 403, headers(), `{"error":{"code":"forbidden","message":"no"}}`, "request_id"},
		{"an error with a code not described", "GET", "/v1/catalog", 418, headers(),
			`{"error":{"code":"teapot","message":"no","request_id":"` + rid + `"}}`, "code"},
		{"a budget refusal with its numbers", "GET", "/v1/health/visits/stats?metric=count&epsilon=1", 403, headers(),
			`{"error":{"code":"privacy_budget_exhausted","message":"no","request_id":"` + rid + `","account":"consumer","population":"city",` +
				`"needed":{"epsilon":1,"delta":0},"left":{"epsilon":0.5,"delta":0,"epsilon_cap":5,"delta_cap":0}}}`, ""},
		{"a budget refusal naming an unknown account", "GET", "/v1/health/visits/stats?metric=count&epsilon=1", 403, headers(),
			`{"error":{"code":"privacy_budget_exhausted","message":"no","request_id":"` + rid + `","account":"everyone","population":"city",` +
				`"needed":{"epsilon":1,"delta":0}}}`, "account"},
		{"the catch-all's error", "GET", "/nowhere", 404, headers(), `{"error":{"code":"not_found","message":"no such route","request_id":"` + rid + `"}}`, ""},
		{"the catch-all answering anything else", "GET", "/nowhere", 200, headers(), `{"ok":true}`, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			_, err := spec.check(r, nil, tc.status, tc.header, []byte(tc.body), false)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("allowed, want a refusal naming %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("refused with %v, want it to name %q", err, tc.wantErr)
			}
		})
	}
}

// TestTheAnswersNoOtherTestAsksForAreAsDescribed walks the operations
// whose answers of success the other gateway tests do not ask for (the
// auditor API over a real trail, the hub's lists, demands, a suspension
// and its resumption, the pages' files), so that the checks see each of
// them.
func TestTheAnswersNoOtherTestAsksForAreAsDescribed(t *testing.T) {
	g := newHubGateway(t, "conditional")
	trail, err := audit.Open(g.cfg.Path(g.cfg.Audit.Dir), audit.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	srv, err := New(t.Context(), g.cfg, Deps{Audit: trail, Policies: policy.NewEngine(g.set), Logger: slog.New(slog.DiscardHandler), Hub: g.store})
	if err != nil {
		t.Fatal(err)
	}
	rita := g.token(t, "rita", "stats-bureau", "researcher")
	steward := g.token(t, "sam", "health", "steward")
	auditor := g.token(t, "ada", "", "auditor")
	expect := func(w *httptest.ResponseRecorder, status int) *httptest.ResponseRecorder {
		t.Helper()
		if w.Code != status {
			t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
		}
		return w
	}

	req := decodeAs[hub.Request](t, call(t, srv, "POST", "/v1/requests", rita, visitsRequest), http.StatusCreated)
	expect(call(t, srv, "GET", "/v1/requests?state=submitted", rita, nil), http.StatusOK)
	approval := map[string]any{"decision": "approve", "reason": "protocol", "conditions": map[string]any{"max_rows": 5}}
	req = decodeAs[hub.Request](t, call(t, srv, "POST", "/v1/requests/"+req.ID+"/decision", steward, approval), http.StatusOK)
	expect(call(t, srv, "GET", "/v1/grants", rita, nil), http.StatusOK)
	expect(call(t, srv, "GET", "/v1/grants/"+req.Grant, steward, nil), http.StatusOK)
	expect(call(t, srv, "POST", "/v1/grants/"+req.Grant+"/suspend", steward, map[string]any{"reason": "audit"}), http.StatusOK)
	expect(call(t, srv, "POST", "/v1/grants/"+req.Grant+"/resume", steward, map[string]any{"reason": "audit done"}), http.StatusOK)
	expect(call(t, srv, "POST", "/v1/grants/"+req.Grant+"/resume", steward, map[string]any{"reason": "again"}), http.StatusConflict)

	d := decodeAs[hub.Demand](t, call(t, srv, "POST", "/v1/demands", rita,
		map[string]any{"owner": "health", "description": "visits by age band", "purpose": "research"}), http.StatusCreated)
	expect(call(t, srv, "GET", "/v1/demands", steward, nil), http.StatusOK)
	expect(call(t, srv, "GET", "/v1/demands/"+d.ID, rita, nil), http.StatusOK)
	expect(call(t, srv, "POST", "/v1/demands/"+d.ID+"/decision", steward,
		map[string]any{"decision": "publish", "dataset": "health/visits", "reason": "offered"}), http.StatusOK)

	expect(call(t, srv, "GET", "/audit/v1/events?limit=2", auditor, nil), http.StatusOK)
	expect(call(t, srv, "GET", "/audit/v1/events?decision=deny&order=oldest", auditor, nil), http.StatusOK)
	expect(call(t, srv, "GET", "/audit/v1/verify", auditor, nil), http.StatusOK)
	expect(call(t, srv, "GET", "/audit/v1/summary", auditor, nil), http.StatusOK)
	expect(call(t, srv, "GET", "/audit/v1/events?limit=0", auditor, nil), http.StatusBadRequest)
	expect(call(t, srv, "POST", "/v1/catalog", auditor, nil), http.StatusMethodNotAllowed)

	for target, status := range map[string]int{"/audit/app.js": 200, "/hub/app.css": 200, "/me/app.js": 200, "/me/kit.js": 200, "/hub/kit.js": 200, "/hub/index.html": 301, "/audit/nothing.js": 404} {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		if w.Code != status {
			t.Errorf("GET %s: %d, want %d", target, w.Code, status)
		}
	}
}

// TestEveryAnswerATestGetsIsChecked: the fixtures' gateways do run the
// description's checks (fixture_test.go), so the other tests keep it
// true.
func TestEveryAnswerATestGetsIsChecked(t *testing.T) {
	g := newTestGateway(t, &orderAudit{}, serveItems)
	before := specChecked.Load()
	w := httptest.NewRecorder()
	g.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if specChecked.Load() == before {
		t.Fatal("an answer of a fixture's gateway was not checked against openapi.json")
	}
}

// specChecked counts the answers checked against an operation of the
// description, specOutside those checked as answers outside it (the
// catch-all's, preflights), and specUnchecked those left unchecked
// (HEAD, bodies over specMaxBody).
var specChecked, specOutside, specUnchecked atomic.Int64

// specMaxBody bounds the body of an answer the checks keep.
const specMaxBody = 8 << 20

// spec is openapi.json ready to check answers: loaded, validated, and
// each operation findable by Go's own pattern matching, so that a request
// is matched to the operation the gateway's mux would serve it with
// (/v1/requests/{id} before /v1/{source}/{dataset}).
type spec struct {
	doc    *openapi3.T
	mux    *http.ServeMux
	routes map[string]*routers.Route // by the pattern registered
}

var specOnce = sync.OnceValues(func() (*spec, error) {
	for _, ct := range []string{"text/html", "text/css", "text/javascript", "application/openmetrics-text"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder) // the pages' files and the metrics: text
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapiJSON)
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapi.json is not valid: %w", err)
	}
	sp := &spec{doc: doc, mux: http.NewServeMux(), routes: map[string]*routers.Route{}}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			pattern := method + " " + path
			if strings.HasSuffix(path, "/") {
				pattern += "{$}" // an OpenAPI path is exact, a Go pattern ending in / is a subtree
			}
			if err := registerPattern(sp.mux, pattern); err != nil {
				return nil, fmt.Errorf("openapi.json path %s %s: %w", method, path, err)
			}
			sp.routes[pattern] = &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
		}
	}
	return sp, nil
})

func registerPattern(mux *http.ServeMux, pattern string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	mux.HandleFunc(pattern, func(http.ResponseWriter, *http.Request) {})
	return nil
}

func loadedSpec(t testing.TB) *spec {
	t.Helper()
	sp, err := specOnce()
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// route is the operation r asks for and r's path parameters; nil when the
// description has none (the gateway's catch-all answers it).
func (sp *spec) route(r *http.Request) (*routers.Route, map[string]string) {
	_, pattern := sp.mux.Handler(r)
	route := sp.routes[pattern]
	if route == nil {
		return nil, nil
	}
	params := map[string]string{}
	segs := strings.Split(r.URL.EscapedPath(), "/")
	for i, s := range strings.Split(route.Path, "/") {
		if name, ok := strings.CutPrefix(s, "{"); ok && i < len(segs) {
			v, err := url.PathUnescape(segs[i])
			if err != nil {
				v = segs[i]
			}
			params[strings.TrimSuffix(name, "}")] = v
		}
	}
	return route, params
}

// check checks one exchange: the answer against the operation the request
// asks for (its status, headers and body) and, for an answer of success,
// the request too — the gateway answered it, so the description must take
// it. An answer outside every operation must be an error document or a
// preflight's. It returns the route checked against, "" outside.
// A truncated body (over specMaxBody) is left unchecked.
func (sp *spec) check(r *http.Request, reqBody []byte, status int, header http.Header, body []byte, truncated bool) (string, error) {
	if r.Method == http.MethodHead {
		return "", nil
	}
	route, params := sp.route(r)
	if route == nil {
		if truncated {
			return "", nil
		}
		return "", sp.checkOutside(r, status, header, body)
	}
	ctx := context.Background()
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	req := r.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	if len(reqBody) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json") // the gateway reads a body as JSON whatever it is labelled
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	name := route.Method + " " + route.Path
	if status >= 200 && status < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return name, fmt.Errorf("answered %d, but the description does not take the request: %w", status, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	if truncated {
		out.Options = &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: true}
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return name, err
	}
	return name, nil
}

// checkOutside checks an answer no operation describes: a CORS preflight
// (204 without a body), or the error document with its request id.
func (sp *spec) checkOutside(r *http.Request, status int, header http.Header, body []byte) error {
	if header.Get("X-Request-Id") == "" {
		return errors.New("no X-Request-Id")
	}
	if r.Method == http.MethodOptions && status == http.StatusNoContent && len(body) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil || !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		return fmt.Errorf("status %d %q: not the JSON error document", status, header.Get("Content-Type"))
	}
	if status < 400 {
		return fmt.Errorf("status %d: answered outside every operation, so it must be an error", status)
	}
	if err := sp.doc.ValidateSchemaJSON(sp.doc.Components.Schemas["Error"].Value, v); err != nil {
		return fmt.Errorf("not the error document: %w", err)
	}
	return nil
}

// specChecker runs h, passing each answer through to the caller as it is
// written, and then checks it against the description, failing t with
// the route, the status and what is wrong.
func specChecker(t *testing.T, h http.Handler) http.Handler {
	sp, err := specOnce()
	if err != nil {
		t.Error(err)
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var reqBody []byte
		if r.Body != nil {
			reqBody, _ = io.ReadAll(r.Body)
			r.Body.Close()
			r.Body = io.NopCloser(bytes.NewReader(reqBody))
		}
		tee := &teeWriter{ResponseWriter: w}
		h.ServeHTTP(tee, r)
		if tee.status == 0 {
			tee.WriteHeader(http.StatusOK) // what net/http answers for a handler that wrote nothing
		}
		if tee.header.Get("Content-Type") == "" && tee.body.Len() > 0 {
			tee.header.Set("Content-Type", http.DetectContentType(tee.body.Bytes())) // as net/http sniffs it
		}
		route, err := sp.check(r, reqBody, tee.status, tee.header, tee.body.Bytes(), tee.over)
		switch {
		case r.Method == http.MethodHead || tee.over:
			specUnchecked.Add(1)
		case route == "":
			specOutside.Add(1)
		default:
			specChecked.Add(1)
		}
		if err != nil {
			if route == "" {
				route = "outside every operation"
			}
			t.Errorf("openapi.json: %s %s (%s) answered %d, which the description does not allow: %v",
				r.Method, r.URL.RequestURI(), route, tee.status, err)
		}
	})
}

// teeWriter passes an answer on as it is written and keeps a copy: its
// status, its headers when they were sent, and up to specMaxBody of its
// body.
type teeWriter struct {
	http.ResponseWriter
	status int
	header http.Header
	body   bytes.Buffer
	over   bool
}

func (w *teeWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status, w.header = code, w.ResponseWriter.Header().Clone()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status, w.header = http.StatusOK, w.ResponseWriter.Header().Clone()
	}
	if w.body.Len()+len(b) > specMaxBody {
		w.over = true
	} else if !w.over {
		w.body.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// Flush and Unwrap keep the writer's other abilities (the proxy flushes).
func (w *teeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
