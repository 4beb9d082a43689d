package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/policy"
)

// officerPolicy adds to testPolicy: officers may explain; a reader who
// states a justification gets patient names, flagged break_glass.
const officerPolicy = testPolicy + `
decision := {"allow": true, "reason": "officer: explain"} if {
	input.action == "explain"
	"officer" in input.subject.roles
}

decision := {
	"allow": true,
	"reason": sprintf("break-glass: %s", [input.justification]),
	"fields": {"visit_id": "keep", "patient_name": "keep"},
	"flags": ["break_glass"],
} if {
	input.action == "read"
	"responder" in input.subject.roles
	count(input.justification) >= 10
}
`

// policyEngine compiles one policy file into an engine.
func policyEngine(t *testing.T, rego string) *policy.Engine {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sluice.rego"), []byte(rego), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := policy.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return policy.NewEngine(set)
}

// withPolicies rebuilds g's server with other active and shadow policies.
func (g *testGateway) withPolicies(t *testing.T, a AuditLog, active *policy.Engine, shadow Policies) {
	t.Helper()
	srv, err := New(context.Background(), g.srv.cfg, Deps{Audit: a, Policies: active, Shadow: shadow, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	g.srv = srv
}

func (g *testGateway) metric(t *testing.T, name string) string {
	t.Helper()
	w := httptest.NewRecorder()
	g.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(w.Body.String(), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

func TestShadowDifferencesAreAuditedAndCountedButNeverEnforced(t *testing.T) {
	tests := []struct {
		name   string
		shadow string
		want   []string // differences; nil: the shadow agrees
	}{
		{"shadow denies", "package sluice\n\ndecision := {\"allow\": false, \"reason\": \"shadow says no\"}\n",
			[]string{"allow: true → false"}},
		{"shadow drops a field and caps rows", strings.NewReplacer(
			`"patient_id": "pseudonymize", `, ``,
			`"params":`, `"max_rows": 5, "params":`,
		).Replace(testPolicy), []string{"fields.patient_id: pseudonymize → drop", "max_rows: none → 5"}},
		{"shadow agrees", strings.Replace(testPolicy, `"reason": "reader"`, `"reason": "reader, v2"`, 1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &orderAudit{}
			g := newTestGateway(t, a, serveItems)
			reader := g.token(t, "reader")
			plain := g.do(t, a, "/v1/health/visits", reader)

			g.withPolicies(t, a, policyEngine(t, testPolicy), policyEngine(t, tt.shadow))
			shadowed := g.do(t, a, "/v1/health/visits", reader)
			if shadowed.Code != http.StatusOK || shadowed.Body.String() != plain.Body.String() {
				t.Fatalf("with a shadow: %d %s; want what the active policy releases: %s", shadowed.Code, shadowed.Body, plain.Body)
			}
			ev := a.events[len(a.events)-1]
			if tt.want == nil {
				if ev.Shadow != nil {
					t.Errorf("audit shadow %+v, want none when the shadow agrees", ev.Shadow)
				}
				if got := g.metric(t, "sluice_policy_shadow_differences_total"); got != "0" {
					t.Errorf("shadow differences counted %s, want 0", got)
				}
				return
			}
			if ev.Shadow == nil {
				t.Fatal("the audit record carries no shadow difference")
			}
			if diff := cmp.Diff(tt.want, ev.Shadow.Differences); diff != "" {
				t.Errorf("audit shadow differences (-want +got):\n%s", diff)
			}
			if ev.Shadow.Revision == "" || ev.Shadow.Revision == ev.PolicyRevision {
				t.Errorf("shadow revision %q, policy revision %q: want the shadow's own", ev.Shadow.Revision, ev.PolicyRevision)
			}
			if got := g.metric(t, "sluice_policy_shadow_differences_total"); got != "1" {
				t.Errorf("shadow differences counted %s, want 1", got)
			}
		})
	}
}

func TestShadowDifferencesOfADenyAreAuditedToo(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveItems)
	g.withPolicies(t, a, policyEngine(t, testPolicy), policyEngine(t, strings.Replace(testPolicy, `"reader" in`, `"nobody" in`, 1)))
	w := g.do(t, a, "/v1/health/visits", g.token(t, "nobody"))
	if w.Code != http.StatusForbidden {
		t.Fatalf("status %d, want the active policy's 403", w.Code)
	}
	if ev := a.events[len(a.events)-1]; ev.Shadow == nil || !slices.Equal(ev.Shadow.Differences, []string{"allow: false → true"}) {
		t.Errorf("audit shadow %+v, want allow: false → true", ev.Shadow)
	}
}

func TestFlagsAndJustificationReachTheAuditTrail(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveItems)
	g.withPolicies(t, a, policyEngine(t, officerPolicy), nil)
	r := httptest.NewRequest(http.MethodGet, "/v1/health/visits", nil)
	r.Header.Set("Authorization", "Bearer "+g.token(t, "responder"))
	r.Header.Set(JustificationHeader, "  cardiac arrest, bed 4  ")
	w := httptest.NewRecorder()
	g.srv.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	ev := a.events[len(a.events)-1]
	if !slices.Equal(ev.Flags, []string{"break_glass"}) || ev.Reason != "break-glass: cardiac arrest, bed 4" {
		t.Errorf("audit flags %v, reason %q; want break_glass and the trimmed justification", ev.Flags, ev.Reason)
	}
	// Without a justification the grant does not apply.
	if w := g.do(t, a, "/v1/health/visits", g.token(t, "responder")); w.Code != http.StatusForbidden {
		t.Errorf("without a justification: status %d, want 403", w.Code)
	}
}

func TestReadyzShowsARefusedPolicyChange(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveItems)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "sluice.rego"), []byte(testPolicy), 0o600)
	set, err := policy.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	e := policy.NewEngine(set)
	g.withPolicies(t, a, e, policyEngine(t, testPolicy))
	os.WriteFile(filepath.Join(dir, "sluice.rego"), []byte("package sluice\n\ndecision := {\n"), 0o600)
	if err := e.ReloadDir(context.Background(), dir, nil); err == nil {
		t.Fatal("a broken policy was put in force")
	}
	w := httptest.NewRecorder()
	g.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body struct {
		Status string `json:"status"`
		Checks map[string]struct {
			OK     bool   `json:"ok"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	json.Unmarshal(w.Body.Bytes(), &body)
	pc := body.Checks["policy"]
	if w.Code != http.StatusOK || !pc.OK {
		t.Fatalf("readyz %d %s: the policy in force still answers, want ready", w.Code, w.Body)
	}
	for _, want := range []string{"revision " + set.Revision(), "latest change refused", "rego_parse_error", "sluice.rego:"} {
		if !strings.Contains(pc.Detail, want) {
			t.Errorf("readyz policy detail %q lacks %q", pc.Detail, want)
		}
	}
	if strings.Contains(w.Body.String(), dir) {
		t.Errorf("readyz shows the host path %s: %s", dir, w.Body)
	}
	if sc := body.Checks["shadow_policy"]; !sc.OK {
		t.Errorf("readyz shadow check %+v, want ok", sc)
	}
	if got := g.metric(t, `sluice_policy_rejections_total{set="active"}`); got != "1" {
		t.Errorf(`sluice_policy_rejections_total{set="active"} = %q, want 1`, got)
	}
	if got := g.metric(t, `sluice_policy_activations_total{set="shadow"}`); got != "0" {
		t.Errorf(`sluice_policy_activations_total{set="shadow"} = %q, want 0`, got)
	}
}

func TestReadyzIsNotReadyWithoutAPolicy(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveItems)
	g.withPolicies(t, a, policy.NewEngine(nil), nil)
	w := httptest.NewRecorder()
	g.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "no policy loaded") {
		t.Errorf("readyz %d %s, want 503 naming the missing policy", w.Code, w.Body)
	}
	// Requests are denied, not served from no policy.
	if w := g.do(t, a, "/v1/health/visits", g.token(t, "reader")); w.Code != http.StatusForbidden {
		t.Errorf("read without a policy: %d, want 403", w.Code)
	}
}

func TestExplainMatchesWhatTheGatewayReleases(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveDistrict)
	reader, nobody := g.token(t, "reader"), g.token(t, "nobody")
	for _, tc := range []struct {
		name, token, target string
	}{
		{"release", reader, "/v1/health/visits?page_size=5"},
		{"release with a pushed-down filter", reader, "/v1/health/visits?district=朝阳区"},
		{"lookup by id", reader, "/v1/health/visits/V1"},
		{"refused parameter", reader, "/v1/health/visits?name=x"},
		{"filter on a field the caller gets masked", reader, "/v1/health/visits?patient_id=110105199001011234"},
		{"deny", nobody, "/v1/health/visits"},
		{"no such dataset", reader, "/v1/health/nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := g.srv.Explain(context.Background(), ExplainRequest{Token: tc.token, Target: tc.target})
			if err != nil {
				t.Fatalf("Explain: %v", err)
			}
			forwardsBefore := g.forwarded()
			u, _ := url.Parse(tc.target)
			w := g.do(t, a, u.String(), tc.token)
			ev := a.events[len(a.events)-1]
			if ex.Served != (w.Code == http.StatusOK) {
				t.Fatalf("explain says served=%v (status %d), the gateway answered %d %s", ex.Served, ex.Status, w.Code, w.Body)
			}
			if !ex.Served {
				if ex.Status != w.Code || !strings.Contains(w.Body.String(), `"code":"`+ex.Error.Code+`"`) {
					t.Errorf("explain says %d %+v, the gateway answered %d %s", ex.Status, ex.Error, w.Code, w.Body)
				}
				if g.forwarded() != forwardsBefore {
					t.Error("explained as refused, but the gateway contacted the upstream")
				}
				return
			}
			if ex.PolicyRevision != ev.PolicyRevision || ex.Reason != ev.Reason {
				t.Errorf("explain revision %s reason %q, audit %s %q", ex.PolicyRevision, ex.Reason, ev.PolicyRevision, ev.Reason)
			}
			o := ev.Obligations
			released := map[string]string{}
			var dropped []string
			for _, f := range ex.Fields {
				if f.Treatment.Op == "drop" {
					dropped = append(dropped, f.Name)
				} else {
					released[f.Name] = f.Treatment.Op
				}
			}
			if diff := cmp.Diff(o.Fields, released); diff != "" {
				t.Errorf("treatments (-audit +explain):\n%s", diff)
			}
			if diff := cmp.Diff(o.Dropped, dropped); diff != "" {
				t.Errorf("dropped (-audit +explain):\n%s", diff)
			}
			if diff := cmp.Diff(o.Rows, ex.Rows); diff != "" {
				t.Errorf("rows (-audit +explain):\n%s", diff)
			}
			if diff := cmp.Diff(o.Params, ex.Forwarded); diff != "" {
				t.Errorf("forwarded params (-audit +explain):\n%s", diff)
			}
			if o.MaxRows != ex.MaxRows {
				t.Errorf("max rows: audit %d, explain %d", o.MaxRows, ex.MaxRows)
			}
			// What was released carries exactly the fields explained as
			// released.
			var body struct {
				Items []map[string]any `json:"items"`
			}
			json.Unmarshal(w.Body.Bytes(), &body)
			for _, rec := range body.Items {
				for k := range rec {
					if _, ok := released[k]; !ok {
						t.Errorf("released field %q that explain says is dropped", k)
					}
				}
			}
		})
	}
}

func TestExplainRefusesATokenTheGatewayWouldRefuse(t *testing.T) {
	g := newTestGateway(t, &orderAudit{}, serveItems)
	_, err := g.srv.Explain(context.Background(), ExplainRequest{Token: "not-a-token", Target: "/v1/health/visits"})
	var e *Error
	if !errors.As(err, &e) || e.Code != "unauthenticated" {
		t.Errorf("Explain error %v, want unauthenticated", err)
	}
	_, err = g.srv.Explain(context.Background(), ExplainRequest{Token: g.token(t, "reader"), Target: "health/visits"})
	if !errors.As(err, &e) || e.Code != "bad_request" {
		t.Errorf("Explain of a relative target: %v, want bad_request", err)
	}
}

func TestExplainEndpointIsForOfficersAndAudited(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveItems)
	g.withPolicies(t, a, policyEngine(t, officerPolicy), policyEngine(t, testPolicy+"\n# shadow v2\n"))
	officer, reader := g.token(t, "officer"), g.token(t, "reader")
	ask := func(token, query string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/v1/explain?"+query, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		g.srv.ServeHTTP(w, r)
		return w
	}
	target := url.QueryEscape("/v1/health/visits/110105199001011234?page=2")

	w := ask(officer, "path="+target, ExplainTokenHeader, reader)
	if w.Code != http.StatusOK {
		t.Fatalf("officer explain: %d %s", w.Code, w.Body)
	}
	var ex Explanation
	if err := json.Unmarshal(w.Body.Bytes(), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Subject.Roles[0] != "reader" || ex.Decision != "allow" || ex.Action != "read" || ex.Shadow == nil {
		t.Errorf("explanation %+v, want the reader's allowed read with the shadow beside it", ex)
	}
	ev := a.events[len(a.events)-1]
	if ev.Action != "explain" || ev.Decision != "allow" || ev.Subject != "tester" || ev.PolicyRevision == "" {
		t.Errorf("audit %+v, want the officer's allowed explain with its revision", ev)
	}
	if strings.Contains(ev.Reason, "110105199001011234") || strings.Contains(ev.Reason, "page=2") {
		t.Errorf("audit reason %q carries the explained id or query in clear", ev.Reason)
	}
	for _, vs := range ev.Query {
		for _, v := range vs {
			if strings.Contains(v, "1101051990") {
				t.Errorf("audit query carries the explained path in clear: %v", ev.Query)
			}
		}
	}

	// A subject described by claims instead of a token.
	w = ask(officer, "path=/v1/health/visits&sub=rita&roles=responder&justification=cardiac+arrest+bed+4")
	json.Unmarshal(w.Body.Bytes(), &ex)
	if w.Code != http.StatusOK || ex.Subject.ID != "rita" || !slices.Equal(ex.Flags, []string{"break_glass"}) {
		t.Errorf("explain by claims: %d %s", w.Code, w.Body)
	}

	// Not an officer: refused, and audited.
	before := len(a.events)
	if w := ask(reader, "path="+target, ExplainTokenHeader, reader); w.Code != http.StatusForbidden {
		t.Errorf("reader explain: %d, want 403", w.Code)
	}
	if len(a.events) != before+1 || a.events[before].Decision != "deny" || a.events[before].Action != "explain" {
		t.Errorf("the refused explain was not audited as a deny")
	}
	// A bad token to explain is the officer's bad request.
	if w := ask(officer, "path="+target, ExplainTokenHeader, "garbage"); w.Code != http.StatusBadRequest {
		t.Errorf("explain of a garbage token: %d, want 400", w.Code)
	}
	if w := ask(officer, "path="+target); w.Code != http.StatusBadRequest {
		t.Errorf("explain without a subject: %d, want 400", w.Code)
	}
}
