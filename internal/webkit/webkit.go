// Package webkit holds what Sluice's pages share: kit.js, the building
// blocks of the sharing hub's page (/hub/) and the citizen's (/me/),
// which the gateway serves beside each page's own files.
package webkit

import "embed"

// FS holds kit.js.
//
//go:embed kit.js
var FS embed.FS
