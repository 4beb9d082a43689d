package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/gateway"
	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/policy"
	berrors "go.etcd.io/bbolt/errors"
)

// policyCommands are sluice policy's subcommands.
var policyCommands = &group{
	name:    "policy",
	summary: "Test, evaluate, explain, assess and lint the Rego policies.",
	subcommands: []subcommand{
		{"test", "run the Rego tests of a policy directory (as opa test)", verdictCommand(runPolicyTest)},
		{"eval", "print the decision for an input document", runPolicyEval},
		{"explain", "print what a caller would get, without contacting upstreams", runPolicyExplain},
		{"risk", "report how far a caller's whole view of a dataset singles people out", runPolicyRisk},
		{"lint", "report callers the policies let both read and count a dataset", verdictCommand(runPolicyLint)},
	},
	examples: []string{
		"sluice policy test --coverage policies",
		"sluice policy explain --role analyst GET /v1/health/visits",
		"sluice policy risk --role analyst --dataset health/visits",
	},
}

// runPolicyTest runs the Rego tests of a directory, as `opa test` does,
// and with --coverage reports which policy lines they evaluated.
func runPolicyTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("policy test", "Run the Rego tests of a policy directory, as opa test does.")
	c.usage = "[flags] [DIR]"
	c.about = `DIR defaults to policies. Exit status: 0 when every test passes; 1 when a
test fails, none exists, or coverage is below --threshold; 2 on a usage
error or when the tests could not be run.`
	c.examples = []string{
		"sluice policy test policies",
		"sluice policy test policies -v --coverage --threshold 90",
		"sluice policy test --json policies",
	}
	fs := c.flags
	verbose := fs.Bool("v", false, "list every test (and, with --coverage, the lines not covered)")
	coverage := fs.Bool("coverage", false, "report test coverage of the policies, per file")
	threshold := fs.Float64("threshold", 0, "with --coverage: fail when coverage is below this percentage")
	asJSON := fs.Bool("json", false, "print results (and coverage, as `opa test --coverage` reports it) as JSON")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	dir := "policies"
	switch len(rest) {
	case 0:
	case 1:
		dir = rest[0]
	default:
		return usagef(c.name, "want at most one policy directory, got %q", rest)
	}
	if *threshold > 0 {
		*coverage = true
	}
	var (
		results []policy.TestResult
		cov     *policy.Coverage
	)
	if *coverage {
		results, cov, err = policy.TestWithCoverage(ctx, dir)
	} else {
		results, err = policy.Test(ctx, dir)
	}
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
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if results == nil {
			results = []policy.TestResult{}
		}
		out := map[string]any{"results": results, "passed": pass, "failed": fail, "skipped": skip}
		if cov != nil {
			out["coverage"] = cov
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			if !*verbose && (r.Pass || r.Skip) {
				continue
			}
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
		if cov != nil {
			printCoverage(stdout, cov, *verbose)
		}
		fmt.Fprintf(stdout, "%d passed, %d failed, %d skipped\n", pass, fail, skip)
	}
	if fail > 0 || len(results) == 0 {
		return &exitError{code: 1, msg: ""}
	}
	if cov != nil && cov.Coverage < *threshold {
		return &exitError{code: 1, msg: fmt.Sprintf("coverage %.1f%% is below the threshold %.1f%%", cov.Coverage, *threshold)}
	}
	return nil
}

// printCoverage prints the coverage per file and in total.
func printCoverage(w io.Writer, cov *policy.Coverage, verbose bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "coverage\t%.1f%%\t(%d of %d lines)\n", cov.Coverage, cov.CoveredLines, cov.CoveredLines+cov.NotCoveredLines)
	for _, name := range slices.Sorted(maps.Keys(cov.Files)) {
		f := cov.Files[name]
		line := fmt.Sprintf("  %s\t%.1f%%\t(%d of %d lines)", name, f.Coverage, f.CoveredLines, f.CoveredLines+f.NotCoveredLines)
		if verbose && len(f.NotCovered) > 0 {
			var rs []string
			for _, r := range f.NotCovered {
				if r.Start.Row == r.End.Row {
					rs = append(rs, fmt.Sprint(r.Start.Row))
				} else {
					rs = append(rs, fmt.Sprintf("%d-%d", r.Start.Row, r.End.Row))
				}
			}
			line += "\tnot covered: " + strings.Join(rs, ", ")
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// runPolicyEval prints the decision the policies give an input document.
func runPolicyEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("policy eval", "Print the decision the policies give an input document, as JSON.")
	c.usage = "--input FILE [--dir DIR]"
	c.examples = []string{
		"sluice policy eval --input request.json --dir policies",
		"sluice policy eval --input - < request.json",
	}
	dir := c.flags.String("dir", "policies", "policy directory")
	inputPath := c.flags.String("input", "", "input document (JSON, as in DESIGN.md; - for standard input)")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if err := c.noArgs(rest); err != nil {
		return err
	}
	if *inputPath == "" {
		return usagef(c.name, "--input is required")
	}
	var b []byte
	if *inputPath == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(*inputPath)
	}
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

// runPolicyExplain prints what a caller would get for one request, from
// the gateway's configuration and policies, without contacting any
// upstream.
func runPolicyExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("policy explain", "Print what a caller would get for one request, without contacting any upstream.")
	c.usage = "(--token T | --role R) [flags] [METHOD] PATH"
	c.about = `METHOD defaults to GET; PATH is the request's path and query. The token is
validated as the gateway validates it: one it would refuse exits 1.`
	c.examples = []string{
		"sluice policy explain --role analyst GET '/v1/health/visits?page_size=3'",
		"sluice policy explain /v1/civil/assistance --role caseworker --json",
		"sluice policy explain --token $TOKEN --config sluice.yaml --policies policies-next /v1/catalog",
	}
	fs := c.flags
	token := fs.String("token", "", "the caller's bearer token")
	role := fs.String("role", "", "explain for the demo token of this role (from DIR/demo.json)")
	dir := fs.String("dir", ".sluice-demo", "demo directory: its sluice.yaml is the configuration, its demo.json has --role's tokens")
	cfgPath := fs.String("config", "", "gateway configuration (default DIR/sluice.yaml)")
	polDir := fs.String("policies", "", "explain with the policies in this directory instead of the configured ones")
	purpose := fs.String("purpose", "", "the purpose the caller states (as the Sluice-Purpose header)")
	justification := fs.String("justification", "", "the justification the caller states (as the Sluice-Justification header)")
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	method, target := http.MethodGet, ""
	switch len(rest) {
	case 1:
		target = rest[0]
	case 2:
		method, target = strings.ToUpper(rest[0]), rest[1]
	default:
		return usagef(c.name, "want [METHOD] PATH, e.g. GET /v1/health/visits?page_size=3")
	}
	if (*token == "") == (*role == "") {
		return usagef(c.name, "give --token or --role")
	}
	if *cfgPath == "" {
		*cfgPath = filepath.Join(*dir, "sluice.yaml")
	}
	if *role != "" {
		b, err := os.ReadFile(filepath.Join(*dir, "demo.json"))
		if err != nil {
			return fmt.Errorf("--role needs the demo's tokens: %w", err)
		}
		var m demoManifest
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(*dir, "demo.json"), err)
		}
		if *token = m.Tokens[*role]; *token == "" {
			return usagef(c.name, "no demo token for role %q%s", *role, didYouMean(*role, slices.Sorted(maps.Keys(m.Tokens))))
		}
	}
	srv, stop, err := offlineGateway(ctx, *cfgPath, *polDir, nil, stderr)
	if err != nil {
		return err
	}
	defer stop()
	ex, err := srv.Explain(ctx, gateway.ExplainRequest{
		Token: *token, Purpose: *purpose, Justification: *justification, Method: method, Target: target,
	})
	if err != nil {
		var ge *gateway.Error
		switch {
		case errors.As(err, &ge) && ge.Code == "unauthenticated":
			return errors.New("the gateway would refuse this token: " + ge.Msg)
		case errors.As(err, &ge) && ge.Code == "bad_request":
			return usagef(c.name, "%s", ge.Msg)
		}
		return fmt.Errorf("policy explain: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(ex)
	}
	printExplanation(stdout, ex)
	return nil
}

// printExplanation prints an explanation for a person.
func printExplanation(w io.Writer, ex *gateway.Explanation) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintf(tw, "request\t%s %s\n", ex.Method, ex.Target)
	c := ex.Subject
	caller := fmt.Sprintf("%s, roles [%s]", c.ID, strings.Join(c.Roles, ", "))
	for _, kv := range [][2]string{{"dept", c.Dept}, {"district", c.District}, {"purpose", c.Purpose}, {"justification", c.Justification}} {
		if kv[1] != "" {
			caller += fmt.Sprintf(", %s %q", kv[0], kv[1])
		}
	}
	fmt.Fprintf(tw, "caller\t%s\n", caller)
	fmt.Fprintf(tw, "policy\trevision %s\n", ex.PolicyRevision)
	if ex.Decision != "" {
		fmt.Fprintf(tw, "decision\t%s: %s\n", ex.Decision, ex.Reason)
	}
	if len(ex.Flags) > 0 {
		fmt.Fprintf(tw, "audit flags\t%s\n", strings.Join(ex.Flags, ", "))
	}
	if ex.Served {
		switch ex.Action {
		case "read":
			fmt.Fprintf(tw, "answer\t200: fetched from %s and released as below\n", ex.Source)
		case "stats":
			fmt.Fprintf(tw, "answer\t200: a differentially private release from %s, within the limits below\n", ex.Source)
		default:
			fmt.Fprintf(tw, "answer\t200\n")
		}
	} else {
		fmt.Fprintf(tw, "answer\t%d %s: %s\n", ex.Status, ex.Error.Code, ex.Error.Message)
	}
	if len(ex.Fields) > 0 {
		fmt.Fprintf(tw, "fields\t\n")
		for _, f := range ex.Fields {
			fmt.Fprintf(tw, "  %s\t%s %s\t%s\n", f.Name, f.Type, f.Level, policy.RuleText(f.Treatment))
		}
	}
	if ex.Action == "read" && ex.Decision == "allow" {
		fmt.Fprintf(tw, "row filters\t%s\n", orNone(ex.Rows))
		fmt.Fprintf(tw, "parameters\tallowed: %s; forwarded upstream: %s\n", orNone(ex.Params), orNone(ex.Forwarded))
		if ex.Grant != "" {
			fmt.Fprintf(tw, "grant\t%s: released as it approved\n", ex.Grant)
		}
		if ex.MinK > 0 {
			l := ""
			if ex.MinL > 0 {
				l = fmt.Sprintf(" and %d distinct values of each sensitive field", ex.MinL)
			}
			fmt.Fprintf(tw, "k-anonymity\trecords released only in classes of at least %d people%s of the whole view; the rest suppressed\n", ex.MinK, l)
		}
		if ex.MaxRows > 0 {
			fmt.Fprintf(tw, "max rows\t%d\n", ex.MaxRows)
		} else {
			fmt.Fprintf(tw, "max rows\tno cap\n")
		}
	}
	if s := ex.Stats; s != nil {
		fmt.Fprintf(tw, "statistics\tmetrics %s; epsilon at most %g; group by %s\n", orNone(s.Metrics), s.MaxEpsilon, orNone(s.GroupBy))
		for _, f := range slices.Sorted(maps.Keys(s.Bounds)) {
			fmt.Fprintf(tw, "  bounds %s\t[%g, %g]\n", f, s.Bounds[f][0], s.Bounds[f][1])
		}
		fmt.Fprintf(tw, "  charged to\tthe %q allocation of the dataset's population\n", s.Account)
		if s.OrgBudget > 0 {
			fmt.Fprintf(tw, "  budgets\tcaller %g, organisation %g\n", s.ConsumerBudget, s.OrgBudget)
		} else {
			fmt.Fprintf(tw, "  budgets\tcaller %g\n", s.ConsumerBudget)
		}
	}
	if ex.Action == "catalog" {
		fmt.Fprintf(tw, "datasets\t%s\n", orNone(ex.Datasets))
	}
	if sh := ex.Shadow; sh != nil {
		if len(sh.Differences) == 0 {
			fmt.Fprintf(tw, "shadow\trevision %s decides the same (%s)\n", sh.Revision, sh.Decision)
		} else {
			fmt.Fprintf(tw, "shadow\trevision %s would differ:\n", sh.Revision)
			for _, d := range sh.Differences {
				fmt.Fprintf(tw, "  \t%s\n", d)
			}
		}
	}
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// noAudit is the audit log of `policy explain`, which releases nothing
// and so records nothing.
type noAudit struct{}

func (noAudit) Append(context.Context, *audit.Event) error {
	return errors.New("policy explain does not audit")
}
func (a noAudit) Begin(e *audit.Event) (audit.Pending, error) {
	return nil, a.Append(context.Background(), e)
}
func (a noAudit) Queue(e *audit.Event) error { return a.Append(context.Background(), e) }
func (noAudit) Err() error                   { return nil }

// livePolicies are the policy sets a gateway enforces and shadows, and
// the background work that keeps them current.
type livePolicies struct {
	active, shadow *policy.Engine
	stop           func()
}

// deps are the sets as the gateway takes them (a nil interface for no
// shadow).
func (lp *livePolicies) deps() (active, shadow gateway.Policies) {
	if lp.shadow != nil {
		return lp.active, lp.shadow
	}
	return lp.active, nil
}

// openPolicies loads the configured policies: the directory or the bundle,
// and the shadow directory. When live, it then keeps them current until
// stop: directories are watched, the bundle polled. A bundle that cannot
// be had at start is not fatal when live (the gateway is not ready until
// one is put in force), and is when not.
func openPolicies(ctx context.Context, cfg *gateway.Config, logger *slog.Logger, live bool) (*livePolicies, error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	lp := &livePolicies{stop: func() { cancel(); wg.Wait() }}
	fail := func(err error) (*livePolicies, error) { lp.stop(); return nil, err }
	pc := cfg.Policy
	// A gateway enforces only policies whose Rego tests pass, at start as
	// on every change; explaining needs no such gate.
	load := policy.Load
	if live {
		load = policy.LoadTested
	}
	watch := func(e *policy.Engine, dir string) {
		if !live || pc.Watch == nil || !*pc.Watch {
			return
		}
		wg.Go(func() {
			err := e.Watch(ctx, dir, policy.WatchOptions{Debounce: time.Duration(pc.Debounce), Logger: logger})
			if err != nil {
				logger.Error("policy directory not watched: changes need a restart", "dir", dir, "error", err)
			}
		})
	}
	if pc.Bundle != nil {
		src, err := bundleSource(cfg, logger)
		if err != nil {
			return fail(err)
		}
		lp.active = policy.NewEngine(nil)
		uctx, ucancel := context.WithTimeout(ctx, time.Duration(pc.Bundle.Timeout))
		err = src.Update(uctx, lp.active)
		ucancel()
		if err != nil && !live {
			return fail(fmt.Errorf("policy bundle: %w", err))
		}
		if live {
			wg.Go(func() { src.Poll(ctx, lp.active) })
		}
	} else {
		dir := cfg.Path(pc.Dir)
		set, err := load(ctx, dir)
		if err != nil {
			return fail(err)
		}
		lp.active = policy.NewEngine(set)
		watch(lp.active, dir)
	}
	if pc.ShadowDir != "" {
		dir := cfg.Path(pc.ShadowDir)
		set, err := load(ctx, dir)
		if err != nil {
			return fail(fmt.Errorf("policy.shadow_dir: %w", err))
		}
		lp.shadow = policy.NewEngine(set)
		watch(lp.shadow, dir)
	}
	return lp, nil
}

// bundleSource builds the bundle fetcher the configuration describes.
func bundleSource(cfg *gateway.Config, logger *slog.Logger) (*policy.BundleSource, error) {
	bc := cfg.Policy.Bundle
	opts := policy.BundleOptions{
		URL: bc.URL, KeyID: bc.Signing.KeyID, Scope: bc.Signing.Scope,
		Client:   &http.Client{Timeout: time.Duration(bc.Timeout)},
		MaxBytes: int64(bc.MaxBytes), Poll: time.Duration(bc.Poll), Logger: logger,
	}
	for i, k := range bc.Signing.Keys {
		file := k.PublicKeyFile
		if file == "" {
			file = k.SecretFile
		}
		b, err := os.ReadFile(cfg.Path(file))
		if err != nil {
			return nil, fmt.Errorf("policy.bundle.signing.keys[%d]: %w", i, err)
		}
		key := string(b)
		if k.SecretFile != "" {
			key = strings.TrimRight(key, "\r\n")
		}
		opts.Keys = append(opts.Keys, policy.BundleKey{ID: k.ID, Algorithm: k.Algorithm, Key: key})
	}
	if cr := bc.Credentials; cr != nil {
		var v string
		if cr.ValueFile != "" {
			b, err := os.ReadFile(cfg.Path(cr.ValueFile))
			if err != nil {
				return nil, fmt.Errorf("policy.bundle.credentials.value_file: %w", err)
			}
			v = strings.TrimRight(string(b), "\r\n")
		} else if v = os.Getenv(cr.ValueEnv); v == "" {
			return nil, fmt.Errorf("policy.bundle.credentials.value_env: %s is empty", cr.ValueEnv)
		}
		opts.Header = http.Header{http.CanonicalHeaderKey(cr.Header): {v}}
	}
	src, err := policy.NewBundleSource(opts)
	if err != nil {
		return nil, fmt.Errorf("policy.bundle: %w", err)
	}
	return src, nil
}

// offlineGateway builds, in process, the gateway the configuration at
// cfgPath describes, with the policies of polDir ("" for the
// configuration's own, shadow set included), auditing nothing: what
// `policy explain` and `policy risk` ask their questions of. now, when
// set, is its clock. stop releases the policies.
func offlineGateway(ctx context.Context, cfgPath, polDir string, now func() time.Time, stderr io.Writer) (*gateway.Server, func(), error) {
	cfg, err := gateway.LoadConfig(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	var pols *livePolicies
	if polDir != "" {
		set, err := policy.Load(ctx, polDir)
		if err != nil {
			return nil, nil, err
		}
		pols = &livePolicies{active: policy.NewEngine(set), stop: func() {}}
	} else if pols, err = openPolicies(ctx, cfg, quiet, false); err != nil {
		return nil, nil, err
	}
	active, shadow := pols.deps()
	hs, closeHub, err := offlineHub(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "note: the sharing hub's grants were not read (%v): a read under a grant is decided as without one\n", err)
	}
	srv, err := gateway.New(ctx, cfg, gateway.Deps{Audit: noAudit{}, Policies: active, Shadow: shadow, Logger: quiet, Now: now, Hub: hs, HubReadOnly: true})
	if err != nil {
		closeHub()
		pols.stop()
		return nil, nil, err
	}
	return srv, func() { closeHub(); pols.stop() }, nil
}

// offlineHub opens the configured hub's store to read the grants in
// force: Redis as the gateway does, or its bbolt file read-only — which a
// running gateway holds, so beside one the grants are not read.
func offlineHub(cfg *gateway.Config) (hub.Store, func(), error) {
	none := func() {}
	switch {
	case cfg.State.Path != "":
		b, err := hub.OpenBoltReadOnly(cfg.HubPath(), 200*time.Millisecond)
		if err != nil {
			if errors.Is(err, berrors.ErrTimeout) {
				return nil, none, errors.New("a running gateway holds its file")
			}
			return nil, none, err
		}
		return b, func() { b.Close() }, nil
	case cfg.State.Redis != nil:
		c, err := redisClient(cfg)
		if err != nil {
			return nil, none, err
		}
		h, err := hub.NewRedis(c, hub.RedisOptions{Prefix: cfg.State.Redis.Prefix})
		if err != nil {
			c.Close()
			return nil, none, err
		}
		return h, func() { c.Close() }, nil
	}
	return nil, none, nil
}
