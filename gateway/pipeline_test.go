package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/policy"
)

// testPolicy lets role "reader" read the dataset with patient_id
// pseudonymised, district kept, rows limited to 朝阳区, and denies the rest.
const testPolicy = `package sluice

default decision := {"allow": false, "reason": "no rule grants this access"}

decision := {
	"allow": true,
	"reason": "reader",
	"fields": {"visit_id": "keep", "patient_id": "pseudonymize", "district": "keep"},
	"rows": [{"field": "district", "in": ["朝阳区"]}],
	"params": ["district", "page", "page_size", "patient_id"],
} if {
	input.action == "read"
	"reader" in input.subject.roles
}
`

const testUpstreamBody = `{"items":[{"visit_id":"V1","patient_id":"110105199001011234","patient_name":"张三","district":"朝阳区"},` +
	`{"visit_id":"V2","patient_id":"110108198502023456","patient_name":"李四","district":"海淀区"}],"page":1,"page_size":20,"total":999}`

// testGateway is a Server over a loopback upstream with an HS256 key.
type testGateway struct {
	srv    *Server
	secret []byte
	// upstream sees every request the gateway forwards.
	mu       sync.Mutex
	forwards []*http.Request
}

func newTestGateway(t *testing.T, log AuditLog, upstream http.HandlerFunc) *testGateway {
	t.Helper()
	g := &testGateway{secret: make([]byte, 32)}
	rand.Read(g.secret)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.forwards = append(g.forwards, r.Clone(context.Background()))
		g.mu.Unlock()
		upstream(w, r)
	}))
	t.Cleanup(up.Close)

	cfg, set := loadFixture(t, map[string][]byte{"hs.key": g.secret, "policies/sluice.rego": []byte(testPolicy),
		"sluice.yaml": []byte(hsHealth(up.URL) + `      - name: visits
        path: /visits
        records: items
        id_field: visit_id
        meta: [page, page_size]
        counts: [total]
        filters: {district: district}
        fields:
          visit_id: {type: string, level: L2}
          patient_id: {type: id_cn, level: L4}
          patient_name: {type: name_cn, level: L4}
          district: {type: string, level: L1}
`)})
	var err error
	g.srv, err = New(context.Background(), cfg, Deps{Audit: log, Policies: policy.NewEngine(set), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *testGateway) token(t *testing.T, roles ...string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "test-idp", "aud": "sluice", "sub": "tester", "roles": roles,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(g.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (g *testGateway) forwarded() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.forwards)
}

// watchedWriter records whether anything reached the caller.
type watchedWriter struct {
	*httptest.ResponseRecorder
	mu      sync.Mutex
	touched bool
}

func (w *watchedWriter) WriteHeader(code int) {
	w.mu.Lock()
	w.touched = true
	w.mu.Unlock()
	w.ResponseRecorder.WriteHeader(code)
}

func (w *watchedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.touched = true
	w.mu.Unlock()
	return w.ResponseRecorder.Write(b)
}

func (w *watchedWriter) wasTouched() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.touched
}

// orderAudit checks, each time a record is made durable (an Append, a
// Begin's Wait), that the caller has received nothing.
type orderAudit struct {
	mu     sync.Mutex
	w      *watchedWriter
	events []audit.Event
	early  []string // request ids made durable after the caller got bytes
	fail   error
	// beginFail, when set, is what Begin returns (a closed trail).
	beginFail error
	// failPhase, when set, is the phase of the records Begin refuses
	// (with beginFail): a trail that fails partway through a release.
	failPhase string
	// waits counts Begin's records waited for (a release must wait for
	// its decision record).
	waits int
}

func (a *orderAudit) Append(ctx context.Context, e *audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checkUntouched(e.RequestID)
	if a.fail != nil {
		return a.fail
	}
	a.events = append(a.events, *e)
	return nil
}

func (a *orderAudit) checkUntouched(id string) {
	if a.w != nil && a.w.wasTouched() {
		a.early = append(a.early, id)
	}
}

// Begin records e in order; its durability is decided at Wait, which
// fails with a.fail and checks the writer then.
func (a *orderAudit) Begin(e *audit.Event) (audit.Pending, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.beginFail != nil && (a.failPhase == "" || a.failPhase == e.Phase) {
		return nil, a.beginFail
	}
	p := &orderPending{a: a, id: e.RequestID}
	if a.fail == nil {
		a.events = append(a.events, *e)
	}
	return p, nil
}

func (a *orderAudit) Queue(e *audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.events = append(a.events, *e)
	return nil
}

type orderPending struct {
	a  *orderAudit
	id string
}

func (p *orderPending) Wait(context.Context) error {
	a := p.a
	a.mu.Lock()
	defer a.mu.Unlock()
	a.waits++
	a.checkUntouched(p.id)
	return a.fail
}

func (a *orderAudit) Err() error { return a.fail }

func (g *testGateway) do(t *testing.T, a *orderAudit, path, token string) *watchedWriter {
	t.Helper()
	w := &watchedWriter{ResponseRecorder: httptest.NewRecorder()}
	a.mu.Lock()
	a.w = w
	a.mu.Unlock()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	g.srv.ServeHTTP(w, r)
	return w
}

func serveItems(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(testUpstreamBody))
}

// serveDistrict honours the district filter as the demo departments do.
func serveDistrict(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Items []map[string]any `json:"items"`
	}
	json.Unmarshal([]byte(testUpstreamBody), &body)
	want := r.URL.Query()["district"]
	items := []map[string]any{}
	for _, it := range body.Items {
		if len(want) == 0 || slices.Contains(want, it["district"].(string)) {
			items = append(items, it)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"items": items, "page": 1, "page_size": 20, "total": 999})
}

// TestNoByteReachesTheCallerBeforeItsAuditRecord (invariant 3): for
// releases, denials, refusals and upstream failures alike, the audit
// record is durable while the response writer is still untouched. A
// request that reached the upstream has two records, the decision (no
// status yet) and the outcome; a release waits for the decision record.
func TestNoByteReachesTheCallerBeforeItsAuditRecord(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "9" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		serveItems(w, r)
	})
	reader, other := g.token(t, "reader"), g.token(t, "nobody")
	fieldsOf := func(e audit.Event) map[string]string {
		if e.Obligations == nil {
			return nil
		}
		return e.Obligations.Fields
	}
	for _, tc := range []struct {
		name, path, token string
		status            int
		fetched           bool // asked the upstream: a decision and an outcome record
	}{
		{"release", "/v1/health/visits", reader, http.StatusOK, true},
		{"deny", "/v1/health/visits", other, http.StatusForbidden, false},
		{"unauthenticated", "/v1/health/visits", "", http.StatusUnauthorized, false},
		{"refused parameter", "/v1/health/visits?name=x", reader, http.StatusForbidden, false},
		{"upstream failure", "/v1/health/visits?page=9", reader, http.StatusBadGateway, true},
		{"unknown route", "/v1/nowhere", reader, http.StatusNotFound, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, waits := len(a.events), a.waits
			w := g.do(t, a, tc.path, tc.token)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			evs := a.events[before:]
			phases := []string{""}
			if tc.fetched {
				phases = []string{audit.PhaseDecision, audit.PhaseOutcome}
			}
			if len(evs) != len(phases) {
				t.Fatalf("%d audit records for one request, want %d", len(evs), len(phases))
			}
			for i, ev := range evs {
				if got, want := ev.RequestID, w.Header().Get("X-Request-Id"); got != want || got == "" {
					t.Errorf("audit request id %q, response X-Request-Id %q", got, want)
				}
				if ev.Phase != phases[i] {
					t.Errorf("record %d has phase %q, want %q", i, ev.Phase, phases[i])
				}
				if ev.Subject != evs[0].Subject || ev.PolicyRevision != evs[0].PolicyRevision ||
					!reflect.DeepEqual(fieldsOf(ev), fieldsOf(evs[0])) {
					t.Errorf("record %d does not say who and what as the first does: %+v vs %+v", i, ev, evs[0])
				}
				// The decision record says the policy allowed; the
				// outcome, what the caller got.
				if want := outcomeDecision(ev.Status); ev.Phase == audit.PhaseDecision && ev.Decision != "allow" ||
					ev.Phase != audit.PhaseDecision && ev.Decision != want {
					t.Errorf("record %d (phase %q, status %d) says %q", i, ev.Phase, ev.Status, ev.Decision)
				}
			}
			if tc.fetched {
				d, o := evs[0], evs[1]
				if d.Status != 0 || d.Rows != 0 || d.Bytes != 0 || d.Decision != "allow" || d.Obligations == nil || d.PolicyRevision == "" {
					t.Errorf("decision record %+v: want allow, its obligations and revision, and no outcome yet", d)
				}
				if o.Status != tc.status {
					t.Errorf("outcome record status %d, want %d", o.Status, tc.status)
				}
			}
			if tc.status == http.StatusOK {
				if evs[1].Rows == 0 || evs[1].Bytes != int64(w.Body.Len()) {
					t.Errorf("outcome says %d rows, %d bytes; %d bytes were released", evs[1].Rows, evs[1].Bytes, w.Body.Len())
				}
				// A release naming whose records it held waits for its
				// outcome record as well, which names them.
				want := 1
				if evs[1].Released != nil {
					want = 2
				}
				if a.waits != waits+want {
					t.Errorf("the release waited for %d records, want %d (its decision record, and its outcome when it names people)", a.waits-waits, want)
				}
			}
			if len(a.early) > 0 {
				t.Errorf("the caller received bytes before the audit record of %v", a.early)
			}
		})
	}
}

// TestFailingAuditReleasesNothing (invariants 1 and 3): when the record
// cannot be made durable the caller gets 503 and none of the data.
func TestFailingAuditReleasesNothing(t *testing.T) {
	a := &orderAudit{fail: errors.New("disk full")}
	g := newTestGateway(t, a, serveItems)
	w := g.do(t, a, "/v1/health/visits", g.token(t, "reader"))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", w.Code, w.Body)
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != "unavailable" {
		t.Errorf("body %s: want a JSON error with code unavailable", w.Body)
	}
	for _, leak := range []string{"V1", "朝阳区", "110105", "disk full"} {
		if strings.Contains(w.Body.String(), leak) {
			t.Errorf("body %s leaks %q", w.Body, leak)
		}
	}
}

// TestAReleaseWhoseDecisionCannotBeQueuedAsksNoUpstream: when the trail
// refuses the decision record, the department is not asked, the caller
// gets 503, and the refusal is the request's one record, without a phase.
func TestAReleaseWhoseDecisionCannotBeQueuedAsksNoUpstream(t *testing.T) {
	a := &orderAudit{beginFail: audit.ErrClosed}
	g := newTestGateway(t, a, serveItems)
	w := g.do(t, a, "/v1/health/visits", g.token(t, "reader"))
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "朝阳区") {
		t.Fatalf("status %d, body %s: want 503 and no data", w.Code, w.Body)
	}
	if g.forwarded() != 0 {
		t.Error("the upstream was asked without a decision record queued")
	}
	if len(a.events) != 1 || a.events[0].Phase != "" || a.events[0].Status != http.StatusServiceUnavailable ||
		a.events[0].Decision != "error" || a.events[0].Stage != "gateway" {
		t.Errorf("records %+v: want one, without a phase, saying the allowed request failed with 503", a.events)
	}
}

// TestFiltersOnHiddenFieldsAreRefused: a caller may not filter on a field
// it receives masked or not at all (it could probe the value digit by
// digit), unless the decision names the field in masked_filters.
func TestFiltersOnHiddenFieldsAreRefused(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveItems)
	w := g.do(t, a, "/v1/health/visits?patient_id=110105199001011234", g.token(t, "reader"))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "patient_id") {
		t.Fatalf("filter on a pseudonymised field: %d %s, want 403 naming patient_id", w.Code, w.Body)
	}
	if g.forwarded() != 0 {
		t.Error("the refused filter reached the upstream")
	}

	ds := &dataset{cfg: &DatasetConfig{
		Filters: map[string]string{"district": "district"},
		Fields:  map[string]FieldConfig{"patient_id": {Type: "id_cn"}, "district": {Type: "string"}},
	}}
	for _, tc := range []struct {
		name     string
		decision string
		query    string
		refused  bool
	}{
		{"masked field", `{"allow":true,"fields":{"patient_id":"pseudonymize"},"params":["patient_id"]}`, "patient_id=1101", true},
		{"dropped field", `{"allow":true,"fields":{"district":"keep"},"params":["patient_id"]}`, "patient_id=1101", true},
		{"explicitly allowed", `{"allow":true,"fields":{"patient_id":"pseudonymize"},"params":["patient_id"],"masked_filters":["patient_id"]}`, "patient_id=1101", false},
		{"kept field", `{"allow":true,"fields":{"district":"keep"},"params":["district"]}`, "district=x", false},
		{"paging", `{"allow":true,"fields":{"district":"keep"},"params":["page"]}`, "page=2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decision(t, tc.decision)
			q, _ := url.ParseQuery(tc.query)
			_, _, e := upstreamQuery(q, ds, d)
			if refused := e != nil && e.Code == "forbidden"; refused != tc.refused {
				t.Errorf("refused %v (%v), want %v", refused, e, tc.refused)
			}
		})
	}
}

// TestUpstreamTotalsOnlyDescribeWhatTheCallerMaySee: totals pass through
// only when the row filter was pushed down and the caller did not replace
// it with a value of its own.
func TestUpstreamTotalsOnlyDescribeWhatTheCallerMaySee(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveDistrict)
	tok := g.token(t, "reader")
	for _, tc := range []struct {
		query     string
		wantTotal bool
	}{
		{"", true},
		{"?district=朝阳区", true},
		{"?district=海淀区", false},
		{"?district=朝阳区&district=海淀区", false},
		{"?district=西城区", false},
	} {
		w := g.do(t, a, "/v1/health/visits"+tc.query, tok)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.query, w.Code, w.Body)
		}
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if _, has := body["total"]; has != tc.wantTotal {
			t.Errorf("query %q: total present %v, want %v (%s)", tc.query, has, tc.wantTotal, w.Body)
		}
		if strings.Contains(w.Body.String(), "海淀区") || strings.Contains(w.Body.String(), "110105199001011234") {
			t.Errorf("query %q released a filtered row or a raw id: %s", tc.query, w.Body)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if got := g.forwards[0].URL.Query()["district"]; len(got) != 1 || got[0] != "朝阳区" {
		t.Errorf("row filter not pushed down: upstream district %v", got)
	}
}

func decision(t *testing.T, doc string) *policy.Decision {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	d, err := policy.ParseDecision(v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCheckJSONAcceptsJSONInUTF8Only(t *testing.T) {
	for ct, ok := range map[string]bool{
		"application/json":                  true,
		"application/json; charset=utf-8":   true,
		"application/json; charset=UTF-8":   true,
		"application/json;charset=utf-8":    true,
		"Application/JSON":                  true,
		"application/problem+json":          true,
		"application/json; charset=latin1":  false,
		"application/json; charset=utf-16":  false,
		"application/jsonx":                 false,
		"text/html":                         false,
		"text/json":                         false,
		"":                                  false,
		"application/json; charset":         false,
		"application/json; charset=\"utf-8": false,
	} {
		if err := checkJSON(ct); (err == nil) != ok {
			t.Errorf("checkJSON(%q) = %v, want accepted %v", ct, err, ok)
		}
	}
}

// outcomeDecision is what an audit record of a request answered with
// status must say the caller got.
func outcomeDecision(status int) string {
	switch {
	case status < 400:
		return "allow"
	case status < 500:
		return "deny"
	}
	return "error"
}
