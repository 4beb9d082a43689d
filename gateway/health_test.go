package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluicegw/sluice/state"
)

// downLedger is a state backend that cannot be reached.
type downLedger struct{ *state.Memory }

func (downLedger) Ping(context.Context) error { return errors.New("connection refused") }

// TestReadyzReportsEachDependency: /readyz is 200 only while the policy is
// loaded, the trail is writable and the state backend answers, and says
// which check failed without leaking the underlying error.
func TestReadyzReportsEachDependency(t *testing.T) {
	readyz := func(g *testGateway) (int, map[string]any) {
		w := httptest.NewRecorder()
		g.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("readyz body %s: %v", w.Body, err)
		}
		if w.Header().Get("X-Request-Id") == "" {
			t.Error("readyz without X-Request-Id")
		}
		return w.Code, body["checks"].(map[string]any)
	}

	g := newTestGateway(t, &orderAudit{}, serveItems)
	g.srv.ledger = state.NewMemory()
	if code, checks := readyz(g); code != http.StatusOK || checks["state"].(map[string]any)["ok"] != true {
		t.Errorf("healthy: %d %v", code, checks)
	}

	g.srv.ledger = downLedger{state.NewMemory()}
	code, checks := readyz(g)
	if code != http.StatusServiceUnavailable || checks["state"].(map[string]any)["ok"] != false {
		t.Errorf("state down: %d %v, want 503 naming state", code, checks)
	}

	g = newTestGateway(t, &orderAudit{fail: errors.New("disk full")}, serveItems)
	code, checks = readyz(g)
	if code != http.StatusServiceUnavailable || checks["audit"].(map[string]any)["ok"] != false {
		t.Errorf("audit down: %d %v, want 503 naming audit", code, checks)
	}
	if d, _ := checks["audit"].(map[string]any)["detail"].(string); d == "" || d == "disk full" {
		t.Errorf("audit detail %q: want a description, not the raw error", d)
	}
}
