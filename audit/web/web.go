// Package web is the auditor's web page: static files embedded in the
// binary, so the page works offline and needs no CDN. The gateway serves
// them under /audit/; the page calls the auditor API (/audit/v1/...) with
// the bearer token the auditor signs in with, kept in session storage and
// never in a URL.
package web

import "embed"

// FS holds index.html, app.js and app.css.
//
//go:embed index.html app.js app.css
var FS embed.FS
