package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluicegw/sluice/gateway"
	"github.com/sluicegw/sluice/policy"
)

// A caller that may read a dataset's records and also get differentially
// private statistics about it learns the exact counts from the records:
// the noise protects no one, and the guarantee Sluice states would
// mislead. The gateway refuses such statistics at run time; `policy lint`
// finds the policies that grant both before they ship, and names the
// rules that do.

// lintJustification is the justification lint states when a caller is
// refused without one: a caller may always state one, and break-glass
// grants read records only when it is stated.
const lintJustification = "sluice policy lint: would a caller who states a justification be allowed this?"

// lintStats is the statistics query lint asks for: the plainest there is.
var lintStats = policy.StatsQuery{Metric: "count", Epsilon: 0.1}

// lintSubject is a caller lint tries, as --subjects lists them.
type lintSubject struct {
	ID       string   `json:"id"`
	Roles    []string `json:"roles"`
	Dept     string   `json:"dept"`
	District string   `json:"district"`
	// Purpose is the purpose the caller's token names; lint also tries
	// none and every registered purpose.
	Purpose string `json:"purpose"`
	// Claims are the token's claims; when not given, those of a token
	// that says the above.
	Claims map[string]any `json:"claims"`
}

// lintFinding is a caller the policies let both read a dataset's records
// and count them.
type lintFinding struct {
	Subject  string   `json:"subject"`
	Roles    []string `json:"roles"`
	Dept     string   `json:"dept,omitempty"`
	District string   `json:"district,omitempty"`
	Purpose  string   `json:"purpose"`
	Dataset  string   `json:"dataset"`
	// ReadJustified and StatsJustified say that the caller had to state a
	// justification to be allowed (as break-glass grants require).
	ReadJustified  bool `json:"read_with_justification,omitempty"`
	StatsJustified bool `json:"stats_with_justification,omitempty"`
	// ReadRules and StatsRules are the rules each allowing decision came
	// from, the one that built it first.
	ReadRules  []policy.RuleLocation `json:"read_rules"`
	StatsRules []policy.RuleLocation `json:"stats_rules"`
}

// lintRegistry is what lint reads of the policies' data.registry.
type lintRegistry struct {
	Precedence []string                   `json:"precedence"`
	Purposes   map[string]json.RawMessage `json:"purposes"`
	Stats      map[string]json.RawMessage `json:"stats"`
}

// runPolicyLint reports every caller the policies let both read a
// dataset's records and get statistics about it. It exits 1 when there is
// any.
func runPolicyLint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("policy lint", "Report every caller the policies let both read a dataset's records and count them.")
	c.usage = "[flags] [DIR]"
	c.about = `Such a caller learns exact counts from the records, so the noise of the
statistics protects no one. Lint tries every caller and purpose on every
dataset of DIR (default policies, or the configuration's policy.dir) and
names the rules that allow each. Exit status: 0 when there is no finding; 1
when there is any; 2 on a usage error or when the policies could not be
checked.`
	c.examples = []string{
		"sluice policy lint policies",
		"sluice policy lint --config sluice.yaml --json",
		"sluice policy lint policies --subjects callers.json --time 2026-11-26T10:00:00Z",
	}
	fs := c.flags
	cfgPath := fs.String("config", "", "gateway configuration: lint its datasets, and without DIR its policy directory (default: the datasets keyed in data.registry.stats)")
	subjectsPath := fs.String("subjects", "", `JSON array of callers to try, each {"id", "roles", "dept", "district", "purpose", "claims"} (default: the demo's roles and every role in data.registry.precedence)`)
	at := fs.String("time", "", "decide at this time, RFC 3339 (default now)")
	asJSON := fs.Bool("json", false, "print the findings as a JSON array")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usagef(c.name, "want at most one policy directory")
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usagef(c.name, "--time %q is not an RFC 3339 time (2026-11-26T10:00:00Z)", *at)
		}
		now = t
	}
	var cfg *gateway.Config
	if *cfgPath != "" {
		if cfg, err = gateway.LoadConfig(*cfgPath); err != nil {
			return fmt.Errorf("policy lint: %w", err)
		}
	}
	dir := "policies"
	switch {
	case len(rest) == 1:
		dir = rest[0]
	case cfg != nil && cfg.Policy.Dir != "":
		dir = cfg.Path(cfg.Policy.Dir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usagef(c.name, "%s is not a policy directory", dir)
	}
	set, err := policy.Load(ctx, dir)
	if err != nil {
		return err
	}
	reg, err := readRegistry(set)
	if err != nil {
		return err
	}
	var datasets []*policy.Resource
	if cfg != nil {
		datasets = configResources(cfg)
	} else {
		datasets = registryResources(reg)
	}
	if len(datasets) == 0 {
		return usagef(c.name, "no datasets to try: give --config, or key them in data.registry.stats")
	}
	var subjects []lintSubject
	if *subjectsPath != "" {
		if subjects, err = readSubjects(*subjectsPath); err != nil {
			return fmt.Errorf("policy lint: %w", err)
		}
	} else {
		subjects = defaultSubjects(reg)
	}

	l := &linter{set: set, dir: dir, now: now, stderr: stderr, warned: map[string]bool{}}
	findings, purposes, err := l.lint(ctx, subjects, datasets, reg)
	if err != nil {
		return err
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if findings == nil {
			findings = []lintFinding{}
		}
		if err := enc.Encode(findings); err != nil {
			return err
		}
	} else {
		for _, f := range findings {
			printFinding(stdout, f)
		}
		noun := "findings"
		if len(findings) == 1 {
			noun = "finding"
		}
		fmt.Fprintf(stdout, "%d %s over %d subjects × %d datasets × %d purposes\n", len(findings), noun, len(subjects), len(datasets), purposes)
	}
	if len(findings) > 0 {
		return &exitError{code: 1, msg: ""}
	}
	return nil
}

// linter decides for one policy set at one time.
type linter struct {
	set *policy.Set
	// dir is the set's directory, as the user named it: rule locations
	// are given in it.
	dir    string
	now    time.Time
	stderr io.Writer
	// warned holds the evaluation errors already reported: the same
	// broken rule fails for many callers.
	warned map[string]bool
}

// lint tries every subject, with each of its purposes, on every dataset,
// and returns the findings and how many distinct purposes it tried.
func (l *linter) lint(ctx context.Context, subjects []lintSubject, datasets []*policy.Resource, reg *lintRegistry) ([]lintFinding, int, error) {
	var findings []lintFinding
	purposes := map[string]bool{}
	for _, s := range subjects {
		for _, p := range lintPurposes(s, reg) {
			purposes[p] = true
			for _, r := range datasets {
				f, err := l.check(ctx, s, p, r)
				if err != nil {
					return nil, 0, err
				}
				if f != nil {
					findings = append(findings, *f)
				}
			}
		}
	}
	return findings, len(purposes), nil
}

// check returns the finding for a caller, purpose and dataset, nil when
// the caller may not both read and count it.
func (l *linter) check(ctx context.Context, s lintSubject, purpose string, r *policy.Resource) (*lintFinding, error) {
	read := l.input(s, purpose, r, "read")
	if !l.allows(ctx, read) {
		return nil, nil
	}
	stats := l.input(s, purpose, r, "stats")
	if !l.allows(ctx, stats) {
		return nil, nil
	}
	f := &lintFinding{Subject: s.ID, Roles: s.Roles, Dept: s.Dept, District: s.District, Purpose: purpose,
		Dataset: r.Source + "/" + r.Dataset, ReadJustified: read.Justification != "", StatsJustified: stats.Justification != ""}
	var err error
	if _, f.ReadRules, err = l.set.Trace(ctx, read); err != nil {
		return nil, fmt.Errorf("trace %s's read of %s: %w", s.ID, f.Dataset, err)
	}
	if _, f.StatsRules, err = l.set.Trace(ctx, stats); err != nil {
		return nil, fmt.Errorf("trace %s's statistics of %s: %w", s.ID, f.Dataset, err)
	}
	for _, rules := range [][]policy.RuleLocation{f.ReadRules, f.StatsRules} {
		for i := range rules {
			rules[i].File = filepath.Join(l.dir, rules[i].File)
		}
	}
	return f, nil
}

// input is the policy input of a caller's request, as the gateway builds
// it for GET /v1/{source}/{dataset} (read, with no parameters, as its
// run-time refusal asks) and GET /v1/{source}/{dataset}/stats.
func (l *linter) input(s lintSubject, purpose string, r *policy.Resource, action string) *policy.Input {
	in := &policy.Input{
		Subject: policy.Subject{ID: s.ID, Roles: s.Roles, Dept: s.Dept, District: s.District, Claims: s.Claims},
		Purpose: purpose, Action: action, Resource: r, Time: l.now,
		Request: policy.Request{Method: "GET", Path: "/v1/" + r.Source + "/" + r.Dataset, Params: map[string][]string{}},
	}
	if action == "stats" {
		q := lintStats
		in.Stats = &q
		in.Request.Path += "/stats"
		in.Request.Params = map[string][]string{"metric": {q.Metric}, "epsilon": {fmt.Sprint(q.Epsilon)}}
	}
	return in
}

// allows reports whether the policies allow in, as is or with a stated
// justification; in is left as it was allowed. A failing evaluation is a
// deny, as in the gateway, and is reported on stderr.
func (l *linter) allows(ctx context.Context, in *policy.Input) bool {
	for _, j := range []string{"", lintJustification} {
		in.Justification = j
		d, err := l.set.Decide(ctx, in)
		if err != nil {
			if msg := err.Error(); !l.warned[msg] {
				l.warned[msg] = true
				fmt.Fprintf(l.stderr, "policy lint: %s %s of %s/%s: %v (a deny)\n", in.Subject.ID, in.Action, in.Resource.Source, in.Resource.Dataset, err)
			}
			continue
		}
		// The gateway serves statistics only under an allowing decision
		// with limits (gateway/stats.go).
		if d.Allow && (in.Action != "stats" || d.Stats != nil) {
			return true
		}
	}
	in.Justification = ""
	return false
}

// printFinding prints a finding on one line, for a person.
func printFinding(w io.Writer, f lintFinding) {
	who := []string{f.Subject}
	for _, kv := range [][2]string{{"dept", f.Dept}, {"district", f.District}, {"purpose", f.Purpose}} {
		if kv[1] != "" {
			who = append(who, kv[0]+" "+kv[1])
		}
	}
	if f.Purpose == "" {
		who = append(who, "no purpose")
	}
	roles := strings.Join(f.Roles, "+")
	if roles == "" {
		roles = "no role"
	}
	read, stats := "read", "count"
	if f.ReadJustified {
		read += " (stating a justification)"
	}
	if f.StatsJustified {
		stats += " (stating a justification)"
	}
	fmt.Fprintf(w, "FOUND %s (%s) may %s and %s %s: read by %s; stats by %s\n", roles, strings.Join(who, ", "),
		read, stats, f.Dataset, ruleChain(f.ReadRules), ruleChain(f.StatsRules))
}

// ruleChain names the rules a decision came from: the one that built it,
// then those that handed it on.
func ruleChain(rules []policy.RuleLocation) string {
	if len(rules) == 0 {
		return "no single rule (the decision is assembled from several)"
	}
	s := make([]string, len(rules))
	for i, r := range rules {
		s[i] = r.String()
	}
	return strings.Join(s, " via ")
}

// readRegistry reads data.registry of the policies; a policy set without
// one has an empty registry.
func readRegistry(set *policy.Set) (*lintRegistry, error) {
	data := set.Data()
	reg := &lintRegistry{}
	v, ok := data["registry"]
	if !ok {
		return reg, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, reg); err != nil {
		return nil, fmt.Errorf("data.registry of %s: %w", set.Dir(), err)
	}
	return reg, nil
}

// configResources are the configured datasets as the policy sees them.
func configResources(cfg *gateway.Config) []*policy.Resource {
	var rs []*policy.Resource
	for _, sc := range cfg.Sources {
		for _, dc := range sc.Datasets {
			rs = append(rs, dc.Resource(sc.Name))
		}
	}
	return rs
}

// registryResources are the datasets keyed in data.registry.stats
// ("source/dataset"), with neither classification nor fields.
func registryResources(reg *lintRegistry) []*policy.Resource {
	var rs []*policy.Resource
	for _, key := range slices.Sorted(maps.Keys(reg.Stats)) {
		src, ds, ok := strings.Cut(key, "/")
		if !ok || src == "" || ds == "" {
			continue
		}
		rs = append(rs, &policy.Resource{Source: src, Dataset: ds, Fields: map[string]policy.FieldInfo{}})
	}
	return rs
}

// readSubjects reads --subjects.
func readSubjects(path string) ([]lintSubject, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--subjects: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var subjects []lintSubject
	if err := dec.Decode(&subjects); err != nil {
		return nil, fmt.Errorf("--subjects %s: %w", path, err)
	}
	if len(subjects) == 0 {
		return nil, fmt.Errorf("--subjects %s: no subjects", path)
	}
	for i := range subjects {
		s := &subjects[i]
		if s.ID == "" {
			return nil, fmt.Errorf("--subjects %s: subject %d has no id", path, i)
		}
		if s.Roles == nil {
			s.Roles = []string{}
		}
		if s.Claims == nil {
			s.Claims = tokenClaimsOf(s)
		}
	}
	return subjects, nil
}

// defaultSubjects are the demo's callers, then a caller of each role in
// data.registry.precedence that none of them holds.
func defaultSubjects(reg *lintRegistry) []lintSubject {
	var subjects []lintSubject
	held := map[string]bool{}
	for _, r := range demoRoles {
		c := r.claims
		s := lintSubject{ID: c.Subject, Roles: c.Roles, Dept: c.Dept, District: c.District, Purpose: c.Purpose}
		s.Claims = tokenClaimsOf(&s)
		s.Claims["iss"], s.Claims["aud"] = demoIssuer, demoAudience
		subjects = append(subjects, s)
		for _, role := range c.Roles {
			held[role] = true
		}
	}
	for _, role := range reg.Precedence {
		if held[role] {
			continue
		}
		held[role] = true
		s := lintSubject{ID: role, Roles: []string{role}}
		s.Claims = tokenClaimsOf(&s)
		subjects = append(subjects, s)
	}
	return subjects
}

// tokenClaimsOf are the claims of a token that says what s is, as the
// gateway hands them to the policy (see signToken).
func tokenClaimsOf(s *lintSubject) map[string]any {
	roles := make([]any, len(s.Roles))
	for i, r := range s.Roles {
		roles[i] = r
	}
	c := map[string]any{"sub": s.ID, "roles": roles}
	for k, v := range map[string]string{"dept": s.Dept, "district": s.District, "purpose": s.Purpose} {
		if v != "" {
			c[k] = v
		}
	}
	return c
}

// lintPurposes are the purposes tried for s: its own, none, and every
// registered one.
func lintPurposes(s lintSubject, reg *lintRegistry) []string {
	ps := []string{s.Purpose, ""}
	for _, p := range slices.Sorted(maps.Keys(reg.Purposes)) {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	if s.Purpose == "" {
		ps = ps[1:]
	}
	return ps
}
