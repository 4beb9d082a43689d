package gateway

import "net/http"

// routes lists every route the gateway serves.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.serveMetrics())
	mux.HandleFunc("GET /v1/catalog", s.catalog)
	mux.HandleFunc("GET /v1/{source}/{dataset}", s.records)
	mux.HandleFunc("GET /v1/{source}/{dataset}/{id}", s.records)
	mux.HandleFunc("/", s.unknown)
	return recoverer(s, mux)
}
