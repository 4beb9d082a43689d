package version

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestVersionReadsModuleCommitTimeModifiedAndGoFromTheBuild(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want Info
	}{
		{
			name: "go build in a git checkout",
			bi: &debug.BuildInfo{
				GoVersion: "go1.26.8",
				Main:      debug.Module{Path: "github.com/sluicegw/sluice", Version: "v1.2.0"},
				Settings: []debug.BuildSetting{
					{Key: "CGO_ENABLED", Value: "0"},
					{Key: "vcs", Value: "git"},
					{Key: "vcs.revision", Value: "929e5710a1b2c3d4e5f60718293a4b5c6d7e8f90"},
					{Key: "vcs.time", Value: "2026-05-01T10:00:00Z"},
					{Key: "vcs.modified", Value: "true"},
				},
			},
			ok:   true,
			want: Info{Module: "v1.2.0", Revision: "929e5710a1b2c3d4e5f60718293a4b5c6d7e8f90", Time: "2026-05-01T10:00:00Z", Modified: "true", Go: "go1.26.8"},
		},
		{
			name: "go run or go test: no VCS details",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/sluicegw/sluice", Version: "(devel)"}},
			ok:   true,
			want: Info{Module: "(devel)", Revision: "unknown", Time: "unknown", Modified: "unknown", Go: "go1.26.8"},
		},
		{
			name: "no build information",
			want: Info{Module: "unknown", Revision: "unknown", Time: "unknown", Modified: "unknown", Go: runtime.Version()},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, fromBuildInfo(tc.bi, tc.ok)); diff != "" {
				t.Errorf("fromBuildInfo (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVersionStringNamesEveryPart(t *testing.T) {
	i := Info{Module: "v1.2.0", Revision: "929e571", Time: "2026-05-01T10:00:00Z", Modified: "false", Go: "go1.26.8"}
	got, want := i.String(), "v1.2.0 (revision 929e571, time 2026-05-01T10:00:00Z, modified false, go1.26.8)"
	if got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestVersionOfTheTestBinaryHasItsGoVersion(t *testing.T) {
	if got, want := Version().Go, runtime.Version(); got != want {
		t.Errorf("Version().Go = %q, want %q", got, want)
	}
}
