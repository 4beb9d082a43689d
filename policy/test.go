package policy

import (
	"context"
	"fmt"
	"io/fs"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/util/channel"
)

// TestResult is the outcome of one Rego test rule.
type TestResult struct {
	Package string `json:"package"`
	Name    string `json:"name"`
	Pass    bool   `json:"pass"`
	Skip    bool   `json:"skip,omitempty"`
	Error   string `json:"error,omitempty"`
	// Location is file:line of the test rule.
	Location string `json:"location"`
}

// Test runs the Rego tests (test_* rules) under dir with OPA's tester, the
// engine behind `opa test`, and returns one result per test in source
// order.
func Test(ctx context.Context, dir string) ([]TestResult, error) {
	// Hidden files and directories are skipped below the root only: the
	// root itself may well be "." or "..".
	modules, store, err := tester.LoadWithRegoVersion([]string{dir}, func(_ string, info fs.FileInfo, depth int) bool {
		return depth > 0 && hidden(info.Name())
	}, ast.RegoV1)
	if err != nil {
		return nil, fmt.Errorf("load policies %s: %w", dir, err)
	}
	ch, err := tester.NewRunner().
		SetStore(store).
		SetDefaultRegoVersion(ast.RegoV1).
		RaiseBuiltinErrors(true).
		Run(ctx, modules)
	if err != nil {
		return nil, fmt.Errorf("run policy tests %s: %w", dir, err)
	}
	results := channel.Collect(ch)
	// The runner reports in no fixed order; report in source order.
	sort.SliceStable(results, func(i, j int) bool {
		a, b := results[i].Location, results[j].Location
		if a == nil || b == nil {
			return a != nil
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Row < b.Row
	})
	var out []TestResult
	for _, r := range results {
		tr := TestResult{Package: r.Package, Name: r.Name, Pass: r.Pass(), Skip: r.Skip}
		if r.Location != nil {
			tr.Location = fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
		}
		if r.Error != nil {
			tr.Error = r.Error.Error()
		}
		out = append(out, tr)
	}
	return out, nil
}
