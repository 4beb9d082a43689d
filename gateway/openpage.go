package gateway

// The open data page, GET /open/: every published table as a chart and a
// table, with its accuracy, its privacy loss and its period stated in
// words, in English or Chinese. It is rendered on the server from the
// tables in memory and runs no script (its CSP allows none), so it works
// in any browser, with JavaScript off, and behind a screen reader; the
// JSON and CSV it links to are the open data API's (open_http.go).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// openWeb holds the page's template and its stylesheet.
//
//go:embed openweb/open.html openweb/open.css
var openWeb embed.FS

var (
	openTemplate = template.Must(template.ParseFS(openWeb, "openweb/open.html"))
	openCSS      = mustRead(openWeb, "openweb/open.css")
	openCSSTag   = etagOf(openCSS)
)

func mustRead(fsys embed.FS, name string) []byte {
	b, err := fsys.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// openPageCSP lets the page load its own stylesheet and nothing else: no
// script, no frame, no form.
const openPageCSP = "default-src 'none'; style-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// openLedgerTimeout bounds the ledger read of a page view: a slow budget
// store leaves the ledger off the page, never the tables.
const openLedgerTimeout = 2 * time.Second

// openPage serves the open data page at /open/ and its stylesheet at
// /open/open.css. It needs no token.
func (s *Server) openPage(w http.ResponseWriter, r *http.Request) {
	s.serveOpenPage(w, r, s.openLedger)
}

// serveOpenPage is openPage with the ledger read by ledger.
func (s *Server) serveOpenPage(w http.ResponseWriter, r *http.Request, ledger func(context.Context) (*OpenLedger, error)) {
	id := newRequestID()
	h := w.Header()
	h.Set("X-Request-Id", id)
	h.Set("Content-Security-Policy", openPageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	var e *Error
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		e = errMethod()
	case s.open == nil:
		e = errNotFound("open data is not published by this gateway")
	case r.URL.Path != "/open/" && r.URL.Path != "/open/open.css":
		e = errNotFound("no such page")
	default:
		e = s.limitOpen(r)
	}
	if e != nil {
		writeError(w, e, errorJSON(id, e))
		return
	}
	if r.URL.Path == "/open/open.css" {
		h.Set("Content-Type", "text/css; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("ETag", openCSSTag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(openCSS))
		return
	}
	words := openLanguage(r)
	v := s.openView(words, s.open.tables())
	ctx, cancel := context.WithTimeout(r.Context(), openLedgerTimeout)
	l, err := ledger(ctx)
	cancel()
	if err != nil {
		s.log.Warn("open page: the budget ledger cannot be read", "request_id", id, "error", err)
	}
	v.Ledger = openBudgetOf(words, l, err, v.Tables)
	var b bytes.Buffer
	if err := openTemplate.Execute(&b, v); err != nil {
		s.log.Error("open page", "request_id", id, "error", err)
		e := errInternal(err)
		writeError(w, e, errorJSON(id, e))
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=60")
	h.Set("Vary", "Accept-Language")
	h.Set("Content-Language", words.Lang)
	tag := etagOf(b.Bytes())
	h.Set("ETag", tag)
	if m := r.Header.Get("If-None-Match"); m != "" && etagMatches(m, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(b.Bytes())
}

// openLanguage is the page's language: ?lang=zh or ?lang=en, else the
// one of the two the browser prefers (Accept-Language), else English.
func openLanguage(r *http.Request) *openWords {
	switch r.URL.Query().Get("lang") {
	case "zh":
		return &openZH
	case "en":
		return &openEN
	}
	best, bestQ := &openEN, 0.0
	for part := range strings.SplitSeq(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		tag = strings.ToLower(strings.TrimSpace(tag))
		var w *openWords
		switch {
		case tag == "zh" || strings.HasPrefix(tag, "zh-"):
			w = &openZH
		case tag == "en" || strings.HasPrefix(tag, "en-"):
			w = &openEN
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = w, q
		}
	}
	return best
}

// openPageView is what the template renders.
type openPageView struct {
	W         *openWords
	Publisher string
	Other     *openWords // the other language, to switch to
	Tables    []openTableView
	Ledger    *openBudgetView
}

// openTableView is one table as the page shows it: every number already
// written in the page's language.
type openTableView struct {
	ID, Title, Description string
	// Stale is set when the table is not the current period's: the last
	// good release, with its Note.
	Stale, Note string
	// Accuracy, Spent and Released are the statement in words.
	Accuracy, Spent, Released string
	Caption                   string
	GroupHeader, ValueHeader  string
	Rows                      []openRowView
	Chart                     *openChart
	CSV, JSON, CSVName        string
	About                     []openFact
}

// openRowView is one row of a table; a withheld row carries its reason
// and no number.
type openRowView struct {
	Group, Value, Interval, Epsilon string
	Withheld                        string
}

type openFact struct{ Name, Value string }

// openView builds the page from the tables.
func (s *Server) openView(w *openWords, tables []*OpenTable) *openPageView {
	v := &openPageView{W: w, Publisher: s.cfg.Open.Publisher, Other: &openZH}
	if w == &openZH {
		v.Other = &openEN
	}
	for _, t := range tables {
		v.Tables = append(v.Tables, openTableOf(w, t))
	}
	return v
}

func openTableOf(w *openWords, t *OpenTable) openTableView {
	title, desc := t.Title, t.Description
	if w == &openZH {
		title, desc = or(t.TitleZH, t.Title), or(t.DescriptionZH, t.Description)
	}
	dec := openDecimals(t)
	tv := openTableView{ID: t.ID, Title: title, Description: desc,
		Released:    fmt.Sprintf(w.Released, w.dateTime(t.ReleasedAt), w.span(t.Period.Start, t.Period.End), w.every(t.Period.Every)),
		GroupHeader: or(t.GroupBy, w.Group), ValueHeader: w.valueHeader(t),
		CSV: "/open/v1/releases/" + t.ID + ".csv", CSVName: t.ID + ".csv", JSON: "/open/v1/releases/" + t.ID}
	tv.Caption = fmt.Sprintf(w.Caption, title, w.span(t.Period.Start, t.Period.End))
	if m := t.Margin; m > 0 && !math.IsInf(m, 0) {
		tv.Accuracy = fmt.Sprintf(w.Accuracy, openSignificant(m), openPercent(t.ConfidenceLevel))
	}
	if b := t.Budget.BudgetPeriod; b != nil && !b.Start.IsZero() {
		tv.Spent = fmt.Sprintf(w.SpentPeriod, openEpsilon(t.Epsilon), t.Budget.Population, openEpsilon(t.Budget.EpsilonCap), w.span(b.Start, b.End))
	} else {
		tv.Spent = fmt.Sprintf(w.SpentTotal, openEpsilon(t.Epsilon), t.Budget.Population, openEpsilon(t.Budget.EpsilonCap))
	}
	if !t.Current {
		tv.Stale, tv.Note = fmt.Sprintf(w.Stale, w.date(t.ReleasedAt)), t.Note
	}
	for _, c := range t.Cells {
		row := openRowView{Group: w.Total, Epsilon: openEpsilon(c.Epsilon)}
		if c.Key != nil {
			row.Group = *c.Key
		}
		if why := openWithheld(c); why != "" {
			row.Withheld = w.withheld(why)
		} else {
			row.Value = openNumber(*c.Value, dec)
			row.Interval = fmt.Sprintf(w.Interval, openNumber(c.CI95[0], dec), openNumber(c.CI95[1], dec))
		}
		tv.Rows = append(tv.Rows, row)
	}
	tv.Chart = openChartOf(w, title, t, tv.Rows, dec)
	tv.About = []openFact{{w.Source, t.Source + "/" + t.Dataset}, {w.Mechanism, t.Mechanism}}
	if t.Delta > 0 {
		tv.About = append(tv.About, openFact{"δ", strconv.FormatFloat(t.Delta, 'g', 3, 64)})
	}
	if t.Accounting != "" {
		tv.About = append(tv.About, openFact{w.Accounting, t.Accounting})
	}
	if t.Counts != "" {
		tv.About = append(tv.About, openFact{w.Counts, t.Counts})
	}
	if t.Guarantee != "" {
		tv.About = append(tv.About, openFact{w.Guarantee, t.Guarantee})
	}
	return tv
}

// openWithheld is why a cell shows no number, "" when it shows one: a
// cell is withheld when it says so, whatever else it carries, and a cell
// without a finite value and interval has no number to show.
func openWithheld(c OpenCell) string {
	switch {
	case c.Suppressed != "":
		return c.Suppressed
	case c.Value == nil || c.CI95 == nil || !finite(*c.Value) || !finite(c.CI95[0]) || !finite(c.CI95[1]):
		return "no_value"
	}
	return ""
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func or(s, alt string) string {
	if s != "" {
		return s
	}
	return alt
}

// openBudgetView is the public ledger as the page shows it.
type openBudgetView struct {
	// Unavailable is set when the ledger could not be read.
	Unavailable string
	AsOf        string
	Allocations []openAllocationView
}

// openAllocationView is one population's open allocation.
type openAllocationView struct {
	Caption     string
	Releases    []openReleaseSpendView
	Spent, Left string
}

// openReleaseSpendView is what one release charged to an allocation
// spends each period and has spent in the budget period.
type openReleaseSpendView struct{ Name, Every, Spent string }

// openBudgetOf writes the ledger in words; nil when there is nothing to
// say (no allocation, or open data without releases).
func openBudgetOf(w *openWords, l *OpenLedger, err error, tables []openTableView) *openBudgetView {
	if err != nil {
		return &openBudgetView{Unavailable: w.LedgerUnavailable}
	}
	if l == nil || len(l.Allocations) == 0 {
		return nil
	}
	titles := map[string]string{}
	for _, t := range tables {
		titles[t.ID] = t.Title
	}
	v := &openBudgetView{AsOf: fmt.Sprintf(w.AsOf, w.dateTime(l.AsOf))}
	for _, a := range l.Allocations {
		av := openAllocationView{Spent: openEpsilon(a.EpsilonSpent), Left: openEpsilon(a.EpsilonLeft)}
		if a.BudgetPeriod != nil && !a.BudgetPeriod.Start.IsZero() {
			av.Caption = fmt.Sprintf(w.LedgerPeriod, a.Population, openEpsilon(a.EpsilonCap), w.span(a.BudgetPeriod.Start, a.BudgetPeriod.End))
		} else {
			av.Caption = fmt.Sprintf(w.LedgerTotal, a.Population, openEpsilon(a.EpsilonCap))
		}
		for _, rel := range a.Releases {
			av.Releases = append(av.Releases, openReleaseSpendView{Name: or(titles[rel.ID], rel.ID),
				Every: fmt.Sprintf(w.LedgerRelease, openEpsilon(rel.EpsilonPerPeriod), w.every(rel.Every)), Spent: openEpsilon(rel.EpsilonSpent)})
		}
		v.Allocations = append(v.Allocations, av)
	}
	return v
}

// The chart: horizontal bars with their 95% intervals as whiskers, drawn
// in SVG on the server, one row per group. Its sizes are in the SVG's own
// units; the page scales it to its width.
const (
	chartWidth  = 420.0 // 13-unit text is 11 px on a 360 px phone
	chartLabels = 100.0 // the group names, right-aligned before the plot
	chartRight  = 60.0  // room for a value after its whisker
	chartRow    = 30.0
	chartTop    = 4.0
	chartAxis   = 28.0 // the tick labels under the plot
	chartFont   = 13.0
)

// openChart is a table's chart, its geometry computed.
type openChart struct {
	Width, Height float64
	// Title and Summary say in words what it shows, for a screen reader
	// (the table holds the numbers).
	Title, Summary string
	PlotX, PlotW   float64
	PlotEnd        float64
	PlotTop, AxisY float64
	ZeroX          float64
	Ticks          []openTick
	Rows           []openChartRow
}

type openTick struct {
	X     float64
	Label string
}

// openChartRow is one group: a bar and a whisker, or a labelled gap.
type openChartRow struct {
	Label           string
	Y, MidY, TextY  float64
	GapY, BarY      float64
	Withheld        string
	BarX, BarW      float64
	LoX, HiX        float64
	CapTop, CapBot  float64
	Value           string
	ValueX, GapMidX float64
}

// openChartOf draws t's cells, rows their groups as the table names
// them; nil when no cell has a number to draw.
func openChartOf(w *openWords, title string, t *OpenTable, rows []openRowView, dec int) *openChart {
	lo, hi, drawn := 0.0, 0.0, 0
	for _, c := range t.Cells {
		if openWithheld(c) != "" {
			continue
		}
		drawn++
		lo = min(lo, c.CI95[0], *c.Value)
		hi = max(hi, c.CI95[1], *c.Value)
	}
	if drawn == 0 {
		return nil
	}
	if hi <= lo {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / 6)
	lo, hi = math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	ch := &openChart{Width: chartWidth, PlotX: chartLabels, PlotW: chartWidth - chartLabels - chartRight, PlotTop: chartTop,
		Title: fmt.Sprintf(w.ChartTitle, title)}
	ch.PlotEnd = ch.PlotX + ch.PlotW
	x := func(v float64) float64 { return round1(ch.PlotX + (v-lo)/(hi-lo)*ch.PlotW) }
	ch.ZeroX = x(0)
	tickDec := 0
	if _, frac, ok := strings.Cut(strconv.FormatFloat(step, 'f', -1, 64), "."); ok {
		tickDec = len(frac)
	}
	for v := lo; v <= hi+step/2; v += step {
		ch.Ticks = append(ch.Ticks, openTick{X: x(v), Label: openNumber(v, tickDec)})
	}
	withheld := 0
	for i, c := range t.Cells {
		y := chartTop + float64(i)*chartRow
		r := openChartRow{Label: chartClip(rows[i].Group, chartLabels-8), Y: y, MidY: y + chartRow/2, TextY: y + chartRow/2 + chartFont*0.35,
			GapY: y + 3, BarY: y + 7, GapMidX: round1(ch.PlotX + ch.PlotW/2)}
		if why := openWithheld(c); why != "" {
			r.Withheld = w.chartWithheld(why)
			withheld++
		} else {
			v := *c.Value
			r.BarX, r.BarW = ch.ZeroX, max(0, x(v)-ch.ZeroX) // noise can push a value below 0: no bar, an honest whisker
			r.LoX, r.HiX = x(c.CI95[0]), x(c.CI95[1])
			r.CapTop, r.CapBot = r.MidY-5, r.MidY+5
			r.Value, r.ValueX = openNumber(v, dec), max(r.HiX, ch.ZeroX+r.BarW)+6
		}
		ch.Rows = append(ch.Rows, r)
	}
	ch.AxisY = chartTop + float64(len(t.Cells))*chartRow
	ch.Height = ch.AxisY + chartAxis
	ch.Summary = fmt.Sprintf(w.ChartSummary, title, len(t.Cells), withheld)
	return ch
}

// niceStep is the least of 1, 2, 2.5 or 5 times a power of ten that is
// at least raw: the tick spacing.
func niceStep(raw float64) float64 {
	if !(raw > 0) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// chartClip shortens s to about width units of chartFont text, a CJK
// character counting a full em and any other about 0.6, ending it with
// an ellipsis; the table gives the whole name.
func chartClip(s string, width float64) string {
	em := func(r rune) float64 {
		if r >= 0x2E80 {
			return chartFont
		}
		return chartFont * 0.6
	}
	total := 0.0
	for _, r := range s {
		total += em(r)
	}
	if total <= width {
		return s
	}
	used := em('…')
	for i, r := range s {
		if used+em(r) > width {
			return s[:i] + "…"
		}
		used += em(r)
	}
	return s
}

// openDecimals is how many decimals a table's numbers are shown with:
// none for counts (the JSON and CSV keep the exact noisy value), else
// enough for two significant digits of the margin of error; digits
// beyond those are noise.
func openDecimals(t *OpenTable) int {
	switch {
	case t.Metric == "count":
		return 0
	case !(t.Margin > 0) || math.IsInf(t.Margin, 0):
		return 2
	}
	return min(6, max(0, 1-int(math.Floor(math.Log10(t.Margin)))))
}

// openSignificant writes f with two significant digits, as a margin of
// error is known.
func openSignificant(f float64) string {
	d := 1 - int(math.Floor(math.Log10(f)))
	if d >= 0 {
		return openNumber(f, min(d, 6))
	}
	p := math.Pow(10, float64(-d))
	return openNumber(math.Round(f/p)*p, 0)
}

// openNumber writes f with dec decimals and thousands separated by
// commas (as both English and Chinese write them), never "-0".
func openNumber(f float64, dec int) string {
	p := math.Pow(10, float64(dec))
	s := strconv.FormatFloat(math.Round(math.Abs(f)*p)/p, 'f', dec, 64) // half away from zero, as people round
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if f < 0 && strings.Trim(s, "0.") != "" {
		b.WriteByte('-')
	}
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}

func openEpsilon(f float64) string { return strconv.FormatFloat(f, 'g', 3, 64) }

func openPercent(level float64) string {
	if !(level > 0 && level < 1) {
		level = 0.95
	}
	return strconv.FormatFloat(level*100, 'g', 3, 64) + "%"
}
