package gateway

import (
	"errors"
	"net/http"
	"testing"
)

// TestInformationalResponsesNeverReachTheCaller: a department's 103 Early
// Hints, with headers of its own, is never relayed — not before the
// decision record is durable, not when the trail is down — and the final
// answer keeps the gateway's X-Request-Id.
func TestInformationalResponsesNeverReachTheCaller(t *testing.T) {
	hints := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "planted=110101199003077777")
		w.Header().Set("Link", "</planted>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Set-Cookie")
		w.Header().Del("Link")
		serveItems(w, r)
	}
	for _, tc := range []struct {
		name   string
		audit  *orderAudit
		status int
	}{
		{"the trail takes the records", &orderAudit{}, http.StatusOK},
		{"the trail is down", &orderAudit{fail: errors.New("disk full")}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGateway(t, tc.audit, hints)
			w := g.do(t, tc.audit, "/v1/health/visits", g.token(t, "reader"))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if len(tc.audit.early) > 0 {
				t.Errorf("the caller received bytes before the records of %v", tc.audit.early)
			}
			if w.Header().Get("X-Request-Id") == "" || w.Header().Get("Set-Cookie") != "" || w.Header().Get("Link") != "" {
				t.Errorf("headers %v", w.Header())
			}
		})
	}
}
