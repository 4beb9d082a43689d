package policies_test

import (
	"context"
	"testing"

	"github.com/sluicegw/sluice/policy"
)

// TestShippedRegoTestsPass runs every test_* rule in this directory through
// OPA's tester, as `opa test .` would.
func TestShippedRegoTestsPass(t *testing.T) {
	results, err := policy.Test(context.Background(), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 10 {
		t.Fatalf("found %d Rego tests, want the shipped suite (at least 10)", len(results))
	}
	for _, r := range results {
		if !r.Pass {
			t.Errorf("%s.%s (%s) failed: %s", r.Package, r.Name, r.Location, r.Error)
		}
	}
}

// TestShippedPoliciesCompile loads the enforced set (tests excluded).
func TestShippedPoliciesCompile(t *testing.T) {
	set, err := policy.Load(context.Background(), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Revision()) != 16 {
		t.Errorf("revision %q, want 16 hex characters", set.Revision())
	}
}
