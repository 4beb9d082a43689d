package gateway

import (
	"io/fs"
	"net/http"

	auditweb "github.com/sluicegw/sluice/audit/web"
	hubweb "github.com/sluicegw/sluice/hub/web"
)

// The gateway's two pages, the auditor's (/audit/) and the sharing hub's
// (/hub/), are files embedded in the binary that hold no data: each
// fetches everything from its API with its user's token.

func auditPage() http.Handler { return webPage("/audit/", auditweb.FS) }

func hubPage() http.Handler { return webPage("/hub/", hubweb.FS) }

// webPage serves the files of fsys under prefix with the headers of a page
// that handles a bearer token: it runs only its own script, is never
// framed and sends no referrer.
func webPage(prefix string, fsys fs.FS) http.Handler {
	sub, err := fs.Sub(fsys, ".")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix(prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Request-Id", newRequestID())
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
