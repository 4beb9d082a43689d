package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sluicegw/sluice/policy"
)

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &exitError{code: 2, msg: "policy: want a subcommand: test or eval"}
	}
	switch args[0] {
	case "test":
		return runPolicyTest(ctx, args[1:], stdout, stderr)
	case "eval":
		return runPolicyEval(ctx, args[1:], stdout, stderr)
	}
	return &exitError{code: 2, msg: fmt.Sprintf("policy: unknown subcommand %q", args[0])}
}

// runPolicyTest runs the Rego tests of a directory, as `opa test` does.
func runPolicyTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy test", stderr)
	verbose := fs.Bool("v", false, "list every test")
	if err := parse(fs, args); err != nil {
		return err
	}
	dir := "policies"
	if fs.NArg() > 0 {
		dir = fs.Arg(0)
	}
	results, err := policy.Test(ctx, dir)
	if err != nil {
		return err
	}
	pass, fail, skip := 0, 0, 0
	for _, r := range results {
		switch {
		case r.Skip:
			skip++
		case r.Pass:
			pass++
		default:
			fail++
		}
		if *verbose || (!r.Pass && !r.Skip) {
			status := "PASS"
			if r.Skip {
				status = "SKIP"
			} else if !r.Pass {
				status = "FAIL"
			}
			fmt.Fprintf(stdout, "%s %s.%s (%s)", status, r.Package, r.Name, r.Location)
			if r.Error != "" {
				fmt.Fprintf(stdout, ": %s", r.Error)
			}
			fmt.Fprintln(stdout)
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed, %d skipped\n", pass, fail, skip)
	if fail > 0 || len(results) == 0 {
		return &exitError{code: 1, msg: ""}
	}
	return nil
}

// runPolicyEval prints the decision the policies give an input document.
func runPolicyEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy eval", stderr)
	dir := fs.String("dir", "policies", "policy directory")
	inputPath := fs.String("input", "", "input document (JSON, as in DESIGN.md)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *inputPath == "" {
		return &exitError{code: 2, msg: "policy eval: --input is required"}
	}
	b, err := os.ReadFile(*inputPath)
	if err != nil {
		return err
	}
	var in policy.Input
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("input %s: %w", *inputPath, err)
	}
	if in.Time.IsZero() {
		in.Time = time.Now()
	}
	set, err := policy.Load(ctx, *dir)
	if err != nil {
		return err
	}
	d, derr := set.Decide(ctx, &in)
	out := map[string]any{"revision": set.Revision(), "decision": d}
	if derr != nil {
		out["error"] = derr.Error()
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}
