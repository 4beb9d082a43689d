package policy

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/util/channel"
)

// testTimeout bounds one Rego test, as `opa test` does by default.
const testTimeout = 5 * time.Second

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

// Coverage is OPA's coverage report, as `opa test --coverage` prints it:
// per file, the covered and not covered lines.
type Coverage = cover.Report

// Test runs the Rego tests (test_* rules) under dir with OPA's tester, the
// engine behind `opa test`, and returns one result per test in source
// order.
func Test(ctx context.Context, dir string) ([]TestResult, error) {
	results, _, err := testDir(ctx, dir, false)
	return results, err
}

// TestWithCoverage runs the Rego tests under dir as Test does and reports
// which lines of the policies (tests included, as `opa test --coverage`
// counts them) the tests evaluated.
func TestWithCoverage(ctx context.Context, dir string) ([]TestResult, *Coverage, error) {
	return testDir(ctx, dir, true)
}

func testDir(ctx context.Context, dir string, coverage bool) ([]TestResult, *Coverage, error) {
	// Hidden files and directories are skipped below the root only: the
	// root itself may well be "." or "..".
	modules, store, err := tester.LoadWithRegoVersion([]string{dir}, func(_ string, info fs.FileInfo, depth int) bool {
		return depth > 0 && hidden(info.Name())
	}, ast.RegoV1)
	if err != nil {
		return nil, nil, fmt.Errorf("load policies %s: %w", dir, err)
	}
	results, report, err := runTests(ctx, modules, store, coverage)
	if err != nil {
		return nil, nil, fmt.Errorf("run policy tests %s: %w", dir, err)
	}
	return results, report, nil
}

// testSnapshot runs the Rego tests among a snapshot's files: exactly the
// bytes that would be enforced, tests included.
func testSnapshot(ctx context.Context, snap *snapshot) ([]TestResult, error) {
	loaded, err := loader.NewFileLoader().
		WithFS(snap.files).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		All([]string{"."})
	if err != nil {
		return nil, err
	}
	modules := make(map[string]*ast.Module, len(loaded.Modules))
	for _, m := range loaded.Modules {
		modules[m.Name] = m.Parsed
	}
	results, _, err := runTests(ctx, modules, inmem.NewFromObject(loaded.Documents), false)
	return results, err
}

func runTests(ctx context.Context, modules map[string]*ast.Module, store storage.Store, coverage bool) ([]TestResult, *Coverage, error) {
	runner := tester.NewRunner().
		SetStore(store).
		SetDefaultRegoVersion(ast.RegoV1).
		SetTimeout(testTimeout).
		RaiseBuiltinErrors(true)
	var cov *cover.Cover
	if coverage {
		cov = cover.New()
		runner = runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.SetModules(modules).RunTests(ctx, nil)
	if err != nil {
		return nil, nil, err
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
	var report *Coverage
	if cov != nil {
		rep := cov.Report(modules)
		report = &rep
	}
	return out, report, nil
}

// testFailure summarises the failing tests of a run, nil when all passed
// or were skipped.
func testFailure(results []TestResult) error {
	var failed []string
	for _, r := range results {
		if r.Pass || r.Skip {
			continue
		}
		msg := fmt.Sprintf("%s.%s (%s)", r.Package, r.Name, r.Location)
		if r.Error != "" {
			msg += ": " + r.Error
		}
		failed = append(failed, msg)
	}
	if len(failed) == 0 {
		return nil
	}
	const shown = 3
	n, more := len(failed), ""
	if n > shown {
		more = fmt.Sprintf("; and %d more", n-shown)
		failed = failed[:shown]
	}
	return fmt.Errorf("%d of %d Rego tests failed: %s%s", n, len(results), strings.Join(failed, "; "), more)
}
