package gateway

import (
	"net/http"

	"github.com/sluicegw/sluice/gateway/meweb"
)

// mePage is the citizen's page (/me/): who used their data and their
// objections, fetched from /v1/me/usage and /v1/objections with the
// token its user pastes. Like the hub's, it holds no data.
func mePage() http.Handler { return webPage("/me/", meweb.FS) }
