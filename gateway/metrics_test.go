package gateway

import (
	"net/http"
	"net/http/httptest"
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
