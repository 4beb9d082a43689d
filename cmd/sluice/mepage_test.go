package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/internal/browsertest"
)

// meUsage is the part of GET /v1/me/usage the citizen's page shows.
type meUsage struct {
	Trail struct {
		Verified bool   `json:"verified"`
		Problem  string `json:"problem"`
	} `json:"trail"`
	Releases []struct {
		RequestID string            `json:"request_id"`
		Dataset   string            `json:"dataset"`
		Dept      string            `json:"dept"`
		Fields    map[string]string `json:"fields"`
	} `json:"releases"`
}

// meObjection is the part of an objection the test checks.
type meObjection struct {
	ID       string `json:"id"`
	Release  string `json:"release"`
	RecordID string `json:"record_id"`
	State    string `json:"state"`
	Claim    string `json:"claim"`
}

// TestMePageShowsWhoUsedACitizensDataAndFilesTheirObjectionsInHeadlessChromium
// drives the citizen's page in a real browser at a desktop's width and a
// phone's. After the analyst pages through every visit and the
// caseworker through her cases, the citizen signs in with their token and
// sees exactly the releases the API lists, newest first by day, each with
// its department, purpose, basis and fields in words, and the trail's
// verified badge; the labels switch to Chinese. Asking why about a
// release files an objection the API holds with that release; an
// objection to a record without a claim is refused by the page and sends
// nothing, and one to a record that is not theirs shows the gateway's
// refusal. A token that names no person is turned away, and the page is
// never wider than the window.
func TestMePageShowsWhoUsedACitizensDataAndFilesTheirObjectionsInHeadlessChromium(t *testing.T) {
	exe := browsertest.Chromium(t)
	d := startDemo(t, t.TempDir())
	gw, tok := d.manifest.Gateway, d.manifest.Tokens
	page := fetch(t, gw+"/me", "") // redirected to /me/
	if csp := page.header.Get("Content-Security-Policy"); page.status != http.StatusOK || !strings.Contains(csp, "script-src 'self'") ||
		page.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("GET /me: %d, Content-Security-Policy %q, Referrer-Policy %q", page.status, csp, page.header.Get("Referrer-Policy"))
	}

	// Releases: every visit, read at the grant's 1,000 rows a page, so
	// that some release holds the citizen's (they are in every dataset);
	// and the caseworker's cases.
	for p := 1; ; p++ {
		r := get(t, fmt.Sprintf("%s/v1/health/visits?page=%d&page_size=1000", gw, p), tok["analyst"])
		if r.status != http.StatusOK {
			t.Fatalf("the analyst's page %d of visits: %d %s", p, r.status, r.body)
		}
		if len(r.items(t)) == 0 {
			break
		}
	}
	for p := 1; p <= 3; p++ {
		if r := get(t, fmt.Sprintf("%s/v1/civil/assistance?page=%d&page_size=100", gw, p), tok["caseworker"]); r.status != http.StatusOK {
			t.Fatalf("the caseworker's page %d of cases: %d %s", p, r.status, r.body)
		}
	}
	r := get(t, gw+"/v1/me/usage", tok["citizen"])
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/me/usage: %d %s", r.status, r.body)
	}
	var usage meUsage
	if err := json.Unmarshal(r.body, &usage); err != nil {
		t.Fatal(err)
	}
	if len(usage.Releases) == 0 || !usage.Trail.Verified {
		t.Fatalf("the citizen's usage lists %d releases, trail verified %v (%s); want at least one, verified", len(usage.Releases),
			usage.Trail.Verified, usage.Trail.Problem)
	}
	t.Logf("the citizen's usage lists %d releases", len(usage.Releases))
	var want []string
	for _, rel := range usage.Releases {
		want = append(want, rel.RequestID)
	}
	slices.Sort(want)
	first := usage.Releases[len(usage.Releases)-1] // the newest: the page lists it first
	objections := func() []meObjection {
		t.Helper()
		r := get(t, gw+"/v1/objections", tok["citizen"])
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/objections: %d %s", r.status, r.body)
		}
		var v struct{ Objections []meObjection }
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatal(err)
		}
		return v.Objections
	}

	tab := browsertest.New(t, exe, 180*time.Second)
	tab.ServerLog = d.stderr.String
	dialogFits := func(sel string, width int64) {
		t.Helper()
		tab.Poll(fmt.Sprintf("the dialog %s does not fit the window at %d px", sel, width),
			fmt.Sprintf(`(() => { const d = document.querySelector(%q), r = d.getBoundingClientRect();
				return d.open && r.left >= 0 && r.right <= document.documentElement.clientWidth && d.scrollWidth <= d.clientWidth; })()`, sel),
			fmt.Sprintf(`JSON.stringify(document.querySelector(%q).getBoundingClientRect())`, sel))
	}
	signIn := func(role string) {
		t.Helper()
		tab.Run("open the page as "+role,
			chromedp.Navigate(gw+"/me/"),
			chromedp.Evaluate[chromedp.Void](`sessionStorage.clear(); localStorage.clear()`),
			chromedp.Reload(),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SetValue(chromedp.CSS("#token"), tok[role]),
			chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		)
	}
	release := func(id string) string { return fmt.Sprintf(`#timeline li.release[data-request-id=%q]`, id) }

	// A token that names no person is turned away at the door.
	signIn("analyst")
	tab.Poll("the analyst's token is not refused", `document.querySelector("#signin-error").textContent !== "" && document.querySelector("#app").hidden`,
		`document.querySelector("#signin-error").textContent`)

	for _, w := range []struct {
		width, height int64
		screenshot    string
	}{{1280, 900, "me-page.png"}, {375, 812, "me-page-phone.png"}} {
		tab.Run(fmt.Sprintf("resize to %d px", w.width), chromedp.EmulateViewport(w.width, w.height))
		signIn("citizen")
		tab.Run("wait for the page", chromedp.WaitVisible(chromedp.CSS("#app")))

		// The timeline: exactly the releases the API lists, newest first.
		tab.Poll("the timeline does not list the API's releases",
			fmt.Sprintf(`document.querySelectorAll("#timeline li.release").length === %d`, len(want)),
			`document.querySelector("#usage").textContent`)
		var got []string
		if err := json.Unmarshal([]byte(tab.Eval(`JSON.stringify([...document.querySelectorAll("#timeline li.release")].map(e => e.dataset.requestId))`)), &got); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("the timeline's request ids (-want +got):\n%s", diff)
		}
		if ok := tab.Eval(`String((() => { const t = [...document.querySelectorAll("#timeline li.release .rel-time")].map(e => Date.parse(e.getAttribute("datetime")));
			return t.every((x, i) => i === 0 || t[i - 1] >= x); })())`); ok != "true" {
			t.Error("the timeline is not newest first")
		}
		tab.Poll("the trail's verified badge is not shown", `document.querySelector("#trail").dataset.verified === "true" && !document.querySelector("#trail").hidden &&
			document.querySelector("#trail .badge").textContent.includes("Usage log verified")`, `document.querySelector("#trail").outerHTML`)
		if p := tab.Eval(`document.querySelector("#period").textContent`); !strings.HasPrefix(p, "Covering everything on record up to ") {
			t.Errorf("the period reads %q", p)
		}
		// An entry says who, why and what in words.
		entry := tab.Eval(fmt.Sprintf(`document.querySelector(%q).textContent`, release(first.RequestID)))
		words := map[string]string{"keep": "shown as is", "pseudonymize": "replaced by a code", "generalize": "coarsened", "mask_id_cn": "partly hidden",
			"mask_name_cn": "partly hidden", "mask_phone_cn": "partly hidden", "mask": "partly hidden"}
		for f, op := range first.Fields {
			if said, ok := words[op]; ok && !strings.Contains(entry, said) {
				t.Errorf("the entry of %s does not say the %s field %s was %q: %s", first.RequestID, op, f, said, entry)
			}
		}
		if first.Dept == "health" && !strings.Contains(entry, "The Health Commission received your hospital visits") {
			t.Errorf("the entry of %s does not say who received what: %s", first.RequestID, entry)
		}
		tab.Fits("the timeline", w.width)

		if w.width == 1280 {
			// A period before any release lists none, and says so.
			tab.Run("show a period that ends before the releases",
				chromedp.SetValue(chromedp.CSS("#until"), "2020-01-01"),
				chromedp.Click(chromedp.CSS(`#period-form button[type="submit"]`)),
			)
			tab.Poll("a period without releases does not say so", `document.querySelectorAll("#timeline li.release").length === 0 &&
				document.querySelector("#timeline").textContent.includes("No department received your data in this period")`,
				`document.querySelector("#usage").textContent`)
			tab.Run("show everything again", chromedp.Click(chromedp.CSS("#period-all")))
			tab.Poll("the whole period does not list the releases again", fmt.Sprintf(`document.querySelectorAll("#timeline li.release").length === %d`, len(want)),
				`document.querySelector("#usage").textContent`)

			// Chinese labels, and back.
			tab.Run("switch to Chinese", chromedp.Click(chromedp.CSS("#lang")))
			tab.Poll("the page did not switch to Chinese",
				`document.documentElement.lang === "zh-CN" && document.querySelector("h1").textContent === "谁使用了我的数据" &&
					document.querySelector("#trail .badge").textContent.includes("使用记录已核验") && document.querySelector("#timeline").textContent.includes("询问原因")`,
				`document.querySelector("header").textContent + document.querySelector("#usage").textContent.slice(0, 400)`)
			tab.Run("switch back to English", chromedp.Click(chromedp.CSS("#lang")))
			tab.Poll("the page did not switch back to English", `document.documentElement.lang === "en" && document.querySelector("#timeline").textContent.includes("Ask why")`,
				`document.querySelector("#timeline").textContent.slice(0, 400)`)

			// Ask why, by keyboard: the question goes to the department that
			// received the release.
			tab.Run("ask why about the newest release",
				chromedp.Focus(chromedp.CSS(release(first.RequestID)+" button.ask-why")),
				chromedp.KeyEvent("\r"),
				chromedp.WaitVisible(chromedp.CSS("#why")),
			)
			dialogFits("#why", w.width)
			tab.Run("send the question", chromedp.Click(chromedp.CSS("#why-submit")), chromedp.WaitNotVisible(chromedp.CSS("#why")))
			tab.Poll("the question is not listed as filed among my objections",
				fmt.Sprintf(`(() => { const o = document.querySelector('#objection-list li[data-release=%q]'); return !!o && o.dataset.state === "filed" &&
					o.textContent.includes("filed") && document.querySelector("#notice").textContent.includes("filed"); })()`, first.RequestID),
				`document.querySelector("#objections").textContent + " " + document.querySelector("#notice").textContent`)
			tab.Poll("the release does not say it was asked about", fmt.Sprintf(`document.querySelector(%q).textContent.includes("You asked why")`, release(first.RequestID)),
				fmt.Sprintf(`document.querySelector(%q).textContent`, release(first.RequestID)))
			obs := objections()
			if len(obs) != 1 || obs[0].Release != first.RequestID || obs[0].State != "filed" || obs[0].Claim == "" {
				t.Fatalf("after asking why the API lists %+v, want one filed objection about release %s", obs, first.RequestID)
			}

			// An objection to a record: without a claim the page refuses it
			// and sends nothing.
			tab.Run("object to a record without a claim",
				chromedp.Click(chromedp.CSS(release(first.RequestID)+" button.object-record")),
				chromedp.WaitVisible(chromedp.CSS("#object")),
				chromedp.SetValue(chromedp.CSS("#ob-record"), "V0000000000"),
				chromedp.Click(chromedp.CSS("#object-submit")),
			)
			tab.Poll("an objection without a claim is not refused", `document.querySelector("#object").open && document.querySelector("#object-error").textContent.includes("required") &&
				document.activeElement === document.querySelector("#ob-claim")`, `document.querySelector("#object-error").textContent`)
			if got := tab.Eval(`document.querySelector("#ob-dataset").textContent`); !strings.Contains(got, first.Dataset) {
				t.Errorf("the objection's dataset is %q, want the release's %s", got, first.Dataset)
			}
			dialogFits("#object", w.width)
			if n := len(objections()); n != 1 {
				t.Fatalf("an objection without a claim was filed: the API lists %d objections", n)
			}

			// With a claim, about a record that is not theirs: the gateway
			// refuses, and the page shows its message.
			claim := `{"dataset":` + fmt.Sprintf("%q", first.Dataset) + `,"record_id":"V0000000000","claim":"this is not my visit"}`
			refusal := send(t, http.MethodPost, gw+"/v1/objections", claim, "Authorization", "Bearer "+tok["citizen"], "Content-Type", "application/json")
			if refusal.status != http.StatusForbidden && refusal.status != http.StatusNotFound {
				t.Fatalf("an objection to a record not the citizen's: %d %s, want 403 or 404", refusal.status, refusal.body)
			}
			msg, _ := refusal.json(t)["error"].(map[string]any)["message"].(string)
			t.Logf("an objection to a record not the citizen's: %d %s", refusal.status, msg)
			tab.Run("object with a claim to a record not theirs",
				chromedp.SetValue(chromedp.CSS("#ob-claim"), "this is not my visit"),
				chromedp.Click(chromedp.CSS("#object-submit")),
			)
			tab.Poll("the gateway's refusal is not shown", fmt.Sprintf(`document.querySelector("#object").open && document.querySelector("#object-error").textContent.includes(%q)`, msg),
				`document.querySelector("#object-error").textContent`)
			tab.Run("close the dialog", chromedp.Click(chromedp.CSS("#object-close")), chromedp.WaitNotVisible(chromedp.CSS("#object")))
			if n := len(objections()); n != 1 {
				t.Fatalf("a refused objection was filed: the API lists %d objections", n)
			}
		} else {
			// The phone: the objection filed before is listed, and the
			// dialogs fit.
			tab.Poll("my objections do not list the question", fmt.Sprintf(`!!document.querySelector('#objection-list li[data-release=%q]')`, first.RequestID),
				`document.querySelector("#objections").textContent`)
			tab.Run("open the objection dialog", chromedp.Click(chromedp.CSS(release(first.RequestID)+" button.object-record")), chromedp.WaitVisible(chromedp.CSS("#object")))
			dialogFits("#object", w.width)
			tab.Run("close the dialog", chromedp.Click(chromedp.CSS("#object-close")), chromedp.WaitNotVisible(chromedp.CSS("#object")))
		}
		tab.Fits("the page with my objections", w.width)
		tab.Run("back to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		tab.Screenshot(filepath.Join("..", "..", "docs", w.screenshot))
	}

	if strings.Contains(tab.Eval(`document.location.toString()`), tok["citizen"]) {
		t.Error("the token is in the page URL")
	}
	if n := tab.Eval(`String([...document.querySelectorAll("input, select, textarea")].filter(e => !e.labels.length && !e.getAttribute("aria-label")).length)`); n != "0" {
		t.Errorf("%s inputs without a label", n)
	}
	tab.Run("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	if stored := tab.Eval(`sessionStorage.getItem("sluice.me.token") || ""`); stored != "" {
		t.Error("signing out left the token in session storage")
	}
}
