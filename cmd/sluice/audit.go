package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sluicegw/sluice/audit"
)

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &exitError{code: 2, msg: "audit: want a subcommand: verify"}
	}
	switch args[0] {
	case "verify":
		return runAuditVerify(args[1:], stdout, stderr)
	}
	return &exitError{code: 2, msg: fmt.Sprintf("audit: unknown subcommand %q", args[0])}
}

// trailDir accepts either the audit directory itself or a directory that
// holds it as audit/ (the demo directory).
func trailDir(dir string) string {
	sub := filepath.Join(dir, "audit")
	if st, err := os.Stat(sub); err == nil && st.IsDir() {
		if m, _ := filepath.Glob(filepath.Join(dir, "trail-*.jsonl")); len(m) == 0 {
			return sub
		}
	}
	return dir
}

func runAuditVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit verify", stderr)
	dir := fs.String("dir", ".sluice-demo", "audit directory, or the demo directory holding audit/")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	rep, err := audit.Verify(trailDir(*dir))
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else if rep.OK {
		fmt.Fprintf(stdout, "ok: %d records in %d segment(s), head %s\n", rep.Records, rep.Segments, rep.Head)
	} else {
		fmt.Fprintf(stdout, "FAIL: %s line %d (seq %d): %s\n", rep.Bad.Segment, rep.Bad.Line, rep.Bad.Seq, rep.Bad.Reason)
	}
	if !rep.OK {
		return &exitError{code: 1, msg: ""}
	}
	return nil
}
