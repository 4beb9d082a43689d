package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/internal/version"
)

// TestHealthzNamesTheVersionBesideItsStatus: /healthz still says "ok" and
// now also which build answers, as `sluice version` prints it.
func TestHealthzNamesTheVersionBesideItsStatus(t *testing.T) {
	g := newTestGateway(t, &orderAudit{}, serveItems)
	w := httptest.NewRecorder()
	g.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /healthz: %d %s, want 200", w.Code, w.Body)
	}
	var got map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("healthz body %s: %v", w.Body, err)
	}
	want := map[string]string{"status": "ok", "version": version.Version().String()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("healthz body (-want +got):\n%s", diff)
	}
	if w.Header().Get("X-Request-Id") == "" {
		t.Error("healthz without X-Request-Id")
	}
}
