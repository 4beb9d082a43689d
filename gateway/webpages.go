package gateway

import (
	"errors"
	"io/fs"
	"net/http"

	auditweb "github.com/sluicegw/sluice/audit/web"
	hubweb "github.com/sluicegw/sluice/hub/web"
	"github.com/sluicegw/sluice/internal/webkit"
)

// The gateway's two pages, the auditor's (/audit/) and the sharing hub's
// (/hub/), are files embedded in the binary that hold no data: each
// fetches everything from its API with its user's token.

func auditPage() http.Handler { return webPage("/audit/", auditweb.FS) }

func hubPage() http.Handler { return webPage("/hub/", overlay{hubweb.FS, webkit.FS}) }

// overlay is the files of its first file system, then those only the
// next has: a page's own files, with the pages' shared kit.js beside them.
type overlay []fs.FS

func (o overlay) Open(name string) (fs.File, error) {
	for _, fsys := range o {
		f, err := fsys.Open(name)
		if !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

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
