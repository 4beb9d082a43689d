package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestAuditorAPIServesOnlyAuditorsAndIsAudited: the auditor API answers
// the auditor role alone, filters and pages the trail, and every one of
// its requests lands in the trail as well.
func TestAuditorAPIServesOnlyAuditorsAndIsAudited(t *testing.T) {
	d := startDemo(t, t.TempDir())
	gw, tok := d.manifest.Gateway, d.manifest.Tokens
	get(t, gw+"/v1/health/visits?page_size=3", tok["analyst"])
	get(t, gw+"/v1/health/visits", tok["public"])
	get(t, gw+"/v1/health/visits", "")

	for _, role := range []string{"analyst", "public", "caseworker", "officer"} {
		expectError(t, get(t, gw+"/audit/v1/events", tok[role]), http.StatusForbidden, "forbidden")
	}
	expectError(t, get(t, gw+"/audit/v1/events", ""), http.StatusUnauthorized, "unauthenticated")

	r := get(t, gw+"/audit/v1/events?decision=deny&order=oldest", tok["auditor"])
	if r.status != http.StatusOK {
		t.Fatalf("events: %d %s", r.status, r.body)
	}
	events := r.json(t)["events"].([]any)
	if len(events) < 2 {
		t.Fatalf("want the public refusal and the unauthenticated request among the denials, got %d events", len(events))
	}
	for _, e := range events {
		if e.(map[string]any)["decision"] != "deny" {
			t.Errorf("decision filter let through %v", e)
		}
	}

	page := get(t, gw+"/audit/v1/events?limit=2", tok["auditor"]).json(t)
	next, _ := page["next_cursor"].(string)
	if len(page["events"].([]any)) != 2 || next == "" {
		t.Fatalf("limit=2: %v", page)
	}
	second := get(t, gw+"/audit/v1/events?limit=2&cursor="+url.QueryEscape(next), tok["auditor"]).json(t)
	if first, again := page["events"].([]any)[0].(map[string]any)["seq"], second["events"].([]any)[0].(map[string]any)["seq"]; first == again {
		t.Errorf("the second page repeats seq %v", first)
	}

	v := get(t, gw+"/audit/v1/verify", tok["auditor"]).json(t)
	if v["ok"] != true {
		t.Errorf("verify over the API: %v", v)
	}
	sum := get(t, gw+"/audit/v1/summary", tok["auditor"]).json(t)
	if len(sum["hours"].([]any)) == 0 || len(sum["denied"].([]any)) == 0 {
		t.Errorf("summary without hours or denials: %v", sum)
	}

	for _, bad := range []string{"?decision=maybe", "?since=yesterday", "?limit=0", "?cursor=bogus", "?colour=red"} {
		expectError(t, get(t, gw+"/audit/v1/events"+bad, tok["auditor"]), http.StatusBadRequest, "bad_request")
	}

	// The auditor's own searches are in the trail.
	last := get(t, gw+"/audit/v1/events?action=audit&limit=1", tok["auditor"])
	ev := last.json(t)["events"].([]any)
	if len(ev) != 1 || ev[0].(map[string]any)["subject"] != "audrey" {
		t.Errorf("the auditor's requests are not audited: %s", last.body)
	}
}

// chromium finds the browser; in CI its absence is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (make deps installs it)")
	}
	t.Skip("chromium is not installed; run make deps")
	return ""
}

// TestAuditorPageInHeadlessChromium drives the auditor page in a real
// browser: sign in with the auditor token, see the chain status, the
// events, one event's obligations, and the charts; keyboard only.
func TestAuditorPageInHeadlessChromium(t *testing.T) {
	exe := chromium(t)
	d := startDemo(t, t.TempDir())
	gw, tok := d.manifest.Gateway, d.manifest.Tokens
	get(t, gw+"/v1/health/visits?page_size=5", tok["analyst"])
	get(t, gw+"/v1/civil/assistance?page_size=5", tok["caseworker"])
	get(t, gw+"/v1/police/residents", tok["public"])
	get(t, gw+"/v1/health/visits", tok["public"])

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\ngateway stderr:\n%s", what, err, d.stderr.String())
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+"`"+sel+"`"+`).length`))
		if err != nil {
			t.Fatalf("counting %s: %v", sel, err)
		}
		return n
	}

	run("sign in",
		chromedp.Navigate(gw+"/audit/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), tok["auditor"]),
		chromedp.Click(chromedp.CSS("#signin-form button")),
		chromedp.WaitVisible(chromedp.CSS("#events tbody tr td.mono")),
	)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#chain").textContent.includes("intact")`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Errorf("chain badge never said intact: %q (%v)", text("#chain"), err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll(".chart svg").length >= 2`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Errorf("charts not drawn: %d svg (%v)", count(".chart svg"), err)
	}
	if n := count("#events tbody tr[tabindex]"); n < 5 {
		t.Errorf("%d event rows, want the 5 requests and the page's own", n)
	}
	// A release shows as two rows with one request id: its decision record
	// ("decided", no rows yet) and its outcome (200).
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const r = [...document.querySelectorAll("#events tbody tr[tabindex]")];
		const cell = (tr, i) => tr.children[i].textContent;
		const decided = r.filter(tr => cell(tr, 6) === "decided" && cell(tr, 7) === "—").map(tr => cell(tr, 8));
		return decided.length >= 2 && decided.every(id => r.some(tr => cell(tr, 8) === id && cell(tr, 6) === "200")); })()`,
		chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		t.Errorf("the releases' decision and outcome rows are not both shown: %v", err)
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(location, tok["auditor"]) {
		t.Error("the token is in the page URL")
	}

	// Filter to denials: only denied events remain.
	run("filter to denials",
		chromedp.SetValue(chromedp.CSS(`#filters select[name="decision"]`), "deny"),
		chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)),
	)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const r = [...document.querySelectorAll("#events tbody tr[tabindex]")];
		return r.length >= 2 && r.every(tr => tr.children[5].textContent === "deny"); })()`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Errorf("the decision filter did not leave only denials (%d rows): %v", count("#events tbody tr[tabindex]"), err)
	}

	// Keyboard: focus the newest denial and open it with Enter.
	run("open an event by keyboard",
		chromedp.Focus(chromedp.CSS("#events tbody tr[tabindex]")),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#detail")),
	)
	if detail := text("#detail"); !strings.Contains(detail, "Request id") || !strings.Contains(detail, "Obligations") {
		t.Errorf("detail view: %q", detail)
	}

	// The screenshot is a build artefact: SLUICE_SCREENSHOT names where it
	// goes (the README's docs/auditor-page.png), else the temp dir.
	path := os.Getenv("SLUICE_SCREENSHOT")
	if path == "" {
		path = filepath.Join(os.TempDir(), "sluice-auditor-page.png")
	}
	{
		run("close the detail", chromedp.Click(chromedp.CSS("#detail button")))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Clean(path), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the auditor page: %s", path)
		run("reopen", chromedp.Focus(chromedp.CSS("#events tbody tr[tabindex]")), chromedp.KeyEvent("\r"),
			chromedp.WaitVisible(chromedp.CSS("#detail")))
	}

	// Signing out leaves no token behind and shows the sign-in form.
	run("sign out",
		chromedp.Click(chromedp.CSS("#detail button")),
		chromedp.Click(chromedp.CSS("#signout")),
		chromedp.WaitVisible(chromedp.CSS("#signin")),
	)
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("sluice.audit.token") || ""`))
	if err != nil {
		t.Fatal(err)
	}
	if stored != "" {
		t.Error("signing out left the token in session storage")
	}

	// An analyst token is refused by the API, so the page stays at sign-in.
	run("sign in as analyst",
		chromedp.SendKeys(chromedp.CSS("#token"), tok["analyst"]),
		chromedp.Click(chromedp.CSS("#signin-form button")),
	)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#signin-error").textContent.includes("forbidden")`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("analyst sign-in: %q (%v)", text("#signin-error"), err)
	}
	if msg := text("#signin-error"); !strings.Contains(msg, "forbidden") {
		t.Errorf("analyst sign-in message %q, want the forbidden refusal", msg)
	}
}

// TestMetricsOnTheDemo: /metrics of a running gateway carries the audit
// group-commit metrics, ε spent per dataset, policy and request counters,
// and the Go runtime's.
func TestMetricsOnTheDemo(t *testing.T) {
	d := startDemo(t, t.TempDir())
	gw, tok := d.manifest.Gateway, d.manifest.Tokens
	get(t, gw+"/v1/health/visits?page_size=3", tok["analyst"])
	if r := get(t, gw+"/v1/health/visits/stats?metric=count&group_by=district&epsilon=0.5", tok["public"]); r.status != http.StatusOK {
		t.Fatalf("stats: %d %s", r.status, r.body)
	}
	r := get(t, gw+"/metrics", "")
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: %d", r.status)
	}
	body := string(r.body)
	for _, want := range []string{
		`sluice_privacy_epsilon_spent_total{dataset="visits",source="health"} 0.5`,
		`sluice_http_requests_total{decision="allow",route="read",status="200"} 1`,
		`sluice_http_requests_total{decision="allow",route="stats",status="200"} 1`,
		`sluice_audit_fsync_duration_seconds_count`,
		`sluice_audit_batch_records_bucket`,
		`sluice_policy_activations_total`,
		`sluice_stage_duration_seconds_bucket{stage="transform"`,
		`go_goroutines`,
		"\ngo_gc_heap_live_bytes ", // the heap a leak grows, for the bench's soak
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
