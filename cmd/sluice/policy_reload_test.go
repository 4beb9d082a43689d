package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var versionRE = regexp.MustCompile(`\(v(\d+)\)`)

// setVersion rewrites the analyst's read grant in dir to version n: reason
// "... (vN)" and max_rows 1000+n.
func setVersion(t *testing.T, dir string, n int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "sluice.rego"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	src = regexp.MustCompile(`"reason": "analyst: public-health read of health visits[^"]*",`).
		ReplaceAllString(src, fmt.Sprintf(`"reason": "analyst: public-health read of health visits (v%d)",`, n))
	src = regexp.MustCompile(`"max_rows": 1\d\d\d,`).ReplaceAllString(src, fmt.Sprintf(`"max_rows": %d,`, 1000+n))
	if err := os.WriteFile(filepath.Join(dir, "sluice.rego"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

// revokeDemoGrants revokes every active grant the steward sees.
func revokeDemoGrants(t *testing.T, gw, steward string) {
	t.Helper()
	var gs struct{ Grants []struct{ ID string } }
	if err := hubCall(context.Background(), "GET", gw+"/v1/grants?state=active", steward, nil, &gs); err != nil || len(gs.Grants) == 0 {
		t.Fatalf("the demo's grants: %+v, %v", gs, err)
	}
	for _, g := range gs.Grants {
		if err := hubCall(context.Background(), "POST", gw+"/v1/grants/"+g.ID+"/revoke", steward, map[string]string{"reason": "test"}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// catalogVersion is the version of the analyst's read grant a catalog
// response shows, checked to be one version throughout the response.
func catalogVersion(t *testing.T, body []byte) (rev string, n int) {
	t.Helper()
	var c struct {
		Revision string `json:"policy_revision"`
		Datasets []struct {
			Source, Dataset string
			Read            struct {
				Reason  string `json:"reason"`
				MaxRows int    `json:"max_rows"`
			} `json:"read"`
		} `json:"datasets"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Errorf("catalog is not JSON: %v", err)
		return "", -1
	}
	for _, ds := range c.Datasets {
		if ds.Source == "health" && ds.Dataset == "visits" {
			return c.Revision, grantVersion(t, ds.Read.Reason, ds.Read.MaxRows)
		}
	}
	t.Errorf("catalog lacks health/visits: %s", body)
	return c.Revision, -1
}

// grantVersion reads the version from a reason and a max_rows, failing
// when they name two versions.
func grantVersion(t *testing.T, reason string, maxRows int) int {
	t.Helper()
	n := 0
	if m := versionRE.FindStringSubmatch(reason); m != nil {
		n, _ = strconv.Atoi(m[1])
	}
	if maxRows != 1000+n {
		t.Errorf("reason %q with max_rows %d: two policy versions in one decision", reason, maxRows)
		return -1
	}
	return n
}

// revisions maps each policy revision seen to the version it decided as,
// and fails when one revision decides as two versions.
type revisions struct {
	t  *testing.T
	mu sync.Mutex
	m  map[string]int
}

func (r *revisions) see(rev string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.m[rev]; ok && prev != n {
		r.t.Errorf("revision %s decided as v%d and as v%d", rev, prev, n)
	}
	r.m[rev] = n
}

// TestPolicyReloadUnderLoad changes the running demo's policies 50 times
// while requests run continuously: every request succeeds, and every
// response and audit record names one revision and a decision of that
// revision. A change that does not compile, and one that fails its Rego
// tests, are refused while the policy in force keeps answering.
func TestPolicyReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	pol := copyPolicies(t)
	p := start(t, "demo", "--addr", "127.0.0.1:0", "--dir", dir, "--policies", pol)
	d := &demoRun{proc: p, dir: dir}
	waitFor(t, p, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
		return err == nil && json.Unmarshal(b, &d.manifest) == nil
	})
	waitReady(t, p, d.manifest.Gateway)
	gw, analyst := d.manifest.Gateway, d.manifest.Tokens["analyst"]
	seen := &revisions{t: t, m: map[string]int{}}
	// The versions are of the analyst's own rule: the demo's grant, which
	// comes before it, is revoked first.
	revokeDemoGrants(t, gw, d.manifest.Tokens["steward_health"])

	// The version the gateway decides with now, by the catalog.
	current := func() int {
		r := fetch(t, gw+"/v1/catalog", analyst)
		if r.status != http.StatusOK {
			t.Errorf("catalog: %d %s", r.status, r.body)
			return -1
		}
		rev, n := catalogVersion(t, r.body)
		seen.see(rev, n)
		return n
	}
	waitVersion := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for current() != n {
			if time.Now().After(deadline) {
				t.Fatalf("v%d not in force after 30s; stderr:\n%s", n, p.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		requests atomic.Int64
		failures atomic.Int64
	)
	// Three callers, each pausing a little between requests so that the
	// reloads (compile and Rego tests) are not starved on two cores.
	for i := range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				path := "/v1/health/visits?page_size=2"
				if i == 0 {
					path = "/v1/catalog"
				}
				r := fetch(t, gw+path, analyst)
				requests.Add(1)
				if r.status != http.StatusOK {
					failures.Add(1)
					t.Errorf("GET %s during reloads: %d %s", path, r.status, r.body)
					continue
				}
				if i == 0 {
					rev, n := catalogVersion(t, r.body)
					seen.see(rev, n)
				}
			}
		})
	}

	const changes = 50
	began := time.Now()
	for n := 1; n <= changes; n++ {
		switch n {
		case 20:
			// Does not compile: refused, v19 keeps answering.
			os.WriteFile(filepath.Join(pol, "broken.rego"), []byte("package sluice\n\ndecision := {\n"), 0o600)
			waitRefused(t, gw, "rego_parse_error")
			if v := current(); v != n-1 {
				t.Errorf("after a broken change v%d answers, want v%d", v, n-1)
			}
			os.Remove(filepath.Join(pol, "broken.rego"))
		case 35:
			// Compiles, but weakens the analyst's k-anonymity: its Rego
			// test fails.
			rewrite(t, filepath.Join(pol, "sluice.rego"), `"min_k": 5,`, `"min_k": 2,`)
			waitRefused(t, gw, "Rego tests failed")
			if v := current(); v != n-1 {
				t.Errorf("after a change failing its tests v%d answers, want v%d", v, n-1)
			}
			rewrite(t, filepath.Join(pol, "sluice.rego"), `"min_k": 2,`, `"min_k": 5,`)
		}
		setVersion(t, pol, n)
		waitVersion(n)
	}
	elapsed := time.Since(began)
	close(stop)
	wg.Wait()

	if f := failures.Load(); f > 0 {
		t.Errorf("%d of %d requests failed during the reloads", f, requests.Load())
	}
	// Every audit record of the analyst's reads names a revision whose
	// decision it carries.
	reads := 0
	for _, rec := range auditRecords(t, filepath.Join(dir, "audit")) {
		if rec["action"] != "read" || rec["subject"] != "alice" {
			continue
		}
		reads++
		ob, _ := rec["obligations"].(map[string]any)
		mr, _ := ob["max_rows"].(float64)
		reason, _ := rec["reason"].(string)
		rev, _ := rec["policy_revision"].(string)
		if rev == "" {
			t.Errorf("audit record %v names no policy revision", rec["request_id"])
		}
		seen.see(rev, grantVersion(t, reason, int(mr)))
	}
	t.Logf("%d policy changes in %v (%v each) under %d requests (%d audited reads), %d revisions seen",
		changes, elapsed.Round(time.Millisecond), (elapsed / changes).Round(time.Millisecond), requests.Load(), reads, len(seen.m))
	if len(seen.m) < changes/2 {
		t.Errorf("only %d revisions answered requests, want most of the %d", len(seen.m), changes+1)
	}
	m := regexp.MustCompile(`sluice_policy_rejections_total\{set="active"\} (\d+)`).FindStringSubmatch(get(t, gw+"/metrics", "").String())
	if m == nil {
		t.Error(`/metrics lacks sluice_policy_rejections_total{set="active"}`)
	} else if n, _ := strconv.Atoi(m[1]); n < 2 {
		t.Errorf("/metrics counts %d refused changes, want at least the 2 made", n)
	}
}

// waitRefused waits until /readyz says the latest policy change was
// refused for a reason containing want.
func waitRefused(t *testing.T, gw, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := fetch(t, gw+"/readyz", "")
		if r.status != http.StatusOK {
			t.Fatalf("readyz %d while a refused change leaves the policy in force: %s", r.status, r.body)
		}
		if strings.Contains(string(r.body), "latest change refused") && strings.Contains(string(r.body), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz never showed the refused change (%s): %s", want, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// String is the body as text.
func (r response) String() string { return string(r.body) }

// serveDerived runs `sluice serve` on a copy of the demo's configuration
// edited by edit, with its own listener, audit trail and state, and
// returns the gateway's URL and its audit directory.
func serveDerived(t *testing.T, d *demoRun, name string, edit func(cfg string) string) (*proc, string, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dir, "sluice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := regexp.MustCompile(`(?m)^listen: .*$`).ReplaceAllString(string(b), "listen: 127.0.0.1:0")
	cfg = strings.NewReplacer(
		"  dir: audit\n", "  dir: audit-"+name+"\n",
		"witness_file: audit-witness.json", "witness_file: audit-witness-"+name+".json",
		"path: state/", "path: state-"+name+"/",
	).Replace(cfg)
	cfg = edit(cfg)
	path := filepath.Join(d.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, "serve", "--config", path)
	return p, listening(t, p), filepath.Join(d.dir, "audit-"+name)
}

// setPolicy replaces the policy block of a configuration.
func setPolicy(cfg, block string) string {
	return regexp.MustCompile(`(?m)^policy:\n(  .*\n)+`).ReplaceAllString(cfg, "policy:\n"+block)
}

// TestShadowPolicyDifferencesAreAuditedWhileCallersAreUnaffected runs a
// gateway with a shadow policy that denies the analyst what the active one
// allows: the analyst still gets the records, the audit record and the
// metrics say how the shadow differs; moving the shadow's files into the
// policy directory then puts it in force.
func TestShadowPolicyDifferencesAreAuditedWhileCallersAreUnaffected(t *testing.T) {
	d := startDemo(t, t.TempDir())
	active, shadow := copyPolicies(t), copyPolicies(t)
	rewrite(t, filepath.Join(shadow, "sluice.rego"), `purpose.permits("analyst", "read", dataset)`, `purpose.permits("analyst", "read", dataset)
	input.subject.id != "alice"`)
	// The shadow's own tests expect the old grant: a shadow is not gated
	// on them when it loads, but a promotion is, so keep them in step.
	rewrite(t, filepath.Join(shadow, "sluice_test.rego"), `analyst := {"id": "alice",`, `analyst := {"id": "ann",`)
	p, gw, auditDir := serveDerived(t, d, "shadow", func(cfg string) string {
		return setPolicy(cfg, fmt.Sprintf("  dir: %s\n  shadow_dir: %s\n  debounce: 50ms\n", active, shadow))
	})
	waitReady(t, p, gw)
	analyst := d.manifest.Tokens["analyst"]

	direct := get(t, d.manifest.Gateway+"/v1/health/visits?page_size=5", analyst)
	r := get(t, gw+"/v1/health/visits?page_size=5", analyst)
	if r.status != http.StatusOK || r.String() != direct.String() {
		t.Fatalf("with a denying shadow the analyst got %d %s; want what the active policy releases", r.status, r.body)
	}
	rec := recordFor(t, auditDir, r.header.Get("X-Request-Id"))
	sh, _ := rec["shadow"].(map[string]any)
	if sh == nil || !strings.Contains(fmt.Sprint(sh["differences"]), "allow: true → false") || sh["revision"] == rec["policy_revision"] {
		t.Fatalf("audit record shadow %v, want the shadow's revision and allow: true → false", rec["shadow"])
	}
	// Where the shadow agrees, the record carries nothing.
	r = get(t, gw+"/v1/civil/assistance", d.manifest.Tokens["caseworker"])
	if rec := recordFor(t, auditDir, r.header.Get("X-Request-Id")); rec["shadow"] != nil {
		t.Errorf("caseworker's record carries shadow %v, want none", rec["shadow"])
	}
	m := get(t, gw+"/metrics", "").String()
	if !strings.Contains(m, "sluice_policy_shadow_differences_total 1") {
		t.Errorf("/metrics lacks sluice_policy_shadow_differences_total 1")
	}
	ready := get(t, gw+"/readyz", "").String()
	if !strings.Contains(ready, `"shadow_policy":{"ok":true`) {
		t.Errorf("readyz lacks the shadow policy: %s", ready)
	}

	// Promotion is a file move.
	if err := os.Rename(filepath.Join(shadow, "sluice.rego"), filepath.Join(active, "sluice.rego")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(shadow, "sluice_test.rego"), filepath.Join(active, "sluice_test.rego")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, func() bool {
		return get(t, gw+"/v1/health/visits?page_size=5", analyst).status == http.StatusForbidden
	})
}
