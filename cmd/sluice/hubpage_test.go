package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/internal/browsertest"
)

// TestHubPageTakesARequestFromTheFormToApprovalInHeadlessChromium drives
// the hub page in a real browser at a phone's width and a desktop's: the
// researcher sees the catalogue (a dataset that is not shared shows its
// basis and no form), files a request for health/visits through the form
// with a preview of what a grant would release, and sees it submitted;
// the health steward finds it in the queue with its time left, opens it
// by keyboard, cannot reject it without a reason, and approves it with a
// narrower treatment and a row cap; the researcher then sees it approved.
// The API confirms each state, and the page is never wider than the
// window.
func TestHubPageTakesARequestFromTheFormToApprovalInHeadlessChromium(t *testing.T) {
	exe := browsertest.Chromium(t)
	d := startDemo(t, t.TempDir())
	gw, tok := d.manifest.Gateway, d.manifest.Tokens
	page := fetch(t, gw+"/hub", "") // redirected to /hub/
	if csp := page.header.Get("Content-Security-Policy"); page.status != http.StatusOK || !strings.Contains(csp, "script-src 'self'") ||
		page.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("GET /hub: %d, Content-Security-Policy %q, Referrer-Policy %q", page.status, csp, page.header.Get("Referrer-Policy"))
	}

	tab := browsertest.New(t, exe, 180*time.Second)
	tab.ServerLog = d.stderr.String
	// rowOf is the JavaScript of a list's row for a request or grant id.
	rowOf := func(table, id string) string {
		return fmt.Sprintf(`document.querySelector(%q)`, fmt.Sprintf(`#%s tbody tr[data-id="%s"]`, table, id))
	}
	cell := func(table, id, column string) string {
		return fmt.Sprintf(`((%s || {}).querySelector && %s.querySelector(".c-%s") || {}).textContent`, rowOf(table, id), rowOf(table, id), column)
	}
	signIn := func(role string) {
		t.Helper()
		tab.Run("sign in as "+role,
			chromedp.Navigate(gw+"/hub/"),
			chromedp.Evaluate[chromedp.Void](`sessionStorage.clear()`),
			chromedp.Reload(),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SetValue(chromedp.CSS("#token"), tok[role]),
			chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS("#app")),
		)
	}
	requestState := func(id, token string) map[string]any {
		t.Helper()
		r := get(t, gw+"/v1/requests/"+id, token)
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/requests/%s: %d %s", id, r.status, r.body)
		}
		return r.json(t)
	}
	until := time.Now().AddDate(1, 0, 0).Format("2006-01-02")
	var grants []string

	for _, w := range []struct {
		width, height int64
		screenshot    string
	}{{390, 844, "hub-page-phone.png"}, {1280, 900, "hub-page.png"}} {
		tab.Run(fmt.Sprintf("resize to %d px", w.width), chromedp.EmulateViewport(w.width, w.height))

		// The researcher: the catalogue says what is shared and by whom;
		// a dataset not shared gives its basis and no way to ask.
		signIn("researcher")
		tab.Poll("the catalogue does not show police/residents as not shared with its basis, and no request button",
			`(() => { const c = document.querySelector('#catalog li[data-dataset="police/residents"]');
				return !!c && c.textContent.includes("not shared") && c.textContent.includes("户籍信息不予共享") && !c.querySelector("button"); })()`,
			`document.querySelector("#catalog").textContent`)
		tab.Poll("the catalogue offers no request of health/visits from its steward's department",
			`(() => { const c = document.querySelector('#catalog li[data-dataset="health/visits"]');
				return !!c && c.textContent.includes("conditional sharing") && c.textContent.includes("health") && !!c.querySelector("button.request-this"); })()`,
			`document.querySelector("#catalog").textContent`)

		// The form, by keyboard from the catalogue's button: fields by
		// checkbox, purpose from the token, basis, justification, end.
		tab.Run(fmt.Sprintf("open the form for health/visits at %d px", w.width),
			chromedp.Focus(chromedp.CSS(`#catalog button[data-dataset="health/visits"]`)),
			chromedp.KeyEvent("\r"),
		)
		tab.Poll("the form is not for health/visits, or its first field does not have the focus",
			`document.querySelector("#rq-dataset").value === "health/visits" && document.activeElement.matches("#rq-field-list input")`,
			`document.querySelector("#rq-dataset").value + " " + document.activeElement.outerHTML`)
		tab.Run("pick the fields",
			chromedp.KeyEvent(" "), // the focused first field, cost, then unpicked again
			chromedp.KeyEvent(" "),
			chromedp.Click(chromedp.CSS(`#rq-field-list input[value="district"]`)),
			chromedp.Click(chromedp.CSS(`#rq-field-list input[value="diagnosis"]`)),
			chromedp.Click(chromedp.CSS(`#rq-field-list input[value="visit_date"]`)),
			chromedp.Click(chromedp.CSS(`#rq-field-list input[value="patient_id"]`)),
			chromedp.SetValue(chromedp.CSS("#rq-basis"), "Statistics Law art. 7"),
			chromedp.SetValue(chromedp.CSS("#rq-why"), "a study of diagnoses by district over time; patients must be followed across visits"),
			chromedp.SetValue(chromedp.CSS("#rq-until"), until),
		)
		if got := tab.Eval(`document.querySelector("#rq-purpose").value`); got != "research" {
			t.Errorf("the purpose is %q, want the token's purpose research", got)
		}
		// The preview: what a grant would release, field by field — the
		// patient's ID number is pseudonymized, its made-up value shown
		// before and after.
		const previewRows = `[...document.querySelectorAll("#preview-table tbody tr")].map(tr =>
			Object.fromEntries([...tr.children].map(c => [c.className.slice(2), c.textContent])))`
		tab.Poll("the preview does not show the four fields, patient_id pseudonymized",
			`(() => { const r = `+previewRows+`; return !document.querySelector("#preview-table").hidden && r.length === 4 &&
				r.some(c => c.field === "patient_id" && c.treatment === "pseudonymize" && c.example.startsWith("110105199001011234 → ") && !c.example.includes("→ 110105")) &&
				r.some(c => c.field === "district" && c.treatment === "keep"); })()`,
			`JSON.stringify([document.querySelector("#preview-status").textContent, `+previewRows+`])`)
		tab.Fits("the filled-in request form", w.width)
		tab.Screenshot(filepath.Join("..", "..", "docs", w.screenshot))

		tab.Run("submit the request", chromedp.Click(chromedp.CSS("#rq-submit")))
		tab.Poll("the submission is not confirmed", `document.querySelector("#notice").textContent.includes("submitted")`,
			`document.querySelector("#notice").textContent + " " + document.querySelector("#request-error").textContent`)
		id := tab.Eval(`document.querySelector("#notice").textContent.match(/req_\w+/)[0]`)
		tab.Poll("my requests do not list the request as submitted with its due time and time left",
			cell("mine", id, "state")+` === "submitted" && `+cell("mine", id, "dataset")+` === "health/visits" && /left/.test(`+cell("mine", id, "timeLeft")+`)`,
			`document.querySelector("#mine").textContent`)
		if n := tab.Eval(`String(document.querySelectorAll("#rq-field-list input:checked").length)`); n != "0" {
			t.Errorf("the form still has %s fields picked after the submission", n)
		}
		tab.Fits("my requests", w.width)
		q := requestState(id, tok["researcher"])
		if q["state"] != "submitted" || q["purpose"] != "research" || q["legal_basis"] != "Statistics Law art. 7" {
			t.Errorf("the request as the API has it: %v", q)
		}
		if diff := cmp.Diff([]any{"diagnosis", "district", "patient_id", "visit_date"}, q["fields"]); diff != "" {
			t.Errorf("the request's fields (-want +got):\n%s", diff)
		}

		// The steward: the request waits in the queue, soonest due first,
		// with its time left.
		signIn("steward_health")
		tab.Poll("the steward's queue does not list the request with its time left",
			cell("queue", id, "state")+` === "submitted" && /left/.test(`+cell("queue", id, "timeLeft")+`) && `+
				cell("queue", id, "requester")+` === "rita · stats-bureau"`,
			`document.querySelector("#queue").textContent`)
		if got := tab.Eval(`(() => { const due = [...document.querySelectorAll("#queue tbody tr.item .c-due")].map(c => c.textContent);
			return String(due.every((d, i) => i === 0 || due[i - 1] <= d)); })()`); got != "true" {
			t.Error("the queue is not ordered by due time")
		}
		if got := tab.Eval(`String(document.querySelector("#view-request").hidden || document.querySelector("#view-grants").hidden)`); got != "false" {
			t.Error("a steward of a department that may also ask does not see both the form and the grants")
		}
		tab.Fits("the steward's queue", w.width)
		tab.Run("open the request by keyboard",
			chromedp.Focus(chromedp.CSS(fmt.Sprintf(`#queue tr[data-id="%s"] button.open`, id))),
			chromedp.KeyEvent("\r"),
			chromedp.WaitVisible(chromedp.CSS("#decide")),
		)
		tab.Poll("the decision's treatments do not all default to ceiling",
			`(() => { const s = [...document.querySelectorAll("#terms-fields select")]; return s.length === 4 && s.every(x => x.value === "ceiling"); })()`,
			`JSON.stringify([...document.querySelectorAll("#terms-fields select")].map(x => x.value))`)
		tab.Poll("the opened request does not show the justification", `document.querySelector("#decide-facts").textContent.includes("patients must be followed")`,
			`document.querySelector("#decide-facts").textContent`)
		tab.Fits("the decision dialog", w.width)
		tab.Poll(fmt.Sprintf("the decision dialog does not fit the window at %d px", w.width),
			`(() => { const d = document.querySelector("#decide"), r = d.getBoundingClientRect();
				return r.left >= 0 && r.right <= document.documentElement.clientWidth && d.scrollWidth <= d.clientWidth; })()`,
			`JSON.stringify(document.querySelector("#decide").getBoundingClientRect())`)

		// A rejection needs a reason: the page says so and sends nothing.
		tab.Run("reject without a reason",
			chromedp.Click(chromedp.CSS(`#decide-form input[value="reject"]`)),
			chromedp.Click(chromedp.CSS("#decide-submit")),
		)
		tab.Poll("a rejection without a reason is not refused", `document.querySelector("#decide-error").textContent !== "" && document.querySelector("#decide").open`,
			`document.querySelector("#decide-error").textContent`)
		if st := requestState(id, tok["steward_health"])["state"]; st != "submitted" {
			t.Fatalf("after a rejection without a reason the request is %v", st)
		}

		tab.Run("approve with the visit date to the month and at most 500 rows",
			chromedp.Click(chromedp.CSS(`#decide-form input[value="approve"]`)),
			chromedp.SetValue(chromedp.CSS(`#terms-fields select[data-field="visit_date"]`), "month"),
			chromedp.SetValue(chromedp.CSS("#dc-rows"), "500"),
			chromedp.SetValue(chromedp.CSS("#dc-reason"), "approved for the study, dates to the month"),
			chromedp.Click(chromedp.CSS("#decide-submit")),
			chromedp.WaitNotVisible(chromedp.CSS("#decide")),
		)
		tab.Poll("the approval is not confirmed, or the request is still in the queue",
			`document.querySelector("#notice").textContent.includes("approved") && !`+rowOf("queue", id),
			`document.querySelector("#notice").textContent + " " + document.querySelector("#queue").textContent`)
		q = requestState(id, tok["researcher"])
		if q["state"] != "approved" {
			t.Fatalf("after the approval the API says %v", q["state"])
		}
		dec, _ := q["decision"].(map[string]any)
		cond, _ := dec["conditions"].(map[string]any)
		wantFields := map[string]any{"district": "ceiling", "diagnosis": "ceiling", "patient_id": "ceiling",
			"visit_date": map[string]any{"op": "generalize", "to": "month"}}
		if diff := cmp.Diff(wantFields, cond["fields"]); diff != "" {
			t.Errorf("the approval's treatments (-want +got):\n%s", diff)
		}
		if cond["max_rows"] != float64(500) {
			t.Errorf("the approval's max_rows: %v", cond["max_rows"])
		}
		grant, _ := q["grant"].(string)
		grants = append(grants, grant)
		if g := get(t, gw+"/v1/grants/"+grant, tok["steward_health"]).json(t); g["state"] != "active" || g["dept"] != "stats-bureau" {
			t.Errorf("the grant the approval made: %v", g)
		}
		tab.Poll("the steward's grants do not list the new grant as active with its terms",
			cell("grants", grant, "state")+` === "active" && `+cell("grants", grant, "fields")+`.includes("visit_date: generalize (to: month)") && `+
				cell("grants", grant, "fields")+`.includes("500 rows")`,
			`document.querySelector("#grants").textContent`)
		tab.Fits("the steward's grants", w.width)

		// The researcher sees the answer.
		signIn("researcher")
		tab.Poll("my requests do not show the request approved with its grant",
			cell("mine", id, "state")+` === "approved" && `+cell("mine", id, "actions")+`.includes(`+fmt.Sprintf("%q", grant)+`)`,
			`document.querySelector("#mine").textContent`)
		tab.Fits("the researcher's view after the approval", w.width)
	}

	// A request sent back for information: the researcher sees the
	// steward's question and the paused clock, must type an answer to
	// reply, and may then withdraw the request.
	body := fmt.Sprintf(`{"dataset":"health/visits","fields":["district","diagnosis"],"purpose":"research",
		"legal_basis":"Statistics Law art. 7","valid_until":%q}`, time.Now().AddDate(0, 6, 0).UTC().Format(time.RFC3339))
	r := send(t, http.MethodPost, gw+"/v1/requests", body, "Authorization", "Bearer "+tok["researcher"])
	if r.status != http.StatusCreated {
		t.Fatalf("submit a request over the API: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	r = send(t, http.MethodPost, gw+"/v1/requests/"+id+"/decision", `{"decision":"need_info","reason":"Which districts does the study cover?"}`,
		"Authorization", "Bearer "+tok["steward_health"])
	if r.status != http.StatusOK {
		t.Fatalf("ask for information over the API: %d %s", r.status, r.body)
	}
	tab.Run("refresh", chromedp.Click(chromedp.CSS("#refresh")))
	tab.Poll("my requests do not show the steward's question and the paused clock",
		cell("mine", id, "state")+` === "needs information" && `+cell("mine", id, "actions")+`.includes("Which districts does the study cover?") && `+
			cell("mine", id, "timeLeft")+`.startsWith("paused")`,
		`document.querySelector("#mine").textContent`)
	tab.Run("reply without an answer",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#mine tr[data-id="%s"] button.reply`, id))),
		chromedp.WaitVisible(chromedp.CSS("#act")),
		chromedp.Click(chromedp.CSS("#act-submit")),
	)
	tab.Poll("a reply without an answer is not refused", `document.querySelector("#act-error").textContent !== "" && document.querySelector("#act").open`,
		`document.querySelector("#act-error").textContent`)
	tab.Run("reply",
		chromedp.SetValue(chromedp.CSS("#act-reason"), "All districts of the city."),
		chromedp.Click(chromedp.CSS("#act-submit")),
		chromedp.WaitNotVisible(chromedp.CSS("#act")),
	)
	tab.Poll("the reply did not put the request back to submitted", cell("mine", id, "state")+` === "submitted"`, `document.querySelector("#mine").textContent`)
	if q := requestState(id, tok["researcher"]); q["state"] != "submitted" {
		t.Errorf("after the reply the API says %v", q["state"])
	}
	tab.Run("withdraw",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#mine tr[data-id="%s"] button.withdraw`, id))),
		chromedp.WaitVisible(chromedp.CSS("#act")),
		chromedp.Click(chromedp.CSS("#act-submit")),
		chromedp.WaitNotVisible(chromedp.CSS("#act")),
	)
	tab.Poll("the request is not withdrawn", cell("mine", id, "state")+` === "withdrawn" && !`+rowOf("mine", id)+`.querySelector("button")`,
		`document.querySelector("#mine").textContent`)
	if q := requestState(id, tok["researcher"]); q["state"] != "withdrawn" {
		t.Errorf("after the withdrawal the API says %v", q["state"])
	}

	// The steward suspends a grant, with the reason it needs.
	signIn("steward_health")
	tab.Run("suspend without a reason",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#grants tr[data-id="%s"] button.suspend`, grants[0]))),
		chromedp.WaitVisible(chromedp.CSS("#act")),
		chromedp.Click(chromedp.CSS("#act-submit")),
	)
	tab.Poll("a suspension without a reason is not refused", `document.querySelector("#act-error").textContent !== "" && document.querySelector("#act").open`,
		`document.querySelector("#act-error").textContent`)
	tab.Run("suspend",
		chromedp.SetValue(chromedp.CSS("#act-reason"), "the study's ethics approval is under review"),
		chromedp.Click(chromedp.CSS("#act-submit")),
		chromedp.WaitNotVisible(chromedp.CSS("#act")),
	)
	tab.Poll("the grant is not listed as suspended with resume and revoke",
		cell("grants", grants[0], "state")+` === "suspended" && `+cell("grants", grants[0], "actions")+` === "ResumeRevoke"`,
		`document.querySelector("#grants").textContent`)
	if g := get(t, gw+"/v1/grants/"+grants[0], tok["steward_health"]).json(t); g["state"] != "suspended" {
		t.Errorf("after the suspension the API says %v", g["state"])
	}

	// The labels switch to Chinese and back; the data stays as it is.
	tab.Run("switch to Chinese", chromedp.Click(chromedp.CSS("#lang")))
	tab.Poll("the page did not switch to Chinese",
		`document.documentElement.lang === "zh-CN" && document.querySelector("h1").textContent === "Sluice 数据共享平台" &&
			document.querySelector("#grants thead").textContent.includes("状态") && document.querySelector("#grants tbody").textContent.includes("已暂停")`,
		`document.querySelector("header").textContent + document.querySelector("#grants").textContent`)
	tab.Run("switch back to English", chromedp.Click(chromedp.CSS("#lang")))
	tab.Poll("the page did not switch back to English", `document.documentElement.lang === "en" && document.querySelector("#grants tbody").textContent.includes("suspended")`,
		`document.querySelector("#grants").textContent`)

	// The coordinator sees the escalated requests and every grant, and no
	// request form (the coordinator does not ask).
	signIn("coordinator")
	tab.Poll("the coordinator's views are not escalated requests and grants",
		`!document.querySelector("#view-escalated").hidden && !document.querySelector("#view-grants").hidden &&
			document.querySelector("#view-queue").hidden && document.querySelector("#view-request").hidden &&
			document.querySelectorAll("#grants tbody tr.item").length >= 3 && document.querySelector("#escalated tbody").textContent.includes("No request is escalated")`,
		`document.querySelector("#app").textContent`)

	if n := tab.Eval(`String(document.querySelectorAll("th:not([scope])").length)`); n != "0" {
		t.Errorf("%s table headers without scope", n)
	}
	if strings.Contains(tab.Eval(`document.location.toString()`), tok["coordinator"]) {
		t.Error("the token is in the page URL")
	}
	tab.Run("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	if stored := tab.Eval(`sessionStorage.getItem("sluice.hub.token") || ""`); stored != "" {
		t.Error("signing out left the token in session storage")
	}
}
