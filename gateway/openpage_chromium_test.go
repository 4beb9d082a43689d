package gateway

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sluicegw/sluice/internal/browsertest"
)

// TestOpenPageInHeadlessChromium reads the open data page in a real
// browser without a token, at a phone's width in Chinese and a desktop's
// in English: it shows the tables with their headers, the charts, the
// statement of accuracy and privacy loss, a withheld district labelled
// with no number, and no script; it is never wider than the window. By
// keyboard alone a visitor reaches the CSV link, with a visible focus
// ring, and downloads exactly the CSV the gateway serves.
func TestOpenPageInHeadlessChromium(t *testing.T) {
	exe := browsertest.Chromium(t)
	srv, s := newOpenPageServer(t, beijingLedger, beijingVisits(), beijingStays())
	wantCSV := s.open.served("visits-by-district").csv

	tab := browsertest.New(t, exe, 120*time.Second)
	check := func(what, cond, explain string) {
		t.Helper()
		if ok, err := chromedp.Run(tab.Context(), chromedp.Evaluate[bool](cond)); err != nil || !ok {
			t.Errorf("%s: %s (%v)", what, tab.Eval(explain), err)
		}
	}
	const noOverflow = `document.documentElement.scrollWidth <= document.documentElement.clientWidth`
	const widths = `JSON.stringify({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
		widest: [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
			.slice(0, 3).map(e => e.tagName + "." + e.className) })`
	const body = `document.body.innerText`

	for _, v := range []struct {
		width, height int64
		lang          string
		want          []string
		screenshot    string
	}{
		{390, 844, "zh", []string{"各区就诊人数", "每个数值的误差约为 ±15（置信度 95%）。",
			"本次发布消耗隐私预算 ε = 0.2；“city”用于开放数据的预算为 ε = 10（2026年1月1日至2026年12月31日）。",
			"已隐去：数值小于误差范围", "下载 CSV", "开放数据隐私预算"}, "open-page-phone.png"},
		{1280, 900, "en", []string{"People with hospital visits, by district", "Each number is accurate to about ±15 at 95% confidence.",
			"This release spent ε = 0.2 of the ε = 10 that “city” has for open data in its budget period, 1 Jan 2026 – 31 Dec 2026.",
			"withheld: smaller than its margin of error", "Download CSV", "Open data budget"}, "open-page.png"},
	} {
		lang := map[string]string{"zh": "zh-CN", "en": "en"}[v.lang]
		// No token, no cookie: a visitor from nowhere, who switches
		// language by the page's own link.
		tab.Run(fmt.Sprintf("load the page at %d px", v.width),
			chromedp.EmulateViewport(v.width, v.height),
			chromedp.Navigate(srv.URL+"/open/"),
			chromedp.WaitVisible(chromedp.CSS("table")))
		if v.lang != "en" {
			tab.Run("switch to Chinese", chromedp.Click(chromedp.CSS(`.langs a[hreflang="zh-CN"]`)),
				chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"] table`)))
		}
		check("the page is not in "+lang, fmt.Sprintf(`document.documentElement.lang === %q`, lang), `document.documentElement.lang`)
		for _, w := range v.want {
			check("the page does not say "+w, fmt.Sprintf(`document.body.innerText.includes(%q)`, w), body)
		}
		check("the tables are not shown with their headers",
			`document.querySelectorAll("table caption").length === 3 && document.querySelectorAll('tbody th[scope="row"]').length >= 14 &&
				document.querySelectorAll('thead th[scope="col"]').length >= 8 &&
				[...document.querySelectorAll(".release table")].every(t => t.getBoundingClientRect().height > 100)`,
			`document.querySelectorAll("table").length + " tables"`)
		check("the charts are not drawn",
			`(() => { const svgs = [...document.querySelectorAll('svg[role="img"]')];
				return svgs.length === 2 && svgs.every(s => s.getBoundingClientRect().width > 250 && s.querySelectorAll("rect.bar").length >= 6) &&
					getComputedStyle(svgs[0].querySelector("rect.bar")).fill === "rgb(47, 109, 181)"; })()`,
			`JSON.stringify([...document.querySelectorAll("svg")].map(s => [s.getBoundingClientRect().width, s.querySelectorAll("rect.bar").length]))`)
		check("the withheld district shows a number",
			`(() => { const r = [...document.querySelectorAll("#release-visits-by-district tbody tr")].find(r => r.querySelector("th").textContent === "门头沟区");
				return !!r && r.querySelectorAll("td").length === 2 && !/\d/.test(r.querySelector("td.reason").textContent); })()`,
			`document.querySelector("#release-visits-by-district tbody").innerText`)
		check("the page runs a script", `document.scripts.length === 0`, `document.scripts.length + " scripts"`)
		check(fmt.Sprintf("the page is wider than the window at %d px", v.width), noOverflow, widths)
		tab.Screenshot(filepath.Join("..", "docs", v.screenshot))
	}

	// By keyboard: the first Tab shows the skip link; Tabs reach the first
	// CSV link, its focus ring shows, and Enter downloads it.
	tab.Run("focus the page", chromedp.Navigate(srv.URL+"/open/?lang=en"), chromedp.WaitVisible(chromedp.CSS("table")),
		chromedp.KeyEvent(kb.Tab))
	check("the first Tab does not show the skip link",
		`document.activeElement.classList.contains("skip") && document.activeElement.getBoundingClientRect().top >= 0`,
		`document.activeElement.outerHTML`)
	for range 20 {
		if tab.Eval(`document.activeElement.className`) == "csv" {
			break
		}
		tab.Run("tab", chromedp.KeyEvent(kb.Tab))
	}
	check("Tab does not reach the CSV link",
		`document.activeElement.matches('a.csv[download="visits-by-district.csv"]') && getComputedStyle(document.activeElement).outlineStyle === "solid"`,
		`document.activeElement.outerHTML`)

	dir := t.TempDir()
	dctx, cancel := context.WithTimeout(tab.Context(), 30*time.Second)
	defer cancel()
	progress := chromedp.Events(dctx, browser.DownloadProgress)
	tab.Run("download the CSV by keyboard",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			yes := true
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &yes})
			return err
		}),
		chromedp.KeyEvent(kb.Enter))
	var file string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			file = filepath.Join(dir, ev.GUID)
			break
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the download was canceled")
		}
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, wantCSV) {
		t.Errorf("the downloaded CSV is\n%s\nwant the gateway's\n%s", got, wantCSV)
	}
	if !strings.HasPrefix(string(got), strings.Join(csvHeader, ",")+"\n") {
		t.Errorf("the downloaded CSV starts %q", got[:min(len(got), 60)])
	}
}
