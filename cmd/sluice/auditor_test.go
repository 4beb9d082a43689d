package main

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluicegw/sluice/internal/browsertest"
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

// TestAuditorPageInHeadlessChromium drives the auditor page in a real
// browser, at a desktop width and a phone's: sign in with the auditor
// token, see the chain status, the events with their reasons and paths,
// the auditor's own reads hidden until asked for, a count that says what
// the rows are, one event's obligations, and the charts; keyboard only,
// and never wider than the window.
func TestAuditorPageInHeadlessChromium(t *testing.T) {
	exe := browsertest.Chromium(t)
	d := startDemo(t, t.TempDir())
	gw, tok := d.manifest.Gateway, d.manifest.Tokens
	get(t, gw+"/v1/health/visits?page_size=5", tok["analyst"])
	get(t, gw+"/v1/civil/assistance?page_size=5", tok["caseworker"])
	get(t, gw+"/v1/police/residents", tok["public"])
	denial := get(t, gw+"/v1/health/visits", tok["public"]).header.Get("X-Request-Id")
	get(t, gw+"/v1/health/visits/stats?metric=count&group_by=district&epsilon=0.5", tok["public"])
	get(t, gw+"/v1/health/visits/P-0001-no-such-visit", tok["public"]) // its path holds a 70-character hash
	denied := get(t, gw+"/audit/v1/events?request_id="+denial, tok["auditor"]).json(t)["events"].([]any)
	if len(denied) != 1 {
		t.Fatalf("the public read's record: %v", denied)
	}
	want := denied[0].(map[string]any)
	if want["decision"] != "deny" || want["reason"] == "" {
		t.Fatalf("the public read of health/visits was not denied with a reason: %v", want)
	}

	tab := browsertest.New(t, exe, 120*time.Second)
	tab.ServerLog = d.stderr.String
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(tab.Context(), chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// The table's rows, each as its cells keyed by column.
	const rows = `[...document.querySelectorAll("#events tbody tr.event")].map(tr =>
		Object.fromEntries([...tr.children].map(td => [td.className.split(" ")[0].slice(2), td.textContent])))`
	// The count the label states, the records it says they are of, and the
	// rows; the chain badge's records.
	const counts = `(() => { const m = document.querySelector("#events-count").textContent.match(/^Showing (\d+) of the (\d+) record/) || [];
		const c = document.querySelector("#chain").textContent.match(/(\d+) records? verified/) || [];
		return { shown: +m[1], of: +m[2], rows: document.querySelectorAll("#events tbody tr.event").length, chain: +c[1] }; })()`
	countsAgree := `(() => { const c = ` + counts + `; return c.shown === c.rows && c.of === c.chain; })()`
	// The hours chart's text stays inside its drawing and no two labels
	// on one line overlap.
	const chartText = `[...document.querySelectorAll(".chart svg")].every(s => {
		const w = s.viewBox.baseVal.width, b = [...s.querySelectorAll("text")].map(t => t.getBBox());
		return b.every(r => r.x >= 0 && r.x + r.width <= w) &&
			b.every((r, i) => b.every((q, j) => j <= i || r.y !== q.y || r.x + r.width <= q.x || q.x + q.width <= r.x)); })`

	tab.Run("sign in",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(gw+"/audit/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), tok["auditor"]),
		chromedp.Click(chromedp.CSS("#signin-form button")),
		chromedp.WaitVisible(chromedp.CSS("#events tbody tr.event td.c-request_id")),
	)
	tab.Expect("chain badge never said intact", `document.querySelector("#chain").textContent.includes("intact")`, `document.querySelector("#chain").textContent`)
	tab.Expect("charts not drawn", `document.querySelectorAll(".chart svg").length === 1 && document.querySelectorAll(".chart .bars li").length >= 2`,
		`document.querySelector(".charts").textContent`)
	if n := tab.Eval(`String(document.querySelectorAll("th:not([scope])").length)`); n != "0" {
		t.Errorf("%s table headers without scope", n)
	}
	if strings.Contains(tab.Eval(`document.location.toString()`), tok["auditor"]) {
		t.Error("the token is in the page URL")
	}

	// A release shows as two rows with one request id: its decision record
	// ("decided", no rows yet) and its outcome (200).
	tab.Expect("the releases' decision and outcome rows are not both shown", `(() => { const r = `+rows+`;
		const decided = r.filter(c => c.status === "decided" && c.rows === "—").map(c => c.request_id);
		return decided.length >= 2 && decided.every(id => r.some(c => c.request_id === id && c.status === "200")); })()`,
		`JSON.stringify(`+rows+`)`)

	// The page's own API calls are the auditor's reads: hidden until the
	// toggle shows them, and the count says so each time.
	own := `(` + rows + `).filter(c => c.action === "audit").length`
	tab.Expect("the auditor's own reads are listed by default, or the count disagrees with the rows or the chain",
		own+` === 0 && `+countsAgree+` && document.querySelector("#events-count").textContent.includes("Hidden:")`,
		`JSON.stringify([`+counts+`, document.querySelector("#events-count").textContent])`)
	tab.Run("show my own reads by keyboard", chromedp.Focus(chromedp.CSS("#show-own")), chromedp.KeyEvent(" "))
	tab.Expect("the auditor's own reads did not appear, or the count disagrees with the rows or the chain",
		own+` > 0 && (`+rows+`).filter(c => c.action === "audit").every(c => c.subject === "audrey (you)") && `+countsAgree,
		`JSON.stringify([`+counts+`, document.querySelector("#events-count").textContent])`)
	tab.Run("hide my own reads", chromedp.KeyEvent(" "))
	tab.Expect("the auditor's own reads are not hidden again", own+` === 0 && `+countsAgree, counts)

	for _, w := range []struct {
		width, height int64
		screenshot    string
	}{{1280, 900, "auditor-page.png"}, {1024, 768, ""}, {390, 844, "auditor-page-phone.png"}, {360, 740, ""}} {
		tab.Run(fmt.Sprintf("resize to %d px", w.width), chromedp.EmulateViewport(w.width, w.height),
			chromedp.Click(chromedp.CSS(`#filters button[type="reset"]`)))
		tab.Expect(fmt.Sprintf("unfiltered at %d px: the count disagrees with the rows or the chain", w.width), countsAgree, counts)
		tab.Expect(fmt.Sprintf("the page is wider than the window at %d px", w.width), browsertest.NoOverflow, browsertest.Widths)
		tab.Expect(fmt.Sprintf("chart labels overlap or are cut at %d px", w.width), chartText,
			`JSON.stringify([...document.querySelectorAll(".chart svg text")].map(t => [t.textContent, t.getBBox().x, t.getBBox().width]))`)
		if w.screenshot != "" {
			tab.Screenshot(filepath.Join("..", "..", "docs", w.screenshot))
		}

		// Filter to denials: only denied events remain, and the public
		// read's row says why and what it asked for.
		tab.Run(fmt.Sprintf("filter to denials at %d px", w.width),
			chromedp.SetValue(chromedp.CSS(`#filters select[name="decision"]`), "deny"),
			chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)),
		)
		tab.Expect(fmt.Sprintf("the decision filter did not leave only denials at %d px", w.width),
			`(() => { const r = `+rows+`; return r.length >= 2 && r.every(c => c.decision === "deny"); })()`, `JSON.stringify(`+rows+`)`)
		tab.Expect(fmt.Sprintf("the denial's reason and path are not in its row at %d px (want %q, %q)", w.width, want["reason"], want["path"]),
			fmt.Sprintf(`(`+rows+`).some(c => c.request_id === %q && c.reason === %q && c.path === "GET " + %q)`,
				denial, want["reason"], want["path"]),
			`JSON.stringify(`+rows+`)`)
		tab.Expect(fmt.Sprintf("filtered at %d px: the count disagrees with the rows", w.width),
			`(() => { const c = `+counts+`; return c.shown === c.rows; })()`, counts)

		// Keyboard: focus the newest denial and open it with Enter; the
		// opened record fits the window too.
		tab.Run(fmt.Sprintf("open an event by keyboard at %d px", w.width),
			chromedp.Focus(chromedp.CSS("#events tbody tr.event button.open")),
			chromedp.KeyEvent("\r"),
			chromedp.WaitVisible(chromedp.CSS("#detail")),
		)
		if detail := text("#detail"); !strings.Contains(detail, "Request id") || !strings.Contains(detail, "Obligations") {
			t.Errorf("detail view: %q", detail)
		}
		tab.Expect(fmt.Sprintf("the opened event does not fit the window at %d px", w.width),
			browsertest.NoOverflow+` && (() => { const d = document.querySelector("#detail"), r = d.getBoundingClientRect();
				return r.left >= 0 && r.right <= document.documentElement.clientWidth && d.scrollWidth <= d.clientWidth; })()`,
			`(() => { const d = document.querySelector("#detail"), r = d.getBoundingClientRect();
				return JSON.stringify({ left: r.left, right: r.right, scrollWidth: d.scrollWidth, clientWidth: d.clientWidth, page: `+browsertest.Widths+` }); })()`)
		tab.Run("close the detail by keyboard", chromedp.KeyEvent("\r"), chromedp.WaitNotVisible(chromedp.CSS("#detail")))
		tab.Expect("closing the detail did not return the focus to the record", `document.activeElement.matches("#events button.open")`,
			`document.activeElement.outerHTML`)
	}

	// Signing out leaves no token behind and shows the sign-in form.
	tab.Run("sign out",
		chromedp.Click(chromedp.CSS("#signout")),
		chromedp.WaitVisible(chromedp.CSS("#signin")),
	)
	if stored := tab.Eval(`sessionStorage.getItem("sluice.audit.token") || ""`); stored != "" {
		t.Error("signing out left the token in session storage")
	}

	// An analyst token is refused by the API, so the page stays at sign-in.
	tab.Run("sign in as analyst",
		chromedp.SendKeys(chromedp.CSS("#token"), tok["analyst"]),
		chromedp.Click(chromedp.CSS("#signin-form button")),
	)
	if _, err := chromedp.Run(tab.Context(), chromedp.Poll[bool](`document.querySelector("#signin-error").textContent.includes("forbidden")`,
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
		// 0.5 for the public's query, 0.2 for the demo's open table of visits
		`sluice_privacy_epsilon_spent_total{dataset="visits",source="health"} 0.7`,
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
