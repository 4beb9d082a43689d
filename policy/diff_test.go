package policy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decision parses a decision document as the gateway would.
func decision(t *testing.T, doc string) *Decision {
	t.Helper()
	set := loadPolicy(t, "package sluice\n\ndecision := "+doc+"\n")
	d, err := set.Decide(context.Background(), analystRead())
	if err != nil {
		t.Fatalf("decision %s: %v", doc, err)
	}
	return d
}

func TestDiffNamesWhatTheShadowWouldReleaseDifferently(t *testing.T) {
	const analyst = `{"allow": true, "reason": "a",
		"fields": {"patient_id": "pseudonymize", "visit_date": {"op": "generalize", "to": "month"}, "cost": "keep", "name": "drop"},
		"rows": [{"field": "district", "in": ["朝阳区"]}],
		"params": ["district", "page"], "max_rows": 1000,
		"stats": {"metrics": ["count", "sum"], "max_epsilon": 1, "group_by": ["district"]}}`
	tests := []struct {
		name   string
		a, b   string
		want   []string
		absent bool
	}{
		{"same release, other reason and order", analyst, strings.Replace(strings.Replace(analyst, `"reason": "a"`, `"reason": "b"`, 1),
			`["district", "page"]`, `["page", "district"]`, 1), nil, true},
		{"allow to deny", analyst, `{"allow": false, "reason": "no"}`, []string{"allow: true → false"}, false},
		{"deny to allow", `{"allow": false}`, analyst, []string{"allow: false → true"}, false},
		{"two denies never differ", `{"allow": false, "reason": "x"}`, `{"allow": false, "reason": "y"}`, nil, true},
		{"field treatments", analyst, strings.NewReplacer(
			`"patient_id": "pseudonymize"`, `"patient_id": "drop"`,
			`"to": "month"`, `"to": "year"`,
			`"name": "drop"`, `"name": "mask_name_cn"`,
		).Replace(analyst), []string{
			"fields.name: drop → mask_name_cn",
			"fields.patient_id: pseudonymize → drop",
			`fields.visit_date: generalize{"to":"month"} → generalize{"to":"year"}`,
		}, false},
		{"a field named only by one", analyst, strings.Replace(analyst, `"cost": "keep", `, ``, 1), []string{"fields.cost: keep → drop"}, false},
		{"rows, params, max_rows", analyst, strings.NewReplacer(
			`"in": ["朝阳区"]`, `"in": ["海淀区"]`,
			`["district", "page"]`, `["page"]`,
			`"max_rows": 1000`, `"max_rows": 10`,
		).Replace(analyst), []string{
			`max_rows: 1000 → 10`,
			`params: ["district","page"] → ["page"]`,
			`rows: [district in [朝阳区]] → [district in [海淀区]]`,
		}, false},
		{"stats limits", analyst, strings.NewReplacer(
			`"max_epsilon": 1`, `"max_epsilon": 0.5`,
			`["count", "sum"]`, `["count"]`,
		).Replace(analyst), []string{
			`stats.max_epsilon: 1 → 0.5`,
			`stats.metrics: ["count","sum"] → ["count"]`,
		}, false},
		{"stats taken away", analyst, strings.Replace(analyst, `,
		"stats": {"metrics": ["count", "sum"], "max_epsilon": 1, "group_by": ["district"]}`, ``, 1),
			[]string{`stats: {"group_by":["district"],"max_epsilon":1,"metrics":["count","sum"]} → none`}, false},
		{"audit flags", analyst, strings.Replace(analyst, `"max_rows": 1000`, `"max_rows": 1000, "flags": ["break_glass"]`, 1),
			[]string{`flags: none → ["break_glass"]`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(decision(t, tt.a), decision(t, tt.b))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
			if tt.absent && len(Diff(decision(t, tt.b), decision(t, tt.a))) != 0 {
				t.Error("Diff is not symmetric in finding no difference")
			}
		})
	}
}

func TestDiffOfNilIsADeny(t *testing.T) {
	if got := Diff(nil, &Decision{}); got != nil {
		t.Errorf("Diff(nil, deny) = %v, want none", got)
	}
	if got := Diff(nil, &Decision{Allow: true}); len(got) != 1 {
		t.Errorf("Diff(nil, allow) = %v, want the allow difference", got)
	}
}

func TestTestWithCoverageReportsCoveredLines(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"sluice.rego": `package sluice

default decision := {"allow": false}

decision := {"allow": true} if input.subject.id == "alice"

decision := {"allow": true} if input.subject.id == "bob"
`,
		"sluice_test.rego": "package sluice_test\n\nimport data.sluice\n\ntest_alice if sluice.decision.allow with input.subject.id as \"alice\"\n",
	})
	results, cov, err := TestWithCoverage(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || !results[0].Pass {
		t.Fatalf("results %+v, want test_alice passing", results)
	}
	f := cov.Files[filepath.Join(dir, "sluice.rego")]
	if f == nil {
		t.Fatalf("no coverage for sluice.rego in %v", cov.Files)
	}
	if !f.IsCovered(5) || f.IsCovered(7) {
		t.Errorf("covered alice's rule %v and bob's %v, want only alice's", f.IsCovered(5), f.IsCovered(7))
	}
	if cov.Coverage <= 0 || cov.Coverage >= 100 {
		t.Errorf("coverage %.1f%%, want partial", cov.Coverage)
	}
}
