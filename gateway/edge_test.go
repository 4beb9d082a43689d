package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/policy"
)

// TestMalformedQueryStringsAreRefusedAndAudited: a query Go's url.Values
// would read in part (a ';' separator, a bad %-escape) is refused with
// 400 before anything else, never forwarded with its unparseable part
// silently gone, and audited with the query keyed-hashed.
func TestMalformedQueryStringsAreRefusedAndAudited(t *testing.T) {
	for _, query := range []string{"page=1;patient_id=110101199003077777", "district=%zz", "page=1&x=%", "a=%e4%b8"} {
		t.Run(query, func(t *testing.T) {
			a := &orderAudit{}
			g := newTestGateway(t, a, serveItems)
			for _, path := range []string{"/v1/health/visits?", "/v1/health/visits/stats?metric=count&epsilon=0.1&", "/v1/catalog?"} {
				w := g.do(t, a, path+query, g.token(t, "reader"))
				var body errorBody
				if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != "bad_request" {
					t.Fatalf("%s: got %d %s, want 400 bad_request", path, w.Code, w.Body)
				}
				if strings.Contains(w.Body.String(), "110101") || strings.Contains(w.Body.String(), "%zz") {
					t.Errorf("the error echoes the query: %s", w.Body)
				}
			}
			if g.forwarded() != 0 {
				t.Errorf("a malformed query reached the department %d times", g.forwarded())
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if len(a.events) != 3 {
				t.Fatalf("%d audit records for 3 refusals", len(a.events))
			}
			for _, ev := range a.events {
				q := ev.Query["malformed_query"]
				if ev.Status != 400 || len(q) != 1 || strings.Contains(q[0], "110101") || len(ev.Query) != 1 {
					t.Errorf("audit record %+v", ev)
				}
			}
		})
	}
}

// panicking is a policy source whose evaluation panics.
type panicking struct{}

func (panicking) Current() *policy.Set { panic("policy engine bug") }

// TestAPanicIsAnsweredAsJSONAndAudited: a panic inside a handler is a
// 500 JSON error carrying the request id, and an audit record of who
// asked for what, like every other failure.
func TestAPanicIsAnsweredAsJSONAndAudited(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveItems)
	g.srv.policies = panicking{}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/v1/health/visits", nil)
	r.Header.Set("Authorization", "Bearer "+g.token(t, "reader"))
	g.srv.ServeHTTP(w, r)
	var body errorBody
	if w.Code != http.StatusInternalServerError || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != "internal" {
		t.Fatalf("got %d %s, want a 500 JSON error", w.Code, w.Body)
	}
	id := w.Header().Get("X-Request-Id")
	if id == "" || body.Error.RequestID != id || strings.Contains(w.Body.String(), "policy engine bug") {
		t.Errorf("request id %q, body %s", id, w.Body)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.events) != 1 {
		t.Fatalf("%d audit records, want 1", len(a.events))
	}
	ev := a.events[0]
	if ev.RequestID != id || ev.Decision != "error" || ev.Status != 500 || ev.Code != "internal" || ev.Subject != "tester" ||
		ev.Dataset != "visits" {
		t.Errorf("audit record %+v", ev)
	}
}
