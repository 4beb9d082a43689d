package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// writeFiles writes files (relative path → content) under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// policyDir writes files into a fresh directory and returns it.
func policyDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	return dir
}

// load compiles dir and fails the test on error.
func load(t testing.TB, dir string) *Set {
	t.Helper()
	set, err := Load(context.Background(), dir)
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	return set
}

// loadPolicy compiles one policy file.
func loadPolicy(t testing.TB, rego string) *Set {
	t.Helper()
	return load(t, policyDir(t, map[string]string{"sluice.rego": rego}))
}

func analystRead() *Input {
	return &Input{
		Subject: Subject{ID: "alice", Roles: []string{"analyst"}, Dept: "health"},
		Purpose: "public-health",
		Action:  "read",
		Resource: &Resource{Source: "health", Dataset: "visits", Classification: "L3",
			Fields: map[string]FieldInfo{"patient_id": {Type: "id_cn", Level: "L4"}}},
		Request: Request{Method: "GET", Path: "/v1/health/visits", Params: map[string][]string{"page": {"2"}}},
		Time:    time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
	}
}

// assertDeny fails unless d is a deny.
func assertDeny(t *testing.T, d *Decision) {
	t.Helper()
	if d == nil {
		t.Fatal("Decide returned a nil decision, want a deny")
	}
	if d.Allow || d.Plan != nil {
		t.Fatalf("Decide = %+v, want a deny", d)
	}
}

func TestDecideReturnsThePolicysDecision(t *testing.T) {
	set := loadPolicy(t, `package sluice

default decision := {"allow": false, "reason": "nothing matched"}

decision := {
	"allow": true,
	"reason": "analyst read",
	"fields": {"patient_id": "pseudonymize", "cost": "keep"},
	"params": ["page"],
	"max_rows": 10,
} if {
	"analyst" in input.subject.roles
	input.action == "read"
}
`)
	got, err := set.Decide(context.Background(), analystRead())
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if !got.Allow || got.Reason != "analyst read" || got.MaxRows != 10 || got.Plan == nil {
		t.Errorf("Decide = %+v, want the analyst grant", got)
	}
	if diff := cmp.Diff(map[string]string{"patient_id": "pseudonymize", "cost": "keep"}, got.Plan.Treatments()); diff != "" {
		t.Errorf("treatments (-want +got):\n%s", diff)
	}

	in := analystRead()
	in.Subject.Roles = []string{"public"}
	got, err = set.Decide(context.Background(), in)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if diff := cmp.Diff(&Decision{Reason: "nothing matched"}, got); diff != "" {
		t.Errorf("default decision (-want +got):\n%s", diff)
	}
}

func TestDecideDeniesWhenTheDecisionIsUndefined(t *testing.T) {
	tests := []struct {
		name string
		rego string
	}{
		{"no decision rule", "package sluice\n\nallow := true\n"},
		{"decision rule that does not match", "package sluice\n\ndecision := {\"allow\": true} if input.action == \"delete\"\n"},
		{"decision in another package", "package other\n\ndecision := {\"allow\": true}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := loadPolicy(t, tt.rego).Decide(context.Background(), analystRead())
			if err == nil {
				t.Error("Decide returned no error for an undefined decision")
			}
			assertDeny(t, d)
		})
	}
}

func TestDecideDeniesWhenEvaluationFails(t *testing.T) {
	tests := []struct {
		name string
		rego string
	}{
		{"two complete values", `package sluice

decision := {"allow": true} if input.action == "read"

decision := {"allow": false} if input.subject.id == "alice"
`},
		{"conflicting object keys", `package sluice

decision[k] := v if {
	some k, v in {"allow": true}
}

decision["allow"] := false if input.subject.id == "alice"
`},
		{"function with two outputs", `package sluice

f(x) := 1 if x == "read"

f(x) := 2 if x == "read"

decision := {"allow": true, "max_rows": f(input.action)}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := loadPolicy(t, tt.rego).Decide(context.Background(), analystRead())
			if err == nil {
				t.Error("Decide returned no error for a failing evaluation")
			}
			assertDeny(t, d)
		})
	}
}

func TestDecideDeniesAMalformedDecision(t *testing.T) {
	tests := []struct {
		name string
		rego string
	}{
		{"typo in a member", `package sluice

decision := {"allow": true, "feilds": {"cost": "keep"}}
`},
		{"allow as a string", `package sluice

decision := {"allow": "true"}
`},
		{"unknown operator", `package sluice

decision := {"allow": true, "fields": {"cost": "kep"}}
`},
		{"decision is a set", `package sluice

decision contains "allow"
`},
		{"decision is true", `package sluice

decision := true
`},
		{"negative epsilon", `package sluice

decision := {"allow": true, "stats": {"metrics": ["count"], "max_epsilon": -1}}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := loadPolicy(t, tt.rego).Decide(context.Background(), analystRead())
			var me *MalformedError
			if !errors.As(err, &me) {
				t.Errorf("Decide error %v, want a *MalformedError", err)
			}
			assertDeny(t, d)
			if d.Reason != "policy decision is malformed" {
				t.Errorf("reason %q, want %q", d.Reason, "policy decision is malformed")
			}
		})
	}
}

// echoPolicy denies with the whole input document as the reason, so a test
// sees exactly what a policy sees.
const echoPolicy = `package sluice

decision := {"allow": false, "reason": json.marshal(input)}
`

// seenInput returns the input document as the policy received it.
func seenInput(t *testing.T, in *Input) map[string]any {
	t.Helper()
	d, err := loadPolicy(t, echoPolicy).Decide(context.Background(), in)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(d.Reason), &got); err != nil {
		t.Fatalf("reason %q is not the input document: %v", d.Reason, err)
	}
	return got
}

func jsonDoc(t *testing.T, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("bad test JSON: %v", err)
	}
	return m
}

func TestDecideGivesThePolicyTheDesignInputDocument(t *testing.T) {
	groupBy := "district"
	in := &Input{
		Subject: Subject{
			ID: "alice", Roles: []string{"analyst", "public"}, Dept: "health", District: "朝阳区",
			Claims: map[string]any{"iss": "https://idp.example", "level": float64(3), "groups": []any{"a", "b"}},
		},
		Purpose: "public-health",
		Action:  "stats",
		Resource: &Resource{
			Source: "health", Dataset: "visits", Classification: "L3",
			Fields: map[string]FieldInfo{
				"patient_id": {Type: "id_cn", Level: "L4"},
				"cost":       {Type: "integer", Level: "L2"},
			},
		},
		Request: Request{
			Method: "GET", Path: "/v1/health/visits/stats",
			Params: map[string][]string{"metric": {"count"}, "district": {"朝阳区", "海淀区"}},
		},
		Stats: &StatsQuery{Metric: "count", GroupBy: &groupBy, Epsilon: 0.5},
		Grants: []Grant{{ID: "grt_1", Dataset: "health/visits", Dept: "health", Purpose: "public-health",
			Fields: map[string]any{"patient_id": "pseudonymize"}, ValidUntil: time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC), MaxRows: 1000}},
		Time: time.Date(2026, 11, 26, 18, 0, 0, 0, time.FixedZone("CST", 8*3600)),
	}
	want := jsonDoc(t, `{
		"subject": {"id": "alice", "roles": ["analyst", "public"], "dept": "health", "district": "朝阳区",
			"claims": {"iss": "https://idp.example", "level": 3, "groups": ["a", "b"]}},
		"purpose": "public-health",
		"action": "stats",
		"resource": {"source": "health", "dataset": "visits", "classification": "L3",
			"fields": {"patient_id": {"type": "id_cn", "level": "L4"}, "cost": {"type": "integer", "level": "L2"}}},
		"request": {"method": "GET", "path": "/v1/health/visits/stats",
			"params": {"metric": ["count"], "district": ["朝阳区", "海淀区"]}},
		"stats": {"metric": "count", "field": null, "group_by": "district", "epsilon": 0.5},
		"grants": [{"id": "grt_1", "dataset": "health/visits", "dept": "health", "purpose": "public-health",
			"fields": {"patient_id": "pseudonymize"}, "valid_until": "2027-03-31T00:00:00Z", "max_rows": 1000,
			"min_k": 0, "min_l": 0}],
		"time": "2026-11-26T10:00:00Z"
	}`)
	if diff := cmp.Diff(want, seenInput(t, in)); diff != "" {
		t.Errorf("input document (-want +got):\n%s", diff)
	}
}

func TestDecideGivesThePolicyAStatsField(t *testing.T) {
	field := "cost"
	in := analystRead()
	in.Action = "stats"
	in.Stats = &StatsQuery{Metric: "sum", Field: &field, Epsilon: 1}
	got := seenInput(t, in)["stats"]
	want := map[string]any{"metric": "sum", "field": "cost", "group_by": nil, "epsilon": float64(1)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("input.stats (-want +got):\n%s", diff)
	}
}

func TestDecideGivesThePolicyEmptyCollectionsNotNull(t *testing.T) {
	in := &Input{
		Subject: Subject{ID: "bob"},
		Action:  "catalog",
		Request: Request{Method: "GET", Path: "/v1/catalog"},
		Time:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	want := jsonDoc(t, `{
		"subject": {"id": "bob", "roles": [], "dept": "", "district": "", "claims": {}},
		"purpose": "",
		"action": "catalog",
		"request": {"method": "GET", "path": "/v1/catalog", "params": {}},
		"grants": [],
		"time": "2026-01-02T03:04:05Z"
	}`)
	if diff := cmp.Diff(want, seenInput(t, in)); diff != "" {
		t.Errorf("input document (-want +got):\n%s", diff)
	}
}

// The input reaches the policy as data, so a policy can grant fields by
// what it reads from the input; this is how the contract is used in
// practice.
func TestDecideLetsThePolicyGrantByInput(t *testing.T) {
	set := loadPolicy(t, `package sluice

decision := {
	"allow": true,
	"reason": concat(" ", [input.subject.id, input.subject.dept, input.purpose, input.action,
		input.resource.source, input.resource.dataset, input.resource.classification,
		input.request.method, input.request.path, input.request.params.page[0], input.time]),
	"fields": {name: "keep" | some name, f in input.resource.fields; f.level != "L4"},
	"params": [p | some p, _ in input.request.params],
}
`)
	in := analystRead()
	in.Resource.Fields["cost"] = FieldInfo{Type: "integer", Level: "L2"}
	d, err := set.Decide(context.Background(), in)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	want := "alice health public-health read health visits L3 GET /v1/health/visits 2 2026-11-26T10:00:00Z"
	if d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
	if diff := cmp.Diff(map[string]string{"cost": "keep"}, d.Plan.Treatments()); diff != "" {
		t.Errorf("treatments (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"page"}, d.Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
}

func TestLoadReadsDataFilesUnderTheirDirectory(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"sluice.rego": `package sluice

decision := {"allow": false, "reason": concat(",", [data.registry.name, data.sub.extra.name, data.yamlish.name])}
`,
		"data.json":           `{"registry": {"name": "json"}}`,
		"sub/extra/data.json": `{"name": "nested"}`,
		"yamlish/data.yaml":   "name: yaml\n",
	})
	d, err := load(t, dir).Decide(context.Background(), analystRead())
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if want := "json,nested,yaml"; d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
}

const basePolicy = `package sluice

default decision := {"allow": false, "reason": "default"}

decision := {"allow": true, "reason": data.grant.reason} if input.subject.id == data.grant.who
`

func TestRevisionIdentifiesThePolicyFiles(t *testing.T) {
	base := map[string]string{
		"sluice.rego":      basePolicy,
		"sluice_test.rego": "package sluice_test\n\ntest_nothing if true\n",
		"data.json":        `{"grant": {"who": "alice", "reason": "granted"}}`,
		"README.md":        "how to write policies",
	}
	rev := func(t *testing.T, change func(dir string)) string {
		t.Helper()
		dir := policyDir(t, base)
		if change != nil {
			change(dir)
		}
		return load(t, dir).Revision()
	}
	write := func(name, content string) func(string) {
		return func(dir string) { writeFiles(t, dir, map[string]string{name: content}) }
	}
	rename := func(from, to string) func(string) {
		return func(dir string) {
			if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
				t.Fatal(err)
			}
		}
	}
	orig := rev(t, nil)
	if len(orig) != 16 || strings.Trim(orig, "0123456789abcdef") != "" {
		t.Errorf("revision %q, want 16 lower-case hex digits", orig)
	}
	if again := rev(t, nil); again != orig {
		t.Errorf("same files in another directory: revision %s, want %s", again, orig)
	}

	changes := []struct {
		name   string
		change func(dir string)
	}{
		{"policy content", write("sluice.rego", basePolicy+"\nextra := 1\n")},
		{"policy whitespace", write("sluice.rego", basePolicy+"\n")},
		{"policy renamed", rename("sluice.rego", "main.rego")},
		{"policy added", write("more.rego", "package more\n\nx := 1\n")},
		{"policy in a subdirectory", write("sub/more.rego", "package more\n\nx := 1\n")},
		{"test content", write("sluice_test.rego", "package sluice_test\n\ntest_other if true\n")},
		{"data content", write("data.json", `{"grant": {"who": "bob", "reason": "granted"}}`)},
		{"data renamed", rename("data.json", "grants.json")},
		{"data moved into a directory", func(dir string) {
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			rename("data.json", "sub/data.json")(dir)
			writeFiles(t, dir, map[string]string{"sluice.rego": strings.ReplaceAll(basePolicy, "data.grant", "data.sub.grant")})
		}},
		{"yaml data added", write("more.yaml", "extra: 1\n")},
		{"yml data added", write("more.yml", "extra: 1\n")},
	}
	seen := map[string]string{orig: "original"}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			got := rev(t, c.change)
			if prev, dup := seen[got]; dup {
				t.Errorf("revision %s after %q is the same as after %q", got, c.name, prev)
			}
			seen[got] = c.name
		})
	}

	unchanged := []struct {
		name   string
		change func(dir string)
	}{
		{"readme edited", write("README.md", "something else")},
		{"other file added", write("notes.txt", "x")},
		{"hidden file added", write(".draft.rego", "package draft\n\nx := 1\n")},
		{"hidden directory added", write(".git/config.json", `{"x": 1}`)},
		{"modification time changed", func(dir string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "sluice.rego"), later, later); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range unchanged {
		t.Run(c.name, func(t *testing.T) {
			if got := rev(t, c.change); got != orig {
				t.Errorf("revision %s after %q, want it unchanged (%s)", got, c.name, orig)
			}
		})
	}
}

// mallory is granted only by files that a revision must account for.
func malloryRead() *Input {
	in := analystRead()
	in.Subject = Subject{ID: "mallory", Roles: []string{"analyst"}}
	return in
}

const malloryGrant = `package sluice

decision := {"allow": true, "reason": "backdoor", "fields": {"patient_id": "keep"}} if input.subject.id == "mallory"
`

// Whatever the revision does not cover must not be enforced: otherwise the
// audit trail names a revision that is not the policy that decided.
func TestLoadEnforcesOnlyWhatTheRevisionCovers(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		extra func(t *testing.T, dir string)
	}{
		{name: "decision in a test file", files: map[string]string{
			"sluice.rego":        basePolicy,
			"data.json":          `{"grant": {"who": "alice", "reason": "granted"}}`,
			"backdoor_test.rego": malloryGrant,
		}},
		{name: "decision in a hidden file", files: map[string]string{
			"sluice.rego":    basePolicy,
			"data.json":      `{"grant": {"who": "alice", "reason": "granted"}}`,
			".backdoor.rego": malloryGrant,
		}},
		{name: "decision in a hidden directory", files: map[string]string{
			"sluice.rego":           basePolicy,
			"data.json":             `{"grant": {"who": "alice", "reason": "granted"}}`,
			".drafts/backdoor.rego": malloryGrant,
		}},
		{name: "decision in a bundle tarball", files: map[string]string{
			"sluice.rego": basePolicy,
			"data.json":   `{"grant": {"who": "alice", "reason": "granted"}}`,
		}, extra: func(t *testing.T, dir string) {
			writeBundle(t, filepath.Join(dir, "backdoor.tar.gz"), map[string]string{"/backdoor.rego": malloryGrant})
		}},
		{name: "decision in a symlinked directory", files: map[string]string{
			"sluice.rego": basePolicy,
			"data.json":   `{"grant": {"who": "alice", "reason": "granted"}}`,
		}, extra: func(t *testing.T, dir string) {
			outside := policyDir(t, map[string]string{"backdoor.rego": malloryGrant})
			if err := os.Symlink(outside, filepath.Join(dir, "linked")); err != nil {
				t.Skipf("no symlinks: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := policyDir(t, tt.files)
			if tt.extra != nil {
				tt.extra(t, dir)
			}
			set, err := Load(context.Background(), dir)
			if err != nil {
				// Refusing the directory is fail-closed too.
				return
			}
			d, err := set.Decide(context.Background(), malloryRead())
			if err == nil && d.Allow {
				t.Fatalf("mallory got %+v: a file outside the revision was enforced", d)
			}
		})
	}
}

// symlink makes link point at target, skipping the test where symlinks are
// not available.
func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symlinks: %v", err)
	}
}

func TestLoadReadsASymlinkedDirectory(t *testing.T) {
	target := policyDir(t, map[string]string{
		"sluice.rego": basePolicy,
		"data.json":   `{"grant": {"who": "alice", "reason": "granted"}}`,
	})
	link := filepath.Join(t.TempDir(), "current")
	symlink(t, target, link)
	got := load(t, link)
	if want := load(t, target).Revision(); got.Revision() != want {
		t.Errorf("revision through the link %s, want %s", got.Revision(), want)
	}
	d, err := got.Decide(context.Background(), analystRead())
	if err != nil || !d.Allow {
		t.Errorf("Decide = %+v, %v; want alice granted", d, err)
	}
}

// A Kubernetes ConfigMap volume holds each file as a symlink into a hidden
// timestamped directory, reached through the hidden symlink ..data. Each
// policy must be loaded once, not once per path to it.
func TestLoadReadsAConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"..2026_11_26_10_00_00.123/sluice.rego": basePolicy,
		"..2026_11_26_10_00_00.123/data.json":   `{"grant": {"who": "alice", "reason": "granted"}}`,
	})
	symlink(t, "..2026_11_26_10_00_00.123", filepath.Join(dir, "..data"))
	symlink(t, "..data/sluice.rego", filepath.Join(dir, "sluice.rego"))
	symlink(t, "..data/data.json", filepath.Join(dir, "data.json"))

	d, err := load(t, dir).Decide(context.Background(), analystRead())
	if err != nil || !d.Allow {
		t.Errorf("Decide = %+v, %v; want alice granted", d, err)
	}
	plain := policyDir(t, map[string]string{
		"sluice.rego": basePolicy,
		"data.json":   `{"grant": {"who": "alice", "reason": "granted"}}`,
	})
	if got, want := load(t, dir).Revision(), load(t, plain).Revision(); got != want {
		t.Errorf("revision %s, want %s as for the same files without links", got, want)
	}
}

// writeBundle writes an OPA bundle tarball holding files.
func writeBundle(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRejectsBrokenPolicyDirectories(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error
	}{
		{"no files", map[string]string{}, []string{"no .rego files"}},
		{"only data", map[string]string{"data.json": `{}`}, []string{"no .rego files"}},
		{"only tests", map[string]string{"sluice_test.rego": "package sluice_test\n\ntest_x if true\n"}, []string{"no .rego files"}},
		{"syntax error", map[string]string{"sluice.rego": "package sluice\n\ndecision := {\"allow\": \n"},
			[]string{"sluice.rego:", "rego_parse_error"}},
		{"rego v0 rule without if", map[string]string{"sluice.rego": "package sluice\n\ndefault allow = false\n\nallow { input.x }\n"},
			[]string{"sluice.rego:5", "rego_parse_error", "`if` keyword is required"}},
		{"rego v0 partial set without contains", map[string]string{"sluice.rego": "package sluice\n\ndeny[msg] { msg := \"x\" }\n"},
			[]string{"sluice.rego:3", "rego_parse_error", "`contains` keyword is required"}},
		{"unsafe variable", map[string]string{"sluice.rego": "package sluice\n\ndecision := {\"allow\": x}\n"},
			[]string{"sluice.rego:", "rego_unsafe_var_error"}},
		{"unknown function", map[string]string{"sluice.rego": "package sluice\n\ndecision := {\"allow\": no_such_fn(1)}\n"},
			[]string{"sluice.rego:", "undefined function"}},
		{"bad data", map[string]string{"sluice.rego": "package sluice\n\ndecision := {\"allow\": false}\n", "data.json": `{"a": `},
			[]string{"data.json"}},
		{"conflicting data", map[string]string{
			"sluice.rego": "package sluice\n\ndecision := {\"allow\": false}\n",
			"a.json":      `{"x": 1}`, "b.json": `{"x": 2}`,
		}, []string{"merge error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := policyDir(t, tt.files)
			set, err := Load(context.Background(), dir)
			if err == nil {
				t.Fatalf("Load = revision %s, want an error", set.Revision())
			}
			msg := err.Error()
			for _, w := range append(tt.want, dir) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}

func TestLoadRejectsAMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if _, err := Load(context.Background(), dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Load(%s) error %v, want one naming the directory", dir, err)
	}
}

func TestLoadKeepsTheDirectory(t *testing.T) {
	dir := policyDir(t, map[string]string{"sluice.rego": basePolicy})
	if got := load(t, dir).Dir(); got != dir {
		t.Errorf("Dir() = %q, want %q", got, dir)
	}
}

func TestEngineSwapsSetsAtomically(t *testing.T) {
	a := loadPolicy(t, "package sluice\n\ndecision := {\"allow\": false, \"reason\": \"a\"}\n")
	b := loadPolicy(t, "package sluice\n\ndecision := {\"allow\": false, \"reason\": \"b\"}\n")
	if a.Revision() == b.Revision() {
		t.Fatal("different policies share a revision")
	}
	e := NewEngine(a)
	if e.Current() != a {
		t.Fatalf("Current() = %v, want the set the engine was built with", e.Current().Revision())
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				set := e.Current()
				d, err := set.Decide(context.Background(), analystRead())
				if err != nil {
					t.Errorf("Decide: %v", err)
					return
				}
				// One request sees one revision: the decision matches the
				// set it was taken from.
				if want := map[*Set]string{a: "a", b: "b"}[set]; d.Reason != want {
					t.Errorf("set %s decided %q, want %q", set.Revision(), d.Reason, want)
					return
				}
			}
		})
	}
	for i := range 50 {
		if i%2 == 0 {
			e.Swap(b)
		} else {
			e.Swap(a)
		}
	}
	e.Swap(b)
	close(stop)
	wg.Wait()
	if e.Current() != b {
		t.Errorf("Current() = %s after Swap(b), want %s", e.Current().Revision(), b.Revision())
	}
}

func TestTestReportsEachRegoTest(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"sluice.rego": basePolicy,
		"data.json":   `{"grant": {"who": "alice", "reason": "granted"}}`,
		"sluice_test.rego": `package sluice_test

import data.sluice

test_alice_is_granted if {
	sluice.decision.allow with input as {"subject": {"id": "alice"}}
}

test_bob_is_granted if {
	sluice.decision.allow with input as {"subject": {"id": "bob"}}
}

test_division_by_zero if {
	1 / 0 == 1
}

todo_test_later if {
	false
}
`,
	})
	got, err := Test(context.Background(), dir)
	if err != nil {
		t.Fatalf("Test: %v", err)
	}
	testFile := filepath.Join(dir, "sluice_test.rego")
	want := []TestResult{
		{Package: "data.sluice_test", Name: "test_alice_is_granted", Pass: true, Location: testFile + ":5"},
		{Package: "data.sluice_test", Name: "test_bob_is_granted", Pass: false, Location: testFile + ":9"},
		{Package: "data.sluice_test", Name: "test_division_by_zero", Pass: false, Location: testFile + ":13"},
		{Package: "data.sluice_test", Name: "todo_test_later", Pass: false, Skip: true, Location: testFile + ":17"},
	}
	// Error texts are OPA's; the test only asks that an erring test says
	// why.
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(TestResult{}, "Error")); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	for _, r := range got {
		wantErr := ""
		if r.Name == "test_division_by_zero" {
			wantErr = "divide by zero"
		}
		if (wantErr == "") != (r.Error == "") || !strings.Contains(r.Error, wantErr) {
			t.Errorf("%s: error %q, want one saying %q", r.Name, r.Error, wantErr)
		}
	}
}

func TestTestRunsFromAnyRelativeDirectory(t *testing.T) {
	root := policyDir(t, map[string]string{
		"sluice.rego":      basePolicy,
		"sluice_test.rego": "package sluice_test\n\ntest_one if true\n",
		"sub/keep.txt":     "",
	})
	for _, tt := range []struct{ cwd, dir string }{
		{root, "."},
		{filepath.Join(root, "sub"), ".."},
		{filepath.Dir(root), filepath.Base(root)},
	} {
		t.Run(tt.dir, func(t *testing.T) {
			t.Chdir(tt.cwd)
			got, err := Test(context.Background(), tt.dir)
			if err != nil {
				t.Fatalf("Test(%s): %v", tt.dir, err)
			}
			if len(got) != 1 || !got[0].Pass {
				t.Errorf("Test(%s) from %s = %+v, want the one passing test", tt.dir, tt.cwd, got)
			}
		})
	}
}

func TestTestSkipsHiddenFiles(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"sluice.rego":             basePolicy,
		"sluice_test.rego":        "package sluice_test\n\ntest_one if true\n",
		".old_test.rego":          "package old_test\n\ntest_old if false\n",
		".drafts/draft_test.rego": "package draft_test\n\ntest_draft if false\n",
	})
	got, err := Test(context.Background(), dir)
	if err != nil {
		t.Fatalf("Test: %v", err)
	}
	if len(got) != 1 || got[0].Name != "test_one" {
		t.Errorf("Test = %+v, want only test_one", got)
	}
}

func TestTestRejectsBrokenPolicies(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"sluice.rego":      "package sluice\n\ndecision := {\n",
		"sluice_test.rego": "package sluice_test\n\ntest_one if true\n",
	})
	if _, err := Test(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "rego_parse_error") {
		t.Errorf("Test error %v, want a parse error", err)
	}
}

func TestShippedPoliciesGrantTheAnalystRead(t *testing.T) {
	set := load(t, "../policies")
	d, err := set.Decide(context.Background(), analystRead())
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if !d.Allow || d.Plan == nil {
		t.Fatalf("Decide = %+v, want the analyst grant", d)
	}
	if d.Fields["patient_id"].Op != "drop" || d.MinK != 5 || d.MinL != 3 {
		t.Errorf("patient_id treated with %q, min_k %d, min_l %d; want drop, 5, 3", d.Fields["patient_id"].Op, d.MinK, d.MinL)
	}
}

func BenchmarkDecide(b *testing.B) {
	set := load(b, "../policies")
	in := analystRead()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := set.Decide(ctx, in)
		if err != nil || !d.Allow {
			b.Fatalf("Decide = %+v, %v; want the analyst grant", d, err)
		}
	}
}
