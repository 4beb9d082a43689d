// Package meweb is the citizen's page: static files embedded in the
// binary, served by the gateway under /me/. It shows a person who used
// their data (GET /v1/me/usage) and their objections (GET and POST
// /v1/objections), asking for nothing but the token its user pastes,
// kept in session storage and sent only in the Authorization header. The
// page holds no data and decides nothing: the gateway answers only for
// the person the token names.
package meweb

import "embed"

// FS holds index.html, app.js (the page's code), words.js (its labels in
// English and Chinese) and app.css.
//
//go:embed index.html app.js words.js app.css
var FS embed.FS
