package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/hub"
)

// as are the flags that make a hub command speak as the demo's role.
func (d *demoRun) as(role string) []string { return []string{"--dir", d.dir, "--role", role} }

// hubCmd runs `sluice hub args... --dir D --role role`.
func (d *demoRun) hubCmd(t *testing.T, role string, args ...string) (string, string, error) {
	t.Helper()
	return runCmd(t, append(append([]string{"hub"}, args...), d.as(role)...)...)
}

// submitResearch has the demo's researcher ask for visit records, over
// HTTP as a requester would, and returns the request's id.
func (d *demoRun) submitResearch(t *testing.T) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"dataset": "health/visits",
		"fields":  []string{"patient_id", "district", "diagnosis", "visit_date"},
		"purpose": "research", "legal_basis": "Statistics Law art. 7",
		"valid_until": time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)})
	r := send(t, http.MethodPost, d.manifest.Gateway+"/v1/requests", string(body),
		"Authorization", "Bearer "+d.manifest.Tokens["researcher"])
	var q hub.Request
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &q) != nil || q.ID == "" {
		t.Fatalf("submit a request: %d %s", r.status, r.body)
	}
	return q.ID
}

// researcherReads is the status of the researcher's read of visits for
// research.
func (d *demoRun) researcherReads(t *testing.T) int {
	t.Helper()
	return get(t, d.manifest.Gateway+"/v1/health/visits?page_size=2", d.manifest.Tokens["researcher"],
		"Sluice-Purpose", "research").status
}

// mustRun fails the test unless the command succeeded with nothing on
// stderr, and returns its output.
func mustRun(t *testing.T) func(out, errOut string, err error) string {
	return func(out, errOut string, err error) string {
		t.Helper()
		if err != nil || errOut != "" {
			t.Fatalf("exit %d (%v)\nstdout:\n%s\nstderr:\n%s", exitCode(err), err, out, errOut)
		}
		return out
	}
}

// The whole path from the command line: the steward sees the researcher's
// request, approves it with conditions, the grant is listed and enforced;
// suspend and resume stop and restart it, and revoke ends it.
func TestHubDecideIssuesAGrantThatHubRevokeEnds(t *testing.T) {
	d := startDemo(t, t.TempDir())
	ok := mustRun(t)
	id := d.submitResearch(t)
	if got := d.researcherReads(t); got != http.StatusForbidden {
		t.Fatalf("before any grant the researcher's read answered %d, want 403", got)
	}

	out := ok(d.hubCmd(t, "steward_health", "requests", "list"))
	if !rowWith(out, id, "submitted", "health/visits", "rita (stats-bureau)") || !strings.HasPrefix(out, "ID ") {
		t.Errorf("hub requests list:\n%s\nwant a table with %s submitted by rita", out, id)
	}
	var listed struct{ Requests []hub.Request }
	out = ok(d.hubCmd(t, "steward_health", "requests", "list", "--state", "submitted", "--json"))
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed.Requests) != 1 || listed.Requests[0].ID != id {
		t.Errorf("hub requests list --state submitted --json: %v\n%s\nwant the gateway's answer with %s alone", err, out, id)
	}

	until := time.Now().AddDate(0, 6, 0).UTC().Truncate(time.Second)
	out = ok(d.hubCmd(t, "steward_health", "decide", id, "--approve", "--reason", "protocol 7",
		"--fields", `{"patient_id":"ceiling","district":"keep","visit_date":{"op":"generalize","to":"month"}}`,
		"--valid-until", until.Format(time.RFC3339), "--max-rows", "50"))
	if !strings.HasPrefix(out, id+": submitted → approved, grant grt_") {
		t.Fatalf("hub decide --approve: %q, want the request approved and its grant named", out)
	}
	grant := strings.TrimSpace(out[strings.LastIndex(out, "grt_"):])

	// The grant as the requester's department sees it, through --gateway
	// and --token-file.
	tokenFile := filepath.Join(t.TempDir(), "researcher.jwt")
	if err := os.WriteFile(tokenFile, []byte(d.manifest.Tokens["researcher"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = ok(runCmd(t, "hub", "grants", "list", "--gateway", d.manifest.Gateway+"/", "--token-file", tokenFile))
	if !rowWith(out, grant, "active", "health/visits", "stats-bureau", "research", until.Format(time.RFC3339)) {
		t.Errorf("hub grants list:\n%s\nwant %s active for stats-bureau until %s", out, grant, until.Format(time.RFC3339))
	}
	out = ok(d.hubCmd(t, "steward_health", "grants", "show", grant, "--json"))
	var g hub.Grant
	if err := json.Unmarshal([]byte(out), &g); err != nil || g.MaxRows != 50 || g.Fields["district"] != "keep" ||
		len(g.Fields) != 3 || !g.ValidUntil.Equal(until) || g.Request != id {
		t.Errorf("hub grants show --json: %v\n%s\nwant the approval's terms", err, out)
	}
	if got := d.researcherReads(t); got != http.StatusOK {
		t.Fatalf("under the grant the researcher's read answered %d, want 200", got)
	}

	for _, step := range []struct {
		action, want string
		status       int
	}{
		{"suspend", ": active → suspended", http.StatusForbidden},
		{"resume", ": suspended → active", http.StatusOK},
		{"revoke", ": active → revoked", http.StatusForbidden},
	} {
		out = ok(d.hubCmd(t, "steward_health", step.action, grant, "--reason", "x"))
		if out != grant+step.want+"\n" {
			t.Errorf("hub %s: %q, want %q", step.action, out, grant+step.want)
		}
		if got := d.researcherReads(t); got != step.status {
			t.Errorf("after hub %s the researcher's read answered %d, want %d", step.action, got, step.status)
		}
	}

	out = ok(d.hubCmd(t, "coordinator", "requests", "show", id))
	for _, want := range []string{"id:", "state:", "approved", "decision:", "approve by sam (health) as owner_steward",
		"granted fields:", `visit_date={"op":"generalize","to":"month"}`, "max rows:", "50", "grant:", grant,
		"history:", "submit - → submitted by rita (stats-bureau) as requester"} {
		if !strings.Contains(out, want) {
			t.Errorf("hub requests show does not say %q:\n%s", want, out)
		}
	}
	out = ok(d.hubCmd(t, "steward_health", "grants", "show", grant))
	if !strings.Contains(out, "revoked") || !strings.Contains(out, "revoke active → revoked by sam (health) as owner_steward: x") {
		t.Errorf("hub grants show:\n%s\nwant the grant revoked, and by whom", out)
	}
}

// rowWith reports whether a line of table has every one of cells.
func rowWith(table string, cells ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		all := true
		for _, c := range cells {
			all = all && strings.Contains(" "+strings.Join(f, " ")+" ", " "+c+" ")
		}
		if all {
			return true
		}
	}
	return false
}

// What the gateway refuses is a failure (exit 1) naming its code, with
// nothing on stdout; a malformed request it finds is a usage error.
func TestHubRefusalsExitOneNamingTheGatewaysCode(t *testing.T) {
	d := startDemo(t, t.TempDir())
	id := d.submitResearch(t)
	mustRun(t)(d.hubCmd(t, "steward_health", "decide", id, "--reject", "--reason", "no protocol"))
	other := d.submitResearch(t)
	for _, tc := range []struct {
		name string
		role string
		args []string
		code int
		want string
	}{
		{"deciding twice", "steward_health", []string{"decide", id, "--approve"}, 1, "conflict"},
		{"the requester deciding their own", "researcher", []string{"decide", other, "--approve"}, 1, "forbidden"},
		{"another department's steward", "steward_civil", []string{"decide", other, "--approve"}, 1, "not_found"},
		{"an unknown request", "steward_health", []string{"requests", "show", "req_AAAAAAAAAAAAAAAAAAAA"}, 1, "not_found"},
		{"revoking a grant of no one's", "steward_health", []string{"revoke", "grt_AAAAAAAAAAAAAAAAAAAA", "--reason", "x"}, 1, "not_found"},
		{"a condition that widens the request", "steward_health", []string{"decide", other, "--approve", "--fields", `{"cost":"keep"}`}, 2, "bad_request"},
		{"a role the demo lacks", "stewart_health", []string{"requests", "list"}, 2, "did you mean"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := d.hubCmd(t, tc.role, tc.args...)
			if got := exitCode(err); got != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("exit %d (%v), want %d naming %q", got, err, tc.code, tc.want)
			}
			if out != "" {
				t.Errorf("printed on stdout before failing:\n%s", out)
			}
		})
	}
	out := mustRun(t)(d.hubCmd(t, "steward_health", "requests", "show", other))
	if !strings.Contains(out, "submitted") {
		t.Errorf("the refused decisions changed %s:\n%s", other, out)
	}
}

// A command line that cannot be a hub call exits 2 before contacting any
// gateway (the one named here does not listen).
func TestHubUsageErrorsExitTwo(t *testing.T) {
	gw := []string{"--gateway", "http://127.0.0.1:1", "--token", "t"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"reject without a reason", []string{"decide", "req_x", "--reject"}, "--reject needs a --reason"},
		{"need-info without a reason", []string{"decide", "req_x", "--need-info", "--reason", " "}, "--need-info needs a --reason"},
		{"no decision", []string{"decide", "req_x"}, "give one of --approve, --reject and --need-info"},
		{"two decisions", []string{"decide", "req_x", "--approve", "--reject", "--reason", "r"}, "give one of"},
		{"conditions on a rejection", []string{"decide", "req_x", "--reject", "--reason", "r", "--min-k", "5"}, "go with --approve"},
		{"fields that are not JSON", []string{"decide", "req_x", "--approve", "--fields", "district,cost"}, "--fields"},
		{"a time that is not one", []string{"decide", "req_x", "--approve", "--valid-until", "soon"}, "--valid-until"},
		{"no request id", []string{"decide", "--approve"}, "want one request id"},
		{"revoke without a reason", []string{"revoke", "grt_x"}, "--reason is required"},
		{"show without an id", []string{"grants", "show"}, "want one grant id"},
		{"list with an argument", []string{"demands", "list", "open"}, "unexpected argument"},
		{"an unknown subcommand", []string{"grant", "list"}, "did you mean grants?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runCmd(t, append(append([]string{"hub"}, tc.args...), gw...)...)
			if exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("exit %d (%v), want 2 saying %q", exitCode(err), err, tc.want)
			}
			if out != "" {
				t.Errorf("printed on stdout:\n%s", out)
			}
		})
	}
	for _, args := range [][]string{
		{"requests", "list"},
		{"requests", "list", "--token", "t"},
		{"requests", "list", "--token", "t", "--role", "analyst"},
		{"requests", "list", "--token", "t", "--gateway", "127.0.0.1:8080"},
	} {
		if _, _, err := runCmd(t, append([]string{"hub"}, args...)...); exitCode(err) != 2 {
			t.Errorf("hub %s: exit %d (%v), want 2", strings.Join(args, " "), exitCode(err), err)
		}
	}
}

func TestHubFailsWhenNoGatewayAnswers(t *testing.T) {
	out, _, err := runCmd(t, "hub", "grants", "list", "--gateway", "http://127.0.0.1:1", "--token", "t")
	if exitCode(err) != 1 || out != "" {
		t.Errorf("exit %d (%v), stdout %q; want 1 and nothing printed", exitCode(err), err, out)
	}
}

// helpCommandLines lists audit's and policy's subcommands; these are the
// hub's, to the same test.
func TestEveryHubCommandsHelpHasUsageFlagsAndExamples(t *testing.T) {
	lines := [][]string{{"hub", "--help"}, {"help", "hub"}}
	for _, s := range hubCommands.subcommands {
		lines = append(lines, []string{"hub", s.name, "--help"})
	}
	for _, k := range []*hubKind{hubRequests, hubGrants, hubDemands} {
		for _, s := range k.commands().subcommands {
			lines = append(lines, []string{"help", "hub", k.plural, s.name})
		}
	}
	for _, args := range lines {
		out, errOut, err := runCmd(t, args...)
		if err != nil || errOut != "" {
			t.Errorf("%q: exit %d (%v), stderr %q", args, exitCode(err), err, errOut)
			continue
		}
		for _, want := range []string{"usage: sluice hub", "examples:\n  sluice hub "} {
			if !strings.Contains(out, want) {
				t.Errorf("%q does not say %q:\n%s", args, want, out)
			}
		}
		if m := singleDashFlag.FindString(out); m != "" {
			t.Errorf("%q names a flag with one dash, %q:\n%s", args, m, out)
		}
	}
}
