package gateway

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The demo's open tables: people of Beijing's districts with hospital
// visits, one district withheld, and their mean stay; each release spends
// ε = 0.2 of the city's 10 for open data this year.
func beijingVisits() *OpenTable {
	return &OpenTable{ID: "visits-by-district", Title: "People with hospital visits, by district", TitleZH: "各区就诊人数",
		Description:   "People who visited a hospital in the period, each counted once in each district.",
		DescriptionZH: "统计周期内到医院就诊的人数，每人在每个区只计一次。",
		Source:        "health", Dataset: "visits", Metric: "count", GroupBy: "district", Counts: "people (patient_id), each once per group",
		Epsilon: 0.2, Mechanism: "laplace", Accounting: "pure", ConfidenceLevel: 0.95, Margin: 14.98,
		Period:     OpenPeriod{Every: "30d", Start: utcDate(2026, 2, 6), End: utcDate(2026, 3, 8)},
		ReleasedAt: utcDate(2026, 2, 6).Add(4 * time.Second), Current: true,
		Cells: []OpenCell{
			openTestCell("朝阳区", 1843.4, 14.98), openTestCell("海淀区", 1620.6, 14.98), openTestCell("丰台区", 1012.2, 14.98),
			openTestCell("西城区", 788.9, 14.98), openTestCell("东城区", 512.5, 14.98), openTestCell("石景山区", 301.7, 14.98),
			{Key: ptr("门头沟区"), Epsilon: 0.2, Suppressed: SuppressedNoise}},
		Budget:    OpenBudget{Population: "city", Allocation: "open", EpsilonCap: 10, BudgetPeriod: &period{Start: utcDate(2026, 1, 1), End: utcDate(2027, 1, 1)}},
		Guarantee: "each person of population city: (ε = 20, δ = 1e-06)-DP over all releases in each period of 365d (this one 2026-01-01 to 2027-01-01), whoever asks",
	}
}

func beijingStays() *OpenTable {
	t := &OpenTable{ID: "stay-by-district", Title: "Mean hospital stay in days, by district", TitleZH: "各区平均住院天数",
		Description: "The mean length of a hospital stay, in days.", DescriptionZH: "平均每次住院的天数。",
		Source: "health", Dataset: "visits", Metric: "mean", Field: "stay_days", GroupBy: "district",
		Epsilon: 0.2, Mechanism: "laplace", Accounting: "pure", ConfidenceLevel: 0.95, Margin: 0.41,
		Period:     OpenPeriod{Every: "30d", Start: utcDate(2026, 2, 6), End: utcDate(2026, 3, 8)},
		ReleasedAt: utcDate(2026, 2, 6).Add(9 * time.Second), Current: true,
		Budget: OpenBudget{Population: "city", Allocation: "open", EpsilonCap: 10, BudgetPeriod: &period{Start: utcDate(2026, 1, 1), End: utcDate(2027, 1, 1)}},
	}
	for _, c := range []struct {
		d string
		v float64
	}{{"朝阳区", 4.62}, {"海淀区", 4.18}, {"丰台区", 5.07}, {"西城区", 3.91}, {"东城区", 4.4}, {"石景山区", 5.55}, {"门头沟区", 6.2}} {
		t.Cells = append(t.Cells, openTestCell(c.d, c.v, 0.41))
	}
	t.Cells[6].CI95[0], t.Cells[6].CI95[1] = 4.9, 7.5 // a small district: a wider interval
	return t
}

func beijingLedger(context.Context) (*OpenLedger, error) {
	return &OpenLedger{AsOf: utcDate(2026, 2, 20).Add(9*time.Hour + 30*time.Minute), Allocations: []OpenAllocation{{
		Population: "city", Allocation: "open", Accounting: "pure", BudgetPeriod: &period{Start: utcDate(2026, 1, 1), End: utcDate(2027, 1, 1)},
		EpsilonCap: 10, EpsilonSpent: 0.4, EpsilonLeft: 9.6,
		Releases: []OpenReleaseSpend{{ID: "visits-by-district", EpsilonPerPeriod: 0.2, Every: "30d", EpsilonSpent: 0.2},
			{ID: "stay-by-district", EpsilonPerPeriod: 0.2, Every: "30d", EpsilonSpent: 0.2}}}}}, nil
}

func utcDate(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func openTestCell(key string, v, margin float64) OpenCell {
	return OpenCell{Key: ptr(key), Value: ptr(v), CI95: &[2]float64{v - margin, v + margin}, Epsilon: 0.2}
}

// newOpenPageServer serves the open page of a test gateway publishing
// tables, with the ledger read by ledger, and each table's JSON and CSV
// at /open/v1/releases/ as the gateway holds them.
func newOpenPageServer(t *testing.T, ledger func(context.Context) (*OpenLedger, error), tables ...*OpenTable) (*httptest.Server, *Server) {
	t.Helper()
	g := newTestGateway(t, &orderAudit{}, serveItems)
	o := &openData{}
	for _, tb := range tables {
		o.releases = append(o.releases, &openRelease{cfg: &OpenReleaseConfig{ID: tb.ID}})
		if err := o.put(tb); err != nil {
			t.Fatal(err)
		}
	}
	g.srv.open = o
	mux := http.NewServeMux()
	mux.HandleFunc("GET /open/", func(w http.ResponseWriter, r *http.Request) { g.srv.serveOpenPage(w, r, ledger) })
	mux.HandleFunc("GET /open/v1/releases/{file}", func(w http.ResponseWriter, r *http.Request) {
		id, csv := strings.CutSuffix(r.PathValue("file"), ".csv")
		sv := o.served(id)
		switch {
		case sv == nil:
			http.NotFound(w, r)
		case csv:
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.csv"`)
			w.Write(sv.csv)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Write(sv.json)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, g.srv
}

type pageResponse struct {
	status int
	header http.Header
	body   string
}

func getPage(t *testing.T, method, url string, header ...string) pageResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return pageResponse{resp.StatusCode, resp.Header, string(b)}
}

// pageRowOf is the table row whose header cell is group.
func pageRowOf(t *testing.T, page, group string) string {
	t.Helper()
	m := regexp.MustCompile(`<tr[^>]*><th scope="row">` + regexp.QuoteMeta(group) + `</th>.*?</tr>`).FindString(page)
	if m == "" {
		t.Fatalf("no row for %s in the page:\n%s", group, page)
	}
	return m
}

// chartRowOf is the chart's row for group.
func chartRowOf(t *testing.T, page, group string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<g class="row[^"]*">\s*<text class="label"[^>]*>` + regexp.QuoteMeta(group) + `</text>.*?</g>`).FindString(page)
	if m == "" {
		t.Fatalf("no chart row for %s in the page:\n%s", group, page)
	}
	return m
}

func TestOpenPageShowsAWithheldCellsReasonAndNoNumber(t *testing.T) {
	tb := beijingVisits()
	// A cell marked withheld that still carries numbers (a bug upstream)
	// is shown withheld all the same.
	tb.Cells = append(tb.Cells, OpenCell{Key: ptr("房山区"), Value: ptr(11.0), CI95: &[2]float64{-3.98, 25.98}, Epsilon: 0.2, Suppressed: SuppressedThreshold})
	srv, _ := newOpenPageServer(t, beijingLedger, tb)
	for _, c := range []struct{ lang, group, reason, gap string }{
		{"en", "门头沟区", "withheld: smaller than its margin of error", "withheld: too noisy"},
		{"zh", "门头沟区", "已隐去：数值小于误差范围", "已隐去：误差过大"},
		{"en", "房山区", "withheld: below the publication threshold", "withheld: below threshold"},
		{"zh", "房山区", "已隐去：数值低于发布阈值", "已隐去：低于阈值"},
	} {
		page := getPage(t, "GET", srv.URL+"/open/?lang="+c.lang).body
		row := pageRowOf(t, page, c.group)
		want := `<td colspan="2" class="reason">` + c.reason + `</td><td class="num">0.2</td>`
		if !strings.Contains(row, want) {
			t.Errorf("%s: the row of %s is %s, want its reason %q and only its ε", c.lang, c.group, row, want)
		}
		chart := chartRowOf(t, page, c.group)
		if !strings.Contains(chart, `class="gap"`) || !strings.Contains(chart, ">"+c.gap+"<") ||
			strings.Contains(chart, `class="bar"`) || strings.Contains(chart, "whisker") || strings.Contains(chart, `class="value"`) {
			t.Errorf("%s: the chart's row of %s is %s, want a labelled gap and no bar, whisker or value", c.lang, c.group, chart)
		}
		for _, n := range []string{"11", "-3.98", "25.98", "26"} {
			if strings.Contains(row, ">"+n+"<") || strings.Contains(chart, ">"+n+"<") {
				t.Errorf("%s: the withheld %s shows the number %s: %s %s", c.lang, c.group, n, row, chart)
			}
		}
	}
}

func TestOpenPageRoundsCountsAndShowsMeansToTheirMargin(t *testing.T) {
	srv, _ := newOpenPageServer(t, beijingLedger, beijingVisits(), beijingStays())
	page := getPage(t, "GET", srv.URL+"/open/").body
	for _, c := range []struct{ group, value, interval string }{
		{"朝阳区", "1,843", "1,828 to 1,858"}, // 1843.4 ± 14.98
		{"东城区", "513", "498 to 527"},       // 512.5 ± 14.98
	} {
		if row := pageRowOf(t, page, c.group); !strings.Contains(row, `<td class="num">`+c.value+`</td><td class="num">`+c.interval+`</td>`) {
			t.Errorf("the count of %s is shown as %s, want %s (%s)", c.group, row, c.value, c.interval)
		}
	}
	// The mean's margin is 0.41, so two decimals: the row of 朝阳区 in
	// the second table.
	stays := page[strings.Index(page, `id="release-stay-by-district"`):]
	if row := pageRowOf(t, stays, "朝阳区"); !strings.Contains(row, `<td class="num">4.62</td><td class="num">4.21 to 5.03</td>`) {
		t.Errorf("the mean of 朝阳区 is shown as %s, want 4.62 (4.21 to 5.03)", row)
	}
	if !strings.Contains(stays, "<th scope=\"col\" class=\"num\">Mean of stay_days</th>") {
		t.Error("the mean's value column is not headed Mean of stay_days")
	}
}

func TestOpenPageStatesAccuracyPrivacyLossAndPeriodInWords(t *testing.T) {
	stale := beijingVisits()
	stale.Current = false
	stale.Note = "the release for 2026-03-08 to 2026-04-07 could not be computed; this is the last good one, released 2026-02-06"
	noRenewal := beijingStays()
	noRenewal.Budget.BudgetPeriod = nil
	noRenewal.Period = OpenPeriod{Every: "1d", Start: utcDate(2026, 2, 20), End: utcDate(2026, 2, 21)}
	tests := []struct {
		name  string
		table *OpenTable
		lang  string
		want  []string
	}{
		{"english", beijingVisits(), "en", []string{
			"Each number is accurate to about ±15 at 95% confidence.",
			"This release spent ε = 0.2 of the ε = 10 that “city” has for open data in its budget period, 1 Jan 2026 – 31 Dec 2026.",
			"Released 6 Feb 2026 00:00 UTC, for the period 6 Feb 2026 – 7 Mar 2026; a new release comes every 30 days.",
		}},
		{"chinese", beijingVisits(), "zh", []string{
			"每个数值的误差约为 ±15（置信度 95%）。",
			"本次发布消耗隐私预算 ε = 0.2；“city”用于开放数据的预算为 ε = 10（2026年1月1日至2026年12月31日）。",
			"发布于 2026年2月6日 00:00（UTC），统计周期 2026年2月6日至2026年3月7日，每 30 天发布一次。",
		}},
		{"a mean", beijingStays(), "en", []string{"Each number is accurate to about ±0.41 at 95% confidence."}},
		{"a budget that does not renew, daily", noRenewal, "en", []string{
			"This release spent ε = 0.2 of the ε = 10 that “city” has for open data in all (it does not renew).",
			"for the period 20 Feb 2026; a new release comes every day.",
		}},
		{"the last good release", stale, "en", []string{
			`<div class="stale" role="note">`,
			"This is not the current release: the latest period’s could not be computed, so this is the last good release, of 6 Feb 2026.",
			`Note: <span lang="en">` + stale.Note + `</span>`,
		}},
		{"the last good release, in Chinese", stale, "zh", []string{
			"这不是当前的数据：最近一个周期的数据未能计算，这是上一次成功发布的数据，发布于 2026年2月6日。",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newOpenPageServer(t, beijingLedger, tt.table)
			page := getPage(t, "GET", srv.URL+"/open/?lang="+tt.lang).body
			for _, w := range tt.want {
				if !strings.Contains(page, w) {
					t.Errorf("the page does not say %q:\n%s", w, page)
				}
			}
		})
	}
}

func TestOpenPageSpeaksTheVisitorsLanguage(t *testing.T) {
	english := beijingVisits()
	english.ID, english.TitleZH, english.DescriptionZH = "english-only", "", ""
	srv, _ := newOpenPageServer(t, beijingLedger, beijingVisits(), english)
	tests := []struct {
		name, query, accept string
		wantLang            string
		want                []string
	}{
		{"no preference", "", "", "en", []string{"<h1>Open statistics</h1>", "People with hospital visits, by district", `<a href="/open/?lang=zh" lang="zh-CN" hreflang="zh-CN">中文</a>`}},
		{"a Chinese browser", "", "zh-CN,zh;q=0.9,en;q=0.8", "zh-CN", []string{"<h1>开放统计数据</h1>", "各区就诊人数", `<a href="/open/?lang=en" lang="en" hreflang="en">English</a>`}},
		{"Taiwanese Chinese before English", "", "fr-FR, zh-TW;q=0.8, en;q=0.5", "zh-CN", []string{"<h1>开放统计数据</h1>"}},
		{"English before Chinese", "", "en-GB, zh;q=0.7", "en", []string{"<h1>Open statistics</h1>"}},
		{"neither", "", "fr, de;q=0.5", "en", []string{"<h1>Open statistics</h1>"}},
		{"?lang=zh over the browser", "?lang=zh", "en-US", "zh-CN", []string{"<h1>开放统计数据</h1>", "下载 CSV"}},
		{"?lang=en over the browser", "?lang=en", "zh-CN", "en", []string{"<h1>Open statistics</h1>", "Download CSV"}},
		{"an unknown ?lang", "?lang=xx", "zh", "zh-CN", []string{"<h1>开放统计数据</h1>"}},
		{"a title with no Chinese falls back to English", "?lang=zh", "", "zh-CN", []string{`<h2 id="h-english-only">People with hospital visits, by district</h2>`,
			"People who visited a hospital in the period, each counted once in each district."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := getPage(t, "GET", srv.URL+"/open/"+tt.query, "Accept-Language", tt.accept)
			if !strings.Contains(r.body, `<html lang="`+tt.wantLang+`">`) || r.header.Get("Content-Language") != tt.wantLang {
				t.Errorf("the page is not in %s: Content-Language %q, %s", tt.wantLang, r.header.Get("Content-Language"), r.body[:min(len(r.body), 80)])
			}
			for _, w := range tt.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("the page does not say %q:\n%s", w, r.body)
				}
			}
			if r.header.Get("Vary") != "Accept-Language" {
				t.Errorf("Vary: %q, want Accept-Language (the page is cached publicly)", r.header.Get("Vary"))
			}
		})
	}
}

func TestOpenPageEscapesHostileNamesInTheTableAndTheChart(t *testing.T) {
	tb := beijingVisits()
	tb.Title = `</title><script>alert("title")</script>`
	tb.Description = `<img src=x onerror=alert(1)>`
	tb.Cells[0].Key = ptr(`<script>alert(1)</script>`)
	tb.Cells[1].Key = ptr(`=cmd|' /C calc'!A0`)
	tb.Cells[2].Key = ptr(`"><svg onload=alert(2)>`)
	srv, _ := newOpenPageServer(t, beijingLedger, tb)
	page := getPage(t, "GET", srv.URL+"/open/").body
	for _, bad := range []string{"<script", "<img", "<svg onload", `"><svg`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q unescaped", bad)
		}
	}
	for _, c := range []struct {
		escaped string
		times   int
	}{
		{"&lt;script&gt;alert(1)&lt;/script&gt;", 1}, // the table's row; the chart's label is clipped
		{"=cmd|&#39; /C calc&#39;!A0", 1},
		{"&#34;&gt;&lt;svg onload=alert(2)&gt;", 1},
		{"&lt;/title&gt;&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;", 4}, // <h2>, the chart's title and desc, the caption
		{"&lt;img src=x onerror=alert(1)&gt;", 1},
	} {
		if n := strings.Count(page, c.escaped); n < c.times {
			t.Errorf("%s appears %d times escaped, want at least %d:\n%s", c.escaped, n, c.times, page)
		}
	}
	// The chart labels each hostile name, clipped, in its own text
	// element, escaped.
	for _, c := range tb.Cells[:3] {
		label := chartClip(*c.Key, chartLabels-8)
		if !strings.HasSuffix(label, "…") {
			t.Errorf("the chart's label %q is not clipped", label)
		}
		chartRowOf(t, page, html.EscapeString(label))
	}
}

func TestOpenPageHeaders(t *testing.T) {
	srv, _ := newOpenPageServer(t, beijingLedger, beijingVisits())
	page := getPage(t, "GET", srv.URL+"/open/")
	want := map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "public, max-age=60",
	}
	got := map[string]string{}
	for k := range want {
		got[k] = page.header.Get(k)
	}
	if diff := cmp.Diff(want, got); page.status != http.StatusOK || diff != "" {
		t.Errorf("GET /open/: %d, headers (-want +got):\n%s", page.status, diff)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(page.header.Get("X-Request-Id")) {
		t.Errorf("X-Request-Id %q", page.header.Get("X-Request-Id"))
	}
	if strings.Contains(page.body, "<script") || strings.Contains(page.body, " style=") {
		t.Error("the page holds a script or an inline style its CSP would refuse")
	}
	if again := getPage(t, "GET", srv.URL+"/open/", "If-None-Match", page.header.Get("ETag")); again.status != http.StatusNotModified {
		t.Errorf("GET /open/ with its ETag: %d, want 304", again.status)
	}
	if head := getPage(t, "HEAD", srv.URL+"/open/"); head.status != http.StatusOK || head.body != "" || head.header.Get("Content-Length") != page.header.Get("Content-Length") {
		t.Errorf("HEAD /open/: %d, %d bytes, Content-Length %s", head.status, len(head.body), head.header.Get("Content-Length"))
	}
	css := getPage(t, "GET", srv.URL+"/open/open.css")
	if css.status != http.StatusOK || css.header.Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(css.body, ":focus-visible") {
		t.Errorf("GET /open/open.css: %d %s", css.status, css.header.Get("Content-Type"))
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/open/nothing", http.StatusNotFound},
		{"GET", "/open/openweb/open.html", http.StatusNotFound},
		{"POST", "/open/", http.StatusMethodNotAllowed},
	} {
		req := httptest.NewRequest(c.method, c.path, nil)
		w := httptest.NewRecorder()
		_, s := newOpenPageServer(t, beijingLedger, beijingVisits())
		s.openPage(w, req)
		if w.Code != c.want || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, w.Code, w.Header().Get("Content-Type"), c.want)
		}
	}
}

func TestOpenPageSaysSoWhenNothingIsPublishedYet(t *testing.T) {
	_, s := newOpenPageServer(t, nil)
	for _, c := range []struct{ lang, want string }{
		{"en", "No table has been published yet."},
		{"zh", "尚未发布任何数据表。"},
	} {
		w := httptest.NewRecorder()
		s.openPage(w, httptest.NewRequest("GET", "/open/?lang="+c.lang, nil)) // the gateway's own ledger: no releases, no allocations
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), c.want) || strings.Contains(w.Body.String(), "<table") {
			t.Errorf("%s: %d, want 200 saying %q and no table:\n%s", c.lang, w.Code, c.want, w.Body)
		}
	}
}

func TestOpenPageShowsTheLedgerOrSaysItCannot(t *testing.T) {
	srv, _ := newOpenPageServer(t, beijingLedger, beijingVisits(), beijingStays())
	page := getPage(t, "GET", srv.URL+"/open/").body
	for _, w := range []string{
		"“city”: ε = 10 for open data, 1 Jan 2026 – 31 Dec 2026",
		`<tr><th scope="row">People with hospital visits, by district</th><td>ε = 0.2 every 30 days</td><td class="num">ε = 0.2</td></tr>`,
		`<tr><th scope="row" colspan="2">Spent</th><td class="num">ε = 0.4</td></tr>`,
		`<tr><th scope="row" colspan="2">Left</th><td class="num">ε = 9.6</td></tr>`,
		"As of 20 Feb 2026 09:30 UTC.",
	} {
		if !strings.Contains(page, w) {
			t.Errorf("the ledger does not say %q:\n%s", w, page)
		}
	}
	down, _ := newOpenPageServer(t, func(context.Context) (*OpenLedger, error) { return nil, errors.New("redis: connection refused") }, beijingVisits())
	r := getPage(t, "GET", down.URL+"/open/?lang=zh")
	if r.status != http.StatusOK || !strings.Contains(r.body, "暂时无法读取预算账本") || !strings.Contains(r.body, "朝阳区") || strings.Contains(r.body, "redis") {
		t.Errorf("with the ledger down: %d, want the tables, the ledger said unavailable and no internals:\n%s", r.status, r.body)
	}
}

func TestOpenChartClampsANegativeBarAtZeroButNotItsWhisker(t *testing.T) {
	tb := beijingVisits()
	tb.Cells = []OpenCell{openTestCell("朝阳区", 100, 15), openTestCell("海淀区", -4, 15)}
	rows := openTableOf(&openEN, tb).Rows
	ch := openChartOf(&openEN, tb.Title, tb, rows, 0)
	neg := ch.Rows[1]
	if neg.BarW != 0 || neg.BarX != ch.ZeroX || !(neg.LoX < ch.ZeroX) || !(neg.HiX > ch.ZeroX) {
		t.Errorf("a value of -4 ± 15: bar at %g width %g, whisker %g to %g, zero at %g; want no bar and the whisker across zero",
			neg.BarX, neg.BarW, neg.LoX, neg.HiX, ch.ZeroX)
	}
	if ch.Ticks[0].Label != "-25" || ch.Ticks[len(ch.Ticks)-1].Label != "125" {
		t.Errorf("ticks %+v, want -25 to 125", ch.Ticks)
	}
	if pos := ch.Rows[0]; pos.BarX+pos.BarW > ch.PlotX+ch.PlotW || pos.HiX > ch.PlotX+ch.PlotW {
		t.Errorf("the bar of 100 ± 15 leaves the plot: %+v", pos)
	}
}

func TestOpenNumbersAsThePageWritesThem(t *testing.T) {
	for _, c := range []struct {
		f    float64
		dec  int
		want string
	}{{1843.4, 0, "1,843"}, {-0.2, 0, "0"}, {-1234567.891, 2, "-1,234,567.89"}, {999.5, 0, "1,000"}, {0.05, 1, "0.1"}} {
		if got := openNumber(c.f, c.dec); got != c.want {
			t.Errorf("openNumber(%g, %d) = %q, want %q", c.f, c.dec, got, c.want)
		}
	}
	for _, c := range []struct {
		f    float64
		want string
	}{{14.98, "15"}, {0.4137, "0.41"}, {1234, "1,200"}, {3.05, "3.1"}} {
		if got := openSignificant(c.f); got != c.want {
			t.Errorf("openSignificant(%g) = %q, want %q", c.f, got, c.want)
		}
	}
}
