package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFlagsMayComeAfterArgumentsUntilDoubleDash(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		wantPositional []string
		wantDir        string
		wantVerbose    bool
		wantLimit      int
	}{
		{[]string{"DIR", "-v"}, []string{"DIR"}, "", true, 0},
		{[]string{"GET", "/v1/x", "--dir", "d"}, []string{"GET", "/v1/x"}, "d", false, 0},
		{[]string{"--dir=d", "A", "--limit", "-1", "B"}, []string{"A", "B"}, "d", false, -1},
		{[]string{"A", "--", "-v", "--dir", "d"}, []string{"A", "-v", "--dir", "d"}, "", false, 0},
		{[]string{"--dir", "--", "A"}, []string{"A"}, "--", false, 0},
		{[]string{"-", "--v"}, []string{"-"}, "", true, 0},
	} {
		c := newCommand("test", "A command to test parsing.")
		dir := c.flags.String("dir", "", "")
		verbose := c.flags.Bool("v", false, "")
		limit := c.flags.Int("limit", 0, "")
		got, err := c.parse(tc.args, io.Discard)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !slices.Equal(got, tc.wantPositional) || *dir != tc.wantDir || *verbose != tc.wantVerbose || *limit != tc.wantLimit {
			t.Errorf("%q: arguments %q, --dir %q, -v %v, --limit %d; want %q, %q, %v, %d",
				tc.args, got, *dir, *verbose, *limit, tc.wantPositional, tc.wantDir, tc.wantVerbose, tc.wantLimit)
		}
	}
}

func TestFlagErrorsNameFlagsWithTwoDashes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--limit", "many"}, `test: invalid value "many" for flag --limit`},
		{[]string{"--dir"}, "test: flag needs an argument: --dir"},
		{[]string{"--dri", "d"}, "test: unknown flag --dri; did you mean --dir?"},
	} {
		c := newCommand("test", "A command to test parsing.")
		c.flags.String("dir", "", "")
		c.flags.Int("limit", 0, "")
		_, err := c.parse(tc.args, io.Discard)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v (exit %d), want exit 2 saying %q", tc.args, err, exitCode(err), tc.want)
		}
	}
}

// TestPolicyTestTakesFlagsAfterItsDirectory: -v after DIR lists the
// passing tests; the flag package alone would take it for a second
// directory and ignore it.
func TestPolicyTestTakesFlagsAfterItsDirectory(t *testing.T) {
	dir := t.TempDir()
	rego := "package sluice_test\n\ntest_the_truth if {\n\ttrue\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "truth_test.rego"), []byte(rego), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCmd(t, "policy", "test", dir, "-v")
	if err != nil {
		t.Fatalf("%v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "PASS data.sluice_test.test_the_truth") || !strings.Contains(out, "1 passed, 0 failed") {
		t.Errorf("policy test DIR -v:\n%s\nwant the passing test listed", out)
	}
}
