package gateway

import (
	"net/http"
	"strings"
)

// routes is the gateway's handler. The words of the route patterns are
// the path segments the trail may keep in clear.
func (s *Server) routes() http.Handler {
	mux := s.mux()
	for w := range mux.words {
		s.known[w] = true
	}
	return s.hooked(recoverer(s, s.cors(mux)))
}

// mux lists every route the gateway serves.
func (s *Server) mux() *routeMux {
	mux := newRouteMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.serveMetrics())
	mux.HandleFunc("GET /openapi.json", s.openapi)
	mux.HandleFunc("GET /v1/catalog", s.catalog)
	mux.HandleFunc("GET /v1/explain", s.explainHTTP)
	mux.HandleFunc("GET /v1/explain/risk", s.riskHTTP)
	mux.HandleFunc("GET /v1/{source}/{dataset}", s.records)
	mux.HandleFunc("GET /v1/{source}/{dataset}/{id}", s.records)
	mux.HandleFunc("GET /v1/{source}/{dataset}/stats", s.stats)
	mux.HandleFunc("GET /audit/v1/events", s.auditorEndpoint(s.auditEvents))
	mux.HandleFunc("GET /audit/v1/verify", s.auditorEndpoint(s.auditVerify))
	mux.HandleFunc("GET /audit/v1/summary", s.auditorEndpoint(s.auditSummary))
	mux.HandleFunc("GET /audit/v1/usage", s.auditorEndpoint(s.auditUsage))
	mux.HandleFunc("GET /v1/me/usage", s.myUsage)
	mux.HandleFunc("POST /admin/v1/revocations", s.revoke)
	s.hubRoutes(mux)
	s.openRoutes(mux)
	mux.Handle("GET /audit/", auditPage())
	mux.Handle("GET /audit", http.RedirectHandler("/audit/", http.StatusMovedPermanently))
	mux.Handle("GET /hub/", hubPage())
	mux.Handle("GET /hub", http.RedirectHandler("/hub/", http.StatusMovedPermanently))
	mux.Handle("GET /me/", mePage())
	mux.Handle("GET /me", http.RedirectHandler("/me/", http.StatusMovedPermanently))
	mux.HandleFunc("/", s.unknown)
	return mux
}

// routeMux is a ServeMux that remembers the patterns it serves.
type routeMux struct {
	*http.ServeMux
	patterns []string
	words    map[string]bool // the literal segments of the patterns
}

func newRouteMux() *routeMux {
	return &routeMux{ServeMux: http.NewServeMux(), words: map[string]bool{}}
}

// Handle registers h for pattern and learns the pattern's words.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.patterns = append(m.patterns, pattern)
	path := pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		path = p
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg != "" && !strings.HasPrefix(seg, "{") {
			m.words[seg] = true
		}
	}
}

// HandleFunc registers f for pattern and learns the pattern's words.
func (m *routeMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}
