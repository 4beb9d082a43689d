package gateway

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestMetricsCountRequestsAndStages: /metrics serves the request counter by
// route, decision and status, a latency histogram per pipeline stage, and
// never a consumer name or a query value.
func TestMetricsCountRequestsAndStages(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveDistrict)
	reader := g.token(t, "reader")
	g.do(t, a, "/v1/health/visits", reader)
	g.do(t, a, "/v1/health/visits?district=朝阳区", reader)
	g.do(t, a, "/v1/health/visits", g.token(t, "nobody"))
	g.do(t, a, "/v1/health/visits", "")

	w := httptest.NewRecorder()
	g.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK || w.Header().Get("X-Request-Id") == "" {
		t.Fatalf("/metrics: %d, X-Request-Id %q", w.Code, w.Header().Get("X-Request-Id"))
	}
	body := w.Body.String()
	for _, want := range []string{
		`sluice_http_requests_total{decision="allow",route="read",status="200"} 2`,
		`sluice_http_requests_total{decision="deny",route="read",status="403"} 1`,
		`sluice_http_requests_total{decision="deny",route="read",status="401"} 1`,
		`sluice_stage_duration_seconds_count{stage="auth"} 4`,
		`sluice_stage_duration_seconds_count{stage="policy"} 3`,
		`sluice_stage_duration_seconds_count{stage="upstream"} 2`,
		`sluice_stage_duration_seconds_count{stage="transform"} 2`,
		`sluice_stage_duration_seconds_count{stage="audit"} 4`,
		`sluice_records_released_total{dataset="visits",source="health"} 2`,
		`sluice_masking_fallbacks_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, leak := range []string{"tester", "朝阳区", "%E6%9C%9D"} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics mentions %q", leak)
		}
	}
}

// TestMetricsCountDecisionCacheHits: a repeated request is answered from
// the policy set's decision cache, releases the same records, and the
// gauges say so.
func TestMetricsCountDecisionCacheHits(t *testing.T) {
	a := &orderAudit{}
	g := newTestGateway(t, a, serveItems)
	reader := g.token(t, "reader")
	var bodies []string
	for range 3 {
		w := g.do(t, a, "/v1/health/visits", reader)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		bodies = append(bodies, w.Body.String())
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("a repeated request released something else:\n%s\n%s\n%s", bodies[0], bodies[1], bodies[2])
	}
	w := httptest.NewRecorder()
	g.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	value := func(name string) float64 {
		for _, line := range strings.Split(w.Body.String(), "\n") {
			if v, ok := strings.CutPrefix(line, name+`{set="active"} `); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
		}
		t.Fatalf("/metrics lacks %s", name)
		return 0
	}
	hits, misses := value("sluice_policy_decision_cache_hits"), value("sluice_policy_decision_cache_misses")
	// The policy may read input.time: a second boundary between requests
	// costs one more miss, never a wrong answer.
	if hits+misses != 3 || hits < 1 || misses < 1 {
		t.Errorf("decision cache hits %v, misses %v; want 3 decisions, at least one from the cache", hits, misses)
	}
}
