package main

import (
	"testing"

	"github.com/sluicegw/sluice/internal/version"
)

// TestVersionCommandAndFlagPrintTheBuild: sluice version and sluice
// --version print the same line, the build /healthz names.
func TestVersionCommandAndFlagPrintTheBuild(t *testing.T) {
	want := "sluice " + version.Version().String() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		got, errOut, err := runCmd(t, args...)
		if err != nil || errOut != "" {
			t.Errorf("%q: %v, stderr %q", args, err, errOut)
		}
		if got != want {
			t.Errorf("%q printed %q, want %q", args, got, want)
		}
	}
}

func TestVersionRefusesArguments(t *testing.T) {
	_, _, err := runCmd(t, "version", "now")
	if exitCode(err) != 2 {
		t.Errorf("sluice version now: exit %d (%v), want 2", exitCode(err), err)
	}
}
