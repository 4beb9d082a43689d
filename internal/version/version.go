// Package version says which build of Sluice is running, from the build
// information the Go toolchain records in the binary. Nothing is stamped by
// hand (no -ldflags -X): go build in a git checkout records the commit, its
// time and whether the tree was modified; go run and go test record none of
// these, and they read "unknown".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// unknown stands for what the build did not record.
const unknown = "unknown"

// Info is one build of Sluice.
type Info struct {
	// Module is the main module's version: a tag such as v1.2.0, a
	// pseudo-version, or "(devel)".
	Module string `json:"module"`
	// Revision is the VCS commit the binary was built from.
	Revision string `json:"revision"`
	// Time is the commit's time, RFC 3339.
	Time string `json:"time"`
	// Modified is "true" when the working tree had uncommitted changes,
	// "false" when it had none; a string so that a build without VCS
	// details can say "unknown" rather than a false "false".
	Modified string `json:"modified"`
	// Go is the version of the toolchain that built the binary.
	Go string `json:"go"`
}

// String is the build on one line, as `sluice version` and /healthz give it:
// "v1.2.0 (revision 929e571…, time 2026-05-01T10:00:00Z, modified false, go1.26.8)".
func (i Info) String() string {
	return fmt.Sprintf("%s (revision %s, time %s, modified %s, %s)", i.Module, i.Revision, i.Time, i.Modified, i.Go)
}

// Version is the running binary's build. The build information never
// changes while the process runs, so it is read once: /healthz asks for it
// on every probe.
func Version() Info { return current() }

var current = sync.OnceValue(func() Info { return fromBuildInfo(debug.ReadBuildInfo()) })

// fromBuildInfo is the Info of bi; ok is false when the binary carries no
// build information at all.
func fromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	i := Info{Module: unknown, Revision: unknown, Time: unknown, Modified: unknown, Go: runtime.Version()}
	if !ok || bi == nil {
		return i
	}
	if bi.Main.Version != "" {
		i.Module = bi.Main.Version
	}
	if bi.GoVersion != "" {
		i.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		if s.Value == "" {
			continue
		}
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value
		}
	}
	return i
}
