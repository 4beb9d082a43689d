package gateway

import "net/http"

// routes lists every route the gateway serves.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.serveMetrics())
	mux.HandleFunc("GET /v1/catalog", s.catalog)
	mux.HandleFunc("GET /v1/explain", s.explainHTTP)
	mux.HandleFunc("GET /v1/explain/risk", s.riskHTTP)
	mux.HandleFunc("GET /v1/{source}/{dataset}", s.records)
	mux.HandleFunc("GET /v1/{source}/{dataset}/{id}", s.records)
	mux.HandleFunc("GET /v1/{source}/{dataset}/stats", s.stats)
	mux.HandleFunc("GET /audit/v1/events", s.auditorEndpoint(s.auditEvents))
	mux.HandleFunc("GET /audit/v1/verify", s.auditorEndpoint(s.auditVerify))
	mux.HandleFunc("GET /audit/v1/summary", s.auditorEndpoint(s.auditSummary))
	mux.HandleFunc("POST /admin/v1/revocations", s.revoke)
	s.hubRoutes(mux)
	mux.Handle("GET /audit/", auditPage())
	mux.Handle("GET /audit", http.RedirectHandler("/audit/", http.StatusMovedPermanently))
	mux.Handle("GET /hub/", hubPage())
	mux.Handle("GET /hub", http.RedirectHandler("/hub/", http.StatusMovedPermanently))
	mux.HandleFunc("/", s.unknown)
	return recoverer(s, s.cors(mux))
}
