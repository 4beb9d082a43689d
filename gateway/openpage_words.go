package gateway

// The open data page's words, in English and in Chinese: every string the
// page shows is here, and the page's numbers and dates are written here
// in the language's way.

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// openWords are the page's words in one language. A field whose doc says
// "takes" is a format; the other fields are shown as they are.
type openWords struct {
	// Code is the language in ?lang=, Lang the page's lang attribute,
	// Name the language's own name.
	Code, Lang, Name string
	Title            string
	Intro            string
	Skip             string
	Languages        string
	Contents         string
	Empty            string
	// Group heads the group column of a table without a group_by; Total
	// names its one row.
	Group, Total string
	// Count heads a count's value column; Sum and Mean take the field.
	Count, Sum, Mean string
	IntervalHead     string
	EpsilonHead      string
	// Interval takes the low and high ends of a 95% interval.
	Interval string
	// The reasons a cell is withheld, by OpenCell.Suppressed; NoValue for
	// a cell that has no number for any other reason.
	WithheldNoise, WithheldThreshold, NoValue string
	// The same, short enough for the chart's gap.
	GapNoise, GapThreshold, GapNoValue string
	// Caption takes the title and the period.
	Caption string
	// Accuracy takes the margin of error and the confidence level.
	Accuracy string
	// SpentPeriod takes the release's ε, the population, its open
	// allocation's ε and the budget period; SpentTotal the same but the
	// period, for a budget that does not renew.
	SpentPeriod, SpentTotal string
	// Released takes when, the period and how often.
	Released string
	// Stale takes the date of the last good release.
	Stale    string
	NoteHead string
	// Every takes a number of days; Daily is every one day; EveryHours
	// takes a number of hours.
	Every, Daily, EveryHours string
	// ChartTitle takes the title; ChartSummary the title, the number of
	// groups and the number withheld.
	ChartTitle, ChartSummary string
	CSV, JSON                string
	About                    string
	Source, Mechanism        string
	Accounting, Counts       string
	Guarantee                string
	// The ledger: LedgerPeriod takes the population, its open allocation's
	// ε and the budget period; LedgerTotal the same but the period;
	// LedgerRelease the ε per period and how often; AsOf the time it
	// was read.
	LedgerHeading, LedgerIntro           string
	LedgerPeriod, LedgerTotal            string
	ReleaseHead, EachPeriodHead          string
	SpentHead, LedgerRelease             string
	Spent, Left, AsOf, LedgerUnavailable string
	Footer, API                          string
	Catalog, Releases, Ledger            string
	// DateLayout and TimeLayout write a date and a time of day in UTC;
	// UTC follows a time; Range joins the two ends of a period.
	DateLayout, TimeLayout, UTC, Range string
}

var openEN = openWords{
	Code: "en", Lang: "en", Name: "English",
	Title:     "Open statistics",
	Intro:     "Statistics published for everyone, with differential privacy: every number carries calibrated random noise, so that no table reveals whether any one person is in the data. Each table is computed once per period; no account or token is needed.",
	Skip:      "Skip to the tables",
	Languages: "Language",
	Contents:  "Tables on this page",
	Empty:     "No table has been published yet. Each declared table is computed once per period; please come back later.",
	Group:     "Group", Total: "Total",
	Count: "Count", Sum: "Sum of %s", Mean: "Mean of %s",
	IntervalHead: "95% interval", EpsilonHead: "Privacy loss ε",
	Interval:      "%s to %s",
	WithheldNoise: "withheld: smaller than its margin of error", WithheldThreshold: "withheld: below the publication threshold",
	NoValue:  "withheld: no number was published",
	GapNoise: "withheld: too noisy", GapThreshold: "withheld: below threshold", GapNoValue: "withheld",
	Caption:     "%s, %s",
	Accuracy:    "Each number is accurate to about ±%s at %s confidence.",
	SpentPeriod: "This release spent ε = %s of the ε = %[3]s that “%[2]s” has for open data in its budget period, %[4]s.",
	SpentTotal:  "This release spent ε = %s of the ε = %[3]s that “%[2]s” has for open data in all (it does not renew).",
	Released:    "Released %s, for the period %s; a new release comes %s.",
	Stale:       "This is not the current release: the latest period’s could not be computed, so this is the last good release, of %s.",
	NoteHead:    "Note:",
	Every:       "every %d days", Daily: "every day", EveryHours: "every %d hours",
	ChartTitle:   "Chart: %s",
	ChartSummary: "Bar chart of “%s”, each bar with its 95%% interval. Groups: %d; withheld: %d. The table below gives every number.",
	CSV:          "Download CSV", JSON: "JSON",
	About:  "About this release",
	Source: "Computed from", Mechanism: "Mechanism", Accounting: "Accounting", Counts: "A count counts", Guarantee: "Guarantee",
	LedgerHeading: "Open data budget",
	LedgerIntro:   "What each population’s allocation for open data has spent, in ε, and what it has left.",
	LedgerPeriod:  "“%s”: ε = %s for open data, %s",
	LedgerTotal:   "“%s”: ε = %s for open data in all",
	ReleaseHead:   "Release", EachPeriodHead: "Spends", SpentHead: "Spent so far",
	LedgerRelease: "ε = %s %s",
	Spent:         "Spent", Left: "Left", AsOf: "As of %s.",
	LedgerUnavailable: "The budget ledger cannot be read just now; the tables above are not affected.",
	Footer:            "This page runs no script and sets no cookie.",
	API:               "The same data for programs:",
	Catalog:           "catalogue (DCAT)", Releases: "releases (JSON)", Ledger: "budget ledger (JSON)",
	DateLayout: "2 Jan 2006", TimeLayout: "15:04", UTC: " UTC", Range: "%s – %s",
}

var openZH = openWords{
	Code: "zh", Lang: "zh-CN", Name: "中文",
	Title:     "开放统计数据",
	Intro:     "面向所有人公开的统计数据，采用差分隐私保护：每个数值都加入了经过校准的随机噪声，因此任何一张表都不会透露某个人是否在数据之中。每张表每个周期计算一次；无需账号或令牌。",
	Skip:      "跳到数据表",
	Languages: "语言",
	Contents:  "本页数据表",
	Empty:     "尚未发布任何数据表。每张数据表每个周期计算一次，请稍后再来。",
	Group:     "分组", Total: "合计",
	Count: "计数", Sum: "%s 总和", Mean: "%s 平均值",
	IntervalHead: "95% 区间", EpsilonHead: "隐私损失 ε",
	Interval:      "%s 至 %s",
	WithheldNoise: "已隐去：数值小于误差范围", WithheldThreshold: "已隐去：数值低于发布阈值",
	NoValue:  "已隐去：未发布数值",
	GapNoise: "已隐去：误差过大", GapThreshold: "已隐去：低于阈值", GapNoValue: "已隐去",
	Caption:     "%s，%s",
	Accuracy:    "每个数值的误差约为 ±%s（置信度 %s）。",
	SpentPeriod: "本次发布消耗隐私预算 ε = %s；“%s”用于开放数据的预算为 ε = %s（%s）。",
	SpentTotal:  "本次发布消耗隐私预算 ε = %s；“%s”用于开放数据的预算共为 ε = %s（不续期）。",
	Released:    "发布于 %s，统计周期 %s，%s发布一次。",
	Stale:       "这不是当前的数据：最近一个周期的数据未能计算，这是上一次成功发布的数据，发布于 %s。",
	NoteHead:    "说明：",
	Every:       "每 %d 天", Daily: "每天", EveryHours: "每 %d 小时",
	ChartTitle:   "图表：%s",
	ChartSummary: "“%s”条形图，每个条形附 95%% 区间。共 %d 组，其中 %d 组已隐去。下表列出全部数值。",
	CSV:          "下载 CSV", JSON: "JSON",
	About:  "关于本次发布",
	Source: "数据来源", Mechanism: "机制", Accounting: "核算方式", Counts: "计数对象", Guarantee: "隐私保证",
	LedgerHeading: "开放数据隐私预算",
	LedgerIntro:   "各人群用于开放数据的隐私预算已消耗和剩余的 ε。",
	LedgerPeriod:  "“%s”：开放数据预算 ε = %s，%s",
	LedgerTotal:   "“%s”：开放数据预算共 ε = %s",
	ReleaseHead:   "数据表", EachPeriodHead: "每期消耗", SpentHead: "已消耗",
	LedgerRelease: "%[2]s ε = %[1]s",
	Spent:         "已消耗", Left: "剩余", AsOf: "截至 %s。",
	LedgerUnavailable: "暂时无法读取预算账本；以上数据表不受影响。",
	Footer:            "本页不运行任何脚本，也不设置 Cookie。",
	API:               "供程序使用的相同数据：",
	Catalog:           "数据目录（DCAT）", Releases: "发布列表（JSON）", Ledger: "预算账本（JSON）",
	DateLayout: "2006年1月2日", TimeLayout: "15:04", UTC: "（UTC）", Range: "%s至%s",
}

// date writes t's day in UTC.
func (w *openWords) date(t time.Time) string { return t.UTC().Format(w.DateLayout) }

// dateTime writes t to the minute, in UTC.
func (w *openWords) dateTime(t time.Time) string {
	return t.UTC().Format(w.DateLayout+" "+w.TimeLayout) + w.UTC
}

// span writes the period [start, end). A period of whole days is written
// as its first and last days, as a reader counts them (1 March to 30
// March, not to 31 March at 00:00); any other to the minute.
func (w *openWords) span(start, end time.Time) string {
	start, end = start.UTC(), end.UTC()
	if midnight(start) && midnight(end) && end.After(start) {
		last := end.AddDate(0, 0, -1)
		if last.Equal(start) {
			return w.date(start)
		}
		return fmt.Sprintf(w.Range, w.date(start), w.date(last))
	}
	return fmt.Sprintf(w.Range, w.dateTime(start), w.dateTime(end))
}

func midnight(t time.Time) bool {
	return t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
}

// every writes a release's period ("30d", or a duration) as how often it
// comes.
func (w *openWords) every(every string) string {
	if n, err := strconv.Atoi(strings.TrimSuffix(every, "d")); err == nil && strings.HasSuffix(every, "d") && n > 0 {
		if n == 1 {
			return w.Daily
		}
		return fmt.Sprintf(w.Every, n)
	}
	if d, err := time.ParseDuration(every); err == nil && d > 0 && d%time.Hour == 0 {
		if d == 24*time.Hour {
			return w.Daily
		}
		return fmt.Sprintf(w.EveryHours, int(d/time.Hour))
	}
	return every
}

// valueHeader heads the value column: what the metric is of.
func (w *openWords) valueHeader(t *OpenTable) string {
	switch t.Metric {
	case "sum":
		return fmt.Sprintf(w.Sum, t.Field)
	case "mean":
		return fmt.Sprintf(w.Mean, t.Field)
	}
	return w.Count
}

// withheld says why a cell shows no number.
func (w *openWords) withheld(why string) string {
	switch why {
	case SuppressedNoise:
		return w.WithheldNoise
	case SuppressedThreshold:
		return w.WithheldThreshold
	}
	return w.NoValue
}

// chartWithheld labels a withheld group's gap in the chart.
func (w *openWords) chartWithheld(why string) string {
	switch why {
	case SuppressedNoise:
		return w.GapNoise
	case SuppressedThreshold:
		return w.GapThreshold
	}
	return w.GapNoValue
}
