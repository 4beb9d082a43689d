package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/audit"
)

// Every audit record's decision is what the caller got. A refusal after
// the policy allowed — the probing an auditor must see, such as a filter
// on a field the caller receives only pseudonymised — is a deny, with
// Sluice's reason and the stage that refused, not the policy's reason for
// allowing.
func TestRefusalsAfterAnAllowAreRecordedAsDenies(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/visits/") {
			http.Error(w, `{"error":"no such visit"}`, http.StatusNotFound)
			return
		}
		serveItems(w, r)
	})
	reader := g.token(t, "reader")
	for _, tc := range []struct {
		name, method, path string
		status             int
		stage, reason      string
	}{
		{"a filter on a pseudonymised field", "GET", "/v1/health/visits?patient_id=110105199001011234", 403, "parameters", "filters on patient_id"},
		{"a parameter the policy does not list", "GET", "/v1/health/visits?cost=1", 403, "parameters", `query parameter "cost" is not allowed`},
		{"a malformed page", "GET", "/v1/health/visits?page=abc", 400, "request", "page"},
		{"a record that does not exist", "GET", "/v1/health/visits/V404", 404, "lookup", "no such record"},
		{"a dataset that does not exist", "GET", "/v1/health/nosuch", 404, "route", "no such dataset"},
		{"a method the route does not take", "POST", "/v1/health/visits", 405, "method", "method"},
		{"no token", "GET", "/v1/health/visits", 401, "authenticate", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.mu.Lock()
			a.events = nil
			a.mu.Unlock()
			w := &watchedWriter{ResponseRecorder: httptest.NewRecorder()}
			a.mu.Lock()
			a.w = w
			a.mu.Unlock()
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.stage != "authenticate" {
				r.Header.Set("Authorization", "Bearer "+reader)
			}
			g.srv.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			a.mu.Lock()
			evs := append([]audit.Event(nil), a.events...)
			a.mu.Unlock()
			if len(evs) == 0 {
				t.Fatal("no audit record")
			}
			ev := evs[len(evs)-1]
			if ev.Decision != "deny" || ev.Stage != tc.stage || ev.Status != tc.status || !strings.Contains(ev.Reason, tc.reason) {
				t.Errorf("record: decision %q, stage %q, status %d, reason %q; want deny at %s, a reason naming %q",
					ev.Decision, ev.Stage, ev.Status, ev.Reason, tc.stage, tc.reason)
			}
			if ev.Reason == "reader" {
				t.Error("the record gives the policy's reason for allowing as the reason for a refusal")
			}
			if strings.Contains(ev.Reason, "110105199001011234") {
				t.Error("the reason quotes the filter value")
			}
		})
	}
}

// A statistics record says what was released in clear — metric, field,
// group-by, ε and the account charged — and hashes only filter values,
// which may be a person's; a field name the dataset does not declare (a
// value typed in the wrong place) stays hashed too.
func TestStatsRecordsSayWhatWasAskedInClear(t *testing.T) {
	g := newStatsGateway(t, true)
	tok := g.token(t, "ann", "statistician")
	w := g.get(t, "/v1/health/visits/stats?metric=sum&field=cost&group_by=district&epsilon=0.25&district=朝阳区", tok)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	ev := g.event(t, w)
	for k, want := range map[string]string{"metric": "sum", "field": "cost", "group_by": "district", "epsilon": "0.25"} {
		if got := ev.Query[k]; len(got) != 1 || got[0] != want {
			t.Errorf("query %s recorded as %v, want %q in clear", k, got, want)
		}
	}
	if got := ev.Query["district"]; len(got) != 1 || !strings.HasPrefix(got[0], "hmac-sha256:") {
		t.Errorf("filter value recorded as %v, want it keyed-hashed", got)
	}
	if ev.Obligations == nil || ev.Obligations.Allocation != "statistician" {
		t.Errorf("obligations %+v, want the account charged", ev.Obligations)
	}
	w = g.get(t, "/v1/health/visits/stats?metric=count&group_by=110105199001011234&epsilon=0.25", tok)
	if got := g.event(t, w).Query["group_by"]; len(got) != 1 || !strings.HasPrefix(got[0], "hmac-sha256:") {
		t.Errorf("an undeclared group_by recorded as %v, want it keyed-hashed", got)
	}
}
