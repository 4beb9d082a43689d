package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes: 2 for a command line the program cannot act on, 1 for a
// failure while acting on it; the checks keep 1 for their verdict and exit
// 2 when they could not reach one.
func TestExitCodes(t *testing.T) {
	empty := t.TempDir()
	missing := filepath.Join(empty, "missing")
	misspelt := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(misspelt, []byte("listne: 127.0.0.1:8080\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := brokenPolicies(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"help", []string{"--help"}, 0},
		{"a subcommand's help", []string{"policy", "risk", "--help"}, 0},

		{"no command", nil, 2},
		{"unknown command", []string{"audti"}, 2},
		{"group without subcommand", []string{"policy"}, 2},
		{"unknown subcommand", []string{"policy", "rsk"}, 2},
		{"unknown flag", []string{"audit", "search", "--datset", "health"}, 2},
		{"bad flag value", []string{"audit", "search", "--limit", "many"}, 2},
		{"flag without its value", []string{"serve", "--config"}, 2},
		{"stray argument", []string{"serve", "sluice.yaml"}, 2},
		{"missing required flags", []string{"token", "--sub", "alice"}, 2},
		{"missing --input", []string{"policy", "eval"}, 2},
		{"a value out of range", []string{"demo", "--replicas", "0"}, 2},
		{"conflicting flags", []string{"token", "revoke", "--jti", "x", "--sub", "alice", "--redis", "127.0.0.1:1"}, 2},
		{"a usage error of a check", []string{"audit", "verify", "--redis", "127.0.0.1:1"}, 2},

		{"unreadable config", []string{"serve", "--config", missing}, 1},
		{"config with an unknown key", []string{"serve", "--config", misspelt}, 1},
		{"no signing key", []string{"token", "--dir", empty, "--sub", "alice", "--roles", "analyst"}, 1},
		{"redis unreachable", []string{"token", "revoke", "--jti", "x", "--redis", "127.0.0.1:1"}, 1},
		{"unreadable input", []string{"policy", "eval", "--input", missing}, 1},
		{"no demo tokens", []string{"policy", "explain", "--dir", empty, "--role", "analyst", "/v1/catalog"}, 1},
		{"risk without its config", []string{"policy", "risk", "--config", missing, "--role", "analyst", "--dataset", "health/visits"}, 1},

		{"a trail that cannot be read is no verdict", []string{"audit", "verify", "--dir", missing}, 2},
		{"policies that do not compile are no lint verdict", []string{"policy", "lint", broken}, 2},
		{"policies that do not compile are no test verdict", []string{"policy", "test", broken}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, err := runCmd(t, tc.args...)
			if got := exitCode(err); got != tc.code {
				t.Errorf("sluice %s: exit %d (%v), want %d\nstderr: %s", strings.Join(tc.args, " "), got, err, tc.code, errOut)
			}
		})
	}
}

// brokenPolicies is a policy directory whose Rego does not compile.
func brokenPolicies(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package sluice\n\ndecision := {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestAFailingCommandPrintsNothingOnStdout: output is a result; a command
// that fails has none, not a table header before its error.
func TestAFailingCommandPrintsNothingOnStdout(t *testing.T) {
	f := newAuditFixture(t)
	corrupt := newAuditFixture(t)
	editFile(t, corrupt.segment(1), func(lines []string) []string {
		return append(lines[:3:3], "{not json")
	})
	misspelt := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(misspelt, []byte("listen: 127.0.0.1:8080\nsources:\n  - name: health\n    upstrem: http://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"audit search with a query the trail refuses": {"audit", "search", "--dir", f.dir, "--decision", "maybe"},
		"audit search with an empty window":           {"audit", "search", "--dir", f.dir, "--since", "2026-11-27", "--until", "2026-11-26"},
		"audit search over a broken record":           {"audit", "search", "--dir", corrupt.dir},
		"audit search of no trail":                    {"audit", "search", "--dir", filepath.Join(f.dir, "missing")},
		"policy risk without its config":              {"policy", "risk", "--config", filepath.Join(f.dir, "missing.yaml"), "--role", "analyst", "--dataset", "health/visits"},
		"policy risk with a misspelt config":          {"policy", "risk", "--config", misspelt, "--role", "analyst", "--dataset", "health/visits"},
		"policy lint of policies that do not compile": {"policy", "lint", brokenPolicies(t)},
		"policy lint with a misspelt config":          {"policy", "lint", "--config", misspelt, "../../policies"},
	} {
		t.Run(name, func(t *testing.T) {
			out, errOut, err := runCmd(t, args...)
			if err == nil {
				t.Fatalf("succeeded:\n%s", out)
			}
			if out != "" {
				t.Errorf("failed (%v) after printing on stdout:\n%s", err, out)
			}
			if errOut == "" && err.Error() == "" {
				t.Error("failed without saying why")
			}
		})
	}
}
