package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkStatsInvalidEpsilonRefusal measures how long the refusal of an
// ε the noise or the ledger cannot honour takes against datasets of very
// different sizes. It is refused before the policy's limits, the ledger
// or the department are asked, so its time does not depend on the data:
// compare the ns/op of the sub-benchmarks (a ratio near 1), and the
// upstream_reads/op metric, which must be 0. The valid-epsilon
// sub-benchmarks show what reading the data costs, for scale.
//
//	go test ./gateway -run '^$' -bench StatsInvalidEpsilonRefusal -benchtime 2000x
func BenchmarkStatsInvalidEpsilonRefusal(b *testing.B) {
	for _, tc := range []struct {
		records int
		epsilon string
	}{{10, "1e-300"}, {1000, "1e-300"}, {10, "valid"}, {1000, "valid"}} {
		b.Run(fmt.Sprintf("records=%d/epsilon=%s", tc.records, tc.epsilon), func(b *testing.B) {
			g := newStatsGateway(b, true)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { servePages(w, r, tc.records) })
			g.hook.Store(&h)
			tok := g.token(b, "ann", "statistician")
			before := g.upstream.Load()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				// A new query each time, so that no answer comes from the cache.
				eps, want := tc.epsilon, http.StatusBadRequest
				if eps == "valid" {
					eps, want = strconv.FormatFloat(1e-4+float64(i)*1e-9, 'g', -1, 64), http.StatusOK
				}
				w := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodGet, "/v1/health/visits/stats?metric=count&epsilon="+eps, nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				g.srv.ServeHTTP(w, r)
				if w.Code != want {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(g.upstream.Load()-before)/float64(b.N), "upstream_reads/op")
		})
	}
}

// servePages answers a page of n synthetic visits, each of its own patient.
func servePages(w http.ResponseWriter, r *http.Request, n int) {
	q := r.URL.Query()
	p, _ := strconv.Atoi(q.Get("page"))
	size, _ := strconv.Atoi(q.Get("page_size"))
	items := []map[string]any{}
	for i := (p - 1) * size; i < min(p*size, n); i++ {
		items = append(items, map[string]any{"patient_id": fmt.Sprint("P", i), "district": "朝阳区", "cost": 40})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"items": items})
}
