package main

import (
	"encoding/json"

	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicegw/sluice/audit"
)

// searchIDs runs audit search with --json and returns the request ids it
// printed, checking that each line is a record exactly as stored.
func searchIDs(t *testing.T, f *auditFixture, args ...string) []string {
	t.Helper()
	out, errOut, err := runCmd(t, append([]string{"audit", "search", "--dir", f.dir, "--json"}, args...)...)
	if err != nil {
		t.Fatalf("search %v: %v %s", args, err, errOut)
	}
	stored := map[string]bool{}
	for _, n := range []int{1, 2, 3} {
		b, _ := os.ReadFile(f.segment(n))
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			stored[l] = true
		}
	}
	ids := []string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		if !stored[line] {
			t.Errorf("output line is not a stored record: %s", line)
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RequestID)
	}
	return ids
}

// fixtureIDs returns the request ids of the fixture events (by index) that
// keep says to, oldest first.
func fixtureIDs(f *auditFixture, keep func(i int, e *audit.Event) bool) []string {
	ids := []string{}
	for i, e := range f.events {
		if keep(i, e) {
			ids = append(ids, e.RequestID)
		}
	}
	return ids
}

func TestAuditSearchFilters(t *testing.T) {
	f := newAuditFixture(t)
	at := func(h int) time.Time { return fixtureBase.Add(time.Duration(h) * time.Hour) }
	tests := []struct {
		name string
		args []string
		keep func(i int, e *audit.Event) bool
	}{
		{"everything", nil, func(int, *audit.Event) bool { return true }},
		{"subject", []string{"--subject", "bob"}, func(_ int, e *audit.Event) bool { return e.Subject == "bob" }},
		{"source", []string{"--dataset", "civil"}, func(_ int, e *audit.Event) bool { return e.Source == "civil" }},
		{"source and dataset", []string{"--dataset", "health/visits"}, func(_ int, e *audit.Event) bool { return e.Dataset == "visits" }},
		{"decision", []string{"--decision", "deny"}, func(_ int, e *audit.Event) bool { return e.Decision == "deny" }},
		{"status", []string{"--status", "403"}, func(_ int, e *audit.Event) bool { return e.Status == 403 }},
		{"request id", []string{"--request-id", f.events[17].RequestID}, func(i int, _ *audit.Event) bool { return i == 17 }},
		{"since a time", []string{"--since", at(3).Format(time.RFC3339)}, func(_ int, e *audit.Event) bool { return !e.Time.Before(at(3)) }},
		{"until a date", []string{"--until", "2026-11-26T09:00"}, func(_ int, e *audit.Event) bool { return e.Time.Before(at(1)) }},
		{"a window", []string{"--since", "2026-11-26T09:00:00Z", "--until", "2026-11-26T10:00:00Z"}, func(_ int, e *audit.Event) bool {
			return !e.Time.Before(at(1)) && e.Time.Before(at(2))
		}},
		{"combined", []string{"--subject", "carol", "--decision", "allow", "--dataset", "health/visits"}, func(_ int, e *audit.Event) bool {
			return e.Subject == "carol" && e.Decision == "allow" && e.Dataset == "visits"
		}},
		{"nothing matches", []string{"--subject", "mallory"}, func(int, *audit.Event) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := fixtureIDs(f, tt.keep)
			if diff := cmp.Diff(want, searchIDs(t, f, tt.args...)); diff != "" {
				t.Errorf("oldest first (-want +got):\n%s", diff)
			}
			slices.Reverse(want)
			if diff := cmp.Diff(want, searchIDs(t, f, append(tt.args, "--newest")...)); diff != "" {
				t.Errorf("newest first (-want +got):\n%s", diff)
			}
			if len(want) > 2 {
				if diff := cmp.Diff(want[:2], searchIDs(t, f, append(tt.args, "--newest", "--limit", "2")...)); diff != "" {
					t.Errorf("--limit 2 (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestAuditSearchPrintsATable(t *testing.T) {
	f := newAuditFixture(t)
	out, errOut, err := runCmd(t, "audit", "search", "--dir", f.dir, "--decision", "deny", "--limit", "2")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two rows:\n%s", out)
	}
	for _, col := range []string{"TIME", "SEQ", "REQUEST ID", "SUBJECT", "DATASET", "DECISION", "STATUS"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header lacks %s: %s", col, lines[0])
		}
	}
	e := f.events[3]
	want := []string{"2026-11-26T08:45:00Z", "4", e.RequestID, "alice", "read", "civil/assistance", "deny", "403", "0"}
	if got := strings.Fields(lines[1]); !slices.Equal(got, want) {
		t.Errorf("row %q, want %q", got, want)
	}
	if strings.TrimSpace(errOut) != "2 record(s)" {
		t.Errorf("stderr %q", errOut)
	}
}

func TestAuditSearchUsageErrorsExitTwo(t *testing.T) {
	f := newAuditFixture(t)
	for name, args := range map[string][]string{
		"unknown decision":    {"--decision", "maybe"},
		"dataset without src": {"--dataset", "/visits"},
		"dataset too deep":    {"--dataset", "a/b/c"},
		"bad since":           {"--since", "yesterday"},
		"bad until":           {"--until", "2026-13-01"},
		"empty window":        {"--since", "2026-11-27", "--until", "2026-11-26"},
		"status out of range": {"--status", "42"},
		"negative limit":      {"--limit", "-1"},
		"stray argument":      {"alice"},
	} {
		t.Run(name, func(t *testing.T) {
			out, errOut, err := runCmd(t, append([]string{"audit", "search", "--dir", f.dir}, args...)...)
			if exitCode(err) != 2 {
				t.Errorf("exit %d, want 2: %s%s", exitCode(err), out, errOut)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"2026-11-20":                time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		"2026-11-20T10:30":          time.Date(2026, 11, 20, 10, 30, 0, 0, time.UTC),
		"2026-11-20T10:30:05":       time.Date(2026, 11, 20, 10, 30, 5, 0, time.UTC),
		"2026-11-20T18:30:05+08:00": time.Date(2026, 11, 20, 10, 30, 5, 0, time.UTC),
		"36h":                       now.Add(-36 * time.Hour),
		"7d":                        now.AddDate(0, 0, -7),
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-3h", "2026-11", "d"} {
		if _, err := parseWhen(in, now); err == nil {
			t.Errorf("parseWhen(%q) succeeded", in)
		}
	}
}

// TestAuditSearchShowsADecisionRecordWithoutAnOutcome: a release's
// decision record has no status or rows yet, and the table says so rather
// than print zeros; its outcome record prints them.
func TestAuditSearchShowsADecisionRecordWithoutAnOutcome(t *testing.T) {
	for _, tc := range []struct {
		line              string
		seq, status, rows string
	}{
		{`{"seq":7,"time":"2026-11-26T08:45:00Z","request_id":"r1","subject":"alice","action":"read","phase":"decision","source":"health","dataset":"visits","decision":"allow","rows":0,"status":0}`, "7", "-", "-"},
		{`{"seq":8,"time":"2026-11-26T08:45:00Z","request_id":"r1","subject":"alice","action":"read","phase":"outcome","source":"health","dataset":"visits","decision":"allow","rows":5,"status":200}`, "8", "200", "5"},
	} {
		var b strings.Builder
		if err := printRow(&b, []byte(tc.line)); err != nil {
			t.Fatal(err)
		}
		want := []string{"2026-11-26T08:45:00Z", tc.seq, "r1", "alice", "read", "health/visits", "allow", tc.status, tc.rows}
		if got := strings.Fields(b.String()); !slices.Equal(got, want) {
			t.Errorf("row %q, want %q", got, want)
		}
	}
}
