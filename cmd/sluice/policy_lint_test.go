package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/policy"
)

// lintTime is a Thursday, 10:00 in the registrar's office hours (UTC+8),
// so that no decision depends on when the tests run.
const lintTime = "2026-11-26T02:00:00Z"

func TestPolicyLintPassesTheShippedPolicy(t *testing.T) {
	// The demo's configuration names the shipped policies and the three
	// datasets; without it, the datasets are data.registry.stats's.
	cfgPath := filepath.Join(t.TempDir(), "sluice.yaml")
	policies, err := filepath.Abs("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	err = demoConfig.Execute(&b, map[string]string{
		"Addr": "127.0.0.1:0", "Policies": policies, "Districts": `["朝阳区"]`,
		"Police": "http://127.0.0.1:1", "Health": "http://127.0.0.1:2", "Civil": "http://127.0.0.1:3",
		"AuditDir": "audit",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"registry datasets":   {"../../policies"},
		"configured datasets": {"--config", cfgPath},
	} {
		t.Run(name, func(t *testing.T) {
			out, errOut, err := runCmd(t, append([]string{"policy", "lint", "--time", lintTime}, args...)...)
			if err != nil {
				t.Fatalf("exit %d (%v), output:\n%s%s", exitCode(err), err, out, errOut)
			}
			// The demo's six roles and the registrar and responder of
			// data.registry.precedence; no purpose, and the five registered.
			if want := "0 findings over 13 subjects × 3 datasets × 6 purposes\n"; out != want {
				t.Errorf("output:\n%s\nwant:\n%s", out, want)
			}
			if errOut != "" {
				t.Errorf("stderr: %s", errOut)
			}
		})
	}
}

// inspectorPolicy grants the inspector, a role added to the shipped
// policies, both the records and the statistics of health visits: the
// read grant is on line 5, the statistics grant on line 15.
const inspectorPolicy = `package sluice

# Inspectors read health visits, and (the mistake) count them too.

grant["inspector"] := {
	"allow": true,
	"reason": "inspector: visits",
	"fields": {"visit_id": "keep", "district": "keep"},
	"params": record_params,
} if {
	input.action == "read"
	dataset == "health/visits"
}

grant["inspector"] := {
	"allow": true,
	"reason": "inspector: statistics",
	"stats": stats_limits("public", ["count"], 0.5, ["district"]),
} if {
	input.action == "stats"
	data.registry.stats[dataset]
}
`

// inspectorPolicies are the shipped policies with inspectorPolicy added.
func inspectorPolicies(t *testing.T) string {
	t.Helper()
	dir := copyPolicies(t)
	if err := os.WriteFile(filepath.Join(dir, "inspector.rego"), []byte(inspectorPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	rewrite(t, filepath.Join(dir, "data.json"), `"precedence": ["analyst",`, `"precedence": ["inspector", "analyst",`)
	return dir
}

// grantsRow is the line of the shipped sluice.rego's rule that decides
// reads and statistics by the grants.
func grantsRow(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("../../policies/sluice.rego")
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "decision := grants[0] if {") {
			return i + 1
		}
	}
	t.Fatal("sluice.rego has no decision := grants[0] rule")
	return 0
}

func TestPolicyLintReportsARoleThatReadsAndCounts(t *testing.T) {
	dir := inspectorPolicies(t)
	out, errOut, err := runCmd(t, "policy", "lint", "--time", lintTime, dir)
	if exitCode(err) != 1 {
		t.Fatalf("exit %d (%v), want 1; output:\n%s%s", exitCode(err), err, out, errOut)
	}
	// The inspector reads and counts health visits whatever purpose it
	// states; it reads nothing else.
	var found []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if strings.HasPrefix(line, "FOUND ") {
			found = append(found, line)
		}
	}
	if len(found) != 6 {
		t.Errorf("%d findings, want 6 (one per purpose):\n%s", len(found), out)
	}
	in, decision := filepath.Join(dir, "inspector.rego"), filepath.Join(dir, "sluice.rego")+fmt.Sprintf(":%d (decision)", grantsRow(t))
	want := "FOUND inspector (inspector, no purpose) may read and count health/visits: " +
		"read by " + in + `:5 (grant["inspector"]) via ` + decision + "; " +
		"stats by " + in + `:15 (grant["inspector"]) via ` + decision
	if len(found) == 0 || found[0] != want {
		t.Errorf("first finding:\n%s\nwant:\n%s", strings.Join(found, "\n"), want)
	}
	for _, line := range found {
		if !strings.Contains(line, " health/visits: ") {
			t.Errorf("a finding on another dataset: %s", line)
		}
	}
	if !strings.HasSuffix(out, "6 findings over 14 subjects × 3 datasets × 6 purposes\n") {
		t.Errorf("summary:\n%s", out)
	}
}

func TestPolicyLintPrintsFindingsAsJSON(t *testing.T) {
	dir := inspectorPolicies(t)
	subjects := filepath.Join(t.TempDir(), "subjects.json")
	os.WriteFile(subjects, []byte(`[{"id": "ines", "roles": ["inspector"], "dept": "health", "purpose": "statistics"}]`), 0o600)
	out, errOut, err := runCmd(t, "policy", "lint", "--json", "--subjects", subjects, "--time", lintTime, dir)
	if exitCode(err) != 1 {
		t.Fatalf("exit %d (%v), want 1; output:\n%s%s", exitCode(err), err, out, errOut)
	}
	var got []lintFinding
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not a JSON array of findings: %v\n%s", err, out)
	}
	in, sluice := filepath.Join(dir, "inspector.rego"), filepath.Join(dir, "sluice.rego")
	decision := policy.RuleLocation{Rule: "decision", File: sluice, Row: grantsRow(t)}
	var want []lintFinding
	for _, purpose := range []string{"statistics", "", "public-health", "research", "residency-registration", "social-assistance"} {
		want = append(want, lintFinding{
			Subject: "ines", Roles: []string{"inspector"}, Dept: "health", Purpose: purpose, Dataset: "health/visits",
			ReadRules:  []policy.RuleLocation{{Rule: `grant["inspector"]`, File: in, Row: 5}, decision},
			StatsRules: []policy.RuleLocation{{Rule: `grant["inspector"]`, File: in, Row: 15}, decision},
		})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}

	// No findings: an empty array, and success.
	out, _, err = runCmd(t, "policy", "lint", "--json", "--time", lintTime, "../../policies")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("shipped policies: exit %d, output %q; want 0 and []", exitCode(err), out)
	}
}

func TestPolicyLintTriesEveryRoleACallerHolds(t *testing.T) {
	// One token with two roles: the caseworker's records and the public's
	// statistics of the same cases; the responder's break-glass read and
	// the public's statistics of the same visits. The shipped policy
	// refuses statistics to any caller holding a role that reads the
	// dataset; without that rule both are findings.
	subjects := filepath.Join(t.TempDir(), "subjects.json")
	os.WriteFile(subjects, []byte(`[
		{"id": "carol", "roles": ["caseworker", "public"], "dept": "civil", "district": "朝阳区"},
		{"id": "erin", "roles": ["responder", "public"], "dept": "health"}
	]`), 0o600)
	out, errOut, err := runCmd(t, "policy", "lint", "--json", "--subjects", subjects, "--time", lintTime, "../../policies")
	if exitCode(err) != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("shipped policy: exit %d (%v), output:\n%s%s", exitCode(err), err, out, errOut)
	}
	dir := copyPolicies(t)
	path := filepath.Join(dir, "sluice.rego")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), "\tdata.registry.stats[dataset]\n\tnot reads_records\n}", "\tdata.registry.stats[dataset]\n}", 1)), 0o600)
	out, errOut, err = runCmd(t, "policy", "lint", "--json", "--subjects", subjects, "--time", lintTime, dir)
	if exitCode(err) != 1 {
		t.Fatalf("exit %d (%v), want 1; output:\n%s%s", exitCode(err), err, out, errOut)
	}
	var findings []lintFinding
	if err := json.Unmarshal([]byte(out), &findings); err != nil {
		t.Fatalf("output: %v\n%s", err, out)
	}
	type seen struct {
		Subject, Dataset, ReadRule, StatsRule string
		ReadJustified                         bool
	}
	got := map[seen]bool{}
	for _, f := range findings {
		got[seen{f.Subject, f.Dataset, f.ReadRules[0].Rule, f.StatsRules[0].Rule, f.ReadJustified}] = true
	}
	want := map[seen]bool{
		{"carol", "civil/assistance", `grant["caseworker"]`, `grant["public"]`, false}: true,
		{"erin", "health/visits", `grant["responder"]`, `grant["public"]`, true}:       true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestPolicyLintRefusesBadUsage(t *testing.T) {
	noRegistry := t.TempDir()
	os.WriteFile(filepath.Join(noRegistry, "p.rego"), []byte("package sluice\n\ndecision := {\"allow\": false}\n"), 0o600)
	badSubjects := filepath.Join(t.TempDir(), "subjects.json")
	os.WriteFile(badSubjects, []byte(`[{"id": "x", "role": ["analyst"]}]`), 0o600)
	for name, args := range map[string][]string{
		"unknown flag":          {"--frobnicate", "../../policies"},
		"no such directory":     {filepath.Join(t.TempDir(), "missing")},
		"two directories":       {"../../policies", "../../policies"},
		"time not RFC 3339":     {"--time", "tomorrow", "../../policies"},
		"no such subjects file": {"--subjects", filepath.Join(t.TempDir(), "missing.json"), "../../policies"},
		"a misspelt subject":    {"--subjects", badSubjects, "../../policies"},
		"no such config":        {"--config", filepath.Join(t.TempDir(), "missing.yaml"), "../../policies"},
		"no datasets to try":    {noRegistry},
	} {
		t.Run(name, func(t *testing.T) {
			out, _, err := runCmd(t, append([]string{"policy", "lint"}, args...)...)
			if exitCode(err) != 2 {
				t.Errorf("exit %d (%v), want 2; output:\n%s", exitCode(err), err, out)

			}
		})
	}
}
