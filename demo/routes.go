package demo

import "net/http"

// routes is every route of one department's API.
func routes(ds *dataset, credential string) http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /{dataset}", ds.serveList)
	api.HandleFunc("GET /{dataset}/{id}", ds.serveRecord)
	// The method-less patterns catch only what the GET patterns above do
	// not, so they answer 405 in JSON rather than the mux's plain text.
	api.HandleFunc("/{dataset}", methodNotAllowed)
	api.HandleFunc("/{dataset}/{id}", methodNotAllowed)
	api.HandleFunc("/", notFound)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", serveHealth)
	mux.Handle("/", requireBearer(credential, api))
	return mux
}
