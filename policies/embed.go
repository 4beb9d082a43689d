// Package policies holds the shipped Rego policies, their data and their
// tests. The gateway reads them from disk; the binary also embeds them so
// that `sluice demo` runs from anywhere.
package policies

import "embed"

// FS holds the shipped policy files.
//
//go:embed *.rego *.json lib/*.rego
var FS embed.FS
