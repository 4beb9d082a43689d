package gateway

import (
	"net/http"

	"github.com/sluicegw/sluice/gateway/meweb"
	"github.com/sluicegw/sluice/internal/webkit"
)

// mePage is the citizen's page (/me/): who used their data and their
// objections, fetched from /v1/me/usage and /v1/objections with the
// token its user pastes. Like the hub's, it holds no data.
func mePage() http.Handler { return webPage("/me/", overlay{meweb.FS, webkit.FS}) }
