// Package web is the sharing hub's web page: static files embedded in the
// binary, so the page works offline and needs no CDN. The gateway serves
// them under /hub/; the page calls the hub's API (/v1/catalog,
// /v1/requests, /v1/grants) with the bearer token its user signs in with,
// kept in session storage and never in a URL. The page decides which
// views to show from the token's roles, for display only: the gateway
// decides every action.
package web

import "embed"

// FS holds index.html, app.js (the page's code), words.js (its labels in
// English and Chinese) and app.css.
//
//go:embed index.html app.js words.js app.css
var FS embed.FS
