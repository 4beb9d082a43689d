package gateway

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/sluicegw/sluice/anonymize/dp"
)

// OpenConfig publishes declared statistics to everyone, without a token
// (see open.go): each release is computed once per period, charged to
// its population's "open" allocation, and served from the answer cache.
type OpenConfig struct {
	// Enabled serves GET /open/ and GET /open/v1/... without a token.
	Enabled bool `yaml:"enabled"`
	// Publisher names who publishes, in the catalogue (default "Sluice").
	Publisher string `yaml:"publisher"`
	// Rate limits the requests of each client address (IPv6: per /64)
	// to the open routes (default 120 per minute, burst 60).
	Rate *RateConfig `yaml:"rate"`
	// Releases are the published tables.
	Releases []OpenReleaseConfig `yaml:"releases"`
}

// OpenReleaseConfig declares one published table: a differentially
// private statistic of a dataset, computed once per period.
type OpenReleaseConfig struct {
	// ID names the release in URLs: lower-case letters, digits and '-'.
	ID string `yaml:"id"`
	// Title and TitleZH name the table in English and in Chinese.
	Title   string `yaml:"title"`
	TitleZH string `yaml:"title_zh"`
	// Description and DescriptionZH say what the table counts.
	Description   string `yaml:"description"`
	DescriptionZH string `yaml:"description_zh"`
	// Dataset is SOURCE/DATASET; it must belong to a population with an
	// "open" allocation.
	Dataset string `yaml:"dataset"`
	// Metric is count, sum or mean.
	Metric string `yaml:"metric"`
	// Field is the numeric field summed or averaged (not for count).
	Field string `yaml:"field"`
	// Bounds clamp each person's contribution to Field: [lower, upper]
	// (required for sum and mean).
	Bounds []float64 `yaml:"bounds"`
	// GroupBy is the field the table is grouped by; it must have a public
	// domain (the dataset's domains), so every group is listed, even one
	// whose number is withheld. Empty: one total.
	GroupBy string `yaml:"group_by"`
	// Epsilon is the privacy loss of each period's release.
	Epsilon float64 `yaml:"epsilon"`
	// Every is the period: a new release is computed at the start of
	// each period, counted from 1970-01-01 UTC (e.g. 30d, 7d, 24h).
	Every Duration `yaml:"every"`
	// SuppressBelow withholds a cell whose noisy value is below it
	// (default 0: only cells smaller than their own 95% margin of error
	// are withheld).
	SuppressBelow float64 `yaml:"suppress_below"`
}

var openID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// defaultOpenRate is open.rate when unset.
var defaultOpenRate = RateConfig{Rate: 120, Per: Duration(time.Minute), Burst: 60}

// validate checks the open section; datasets are checked against the
// sources when the gateway plans the releases.
func (o *OpenConfig) validate(bad func(field, format string, args ...any)) {
	if o.Rate == nil {
		r := defaultOpenRate
		o.Rate = &r
	}
	o.Rate.validate("open.rate", bad)
	if o.Publisher == "" {
		o.Publisher = "Sluice"
	}
	if o.Enabled && len(o.Releases) == 0 {
		bad("open.releases", "open data is enabled but declares no release")
	}
	seen := map[string]bool{}
	for i := range o.Releases {
		r := &o.Releases[i]
		f := fmt.Sprintf("open.releases[%d]", i)
		switch {
		case !openID.MatchString(r.ID):
			bad(f+".id", "want lower-case letters, digits and '-', got %q", r.ID)
		case seen[r.ID]:
			bad(f+".id", "%q is declared twice", r.ID)
		}
		seen[r.ID] = true
		if r.Title == "" {
			bad(f+".title", "required")
		}
		if src, ds, ok := strings.Cut(r.Dataset, "/"); !ok || src == "" || ds == "" {
			bad(f+".dataset", "want SOURCE/DATASET, got %q", r.Dataset)
		}
		switch dp.Metric(r.Metric) {
		case dp.Count:
			if r.Field != "" || r.Bounds != nil {
				bad(f+".field", "a count takes no field or bounds")
			}
		case dp.Sum, dp.Mean:
			if r.Field == "" {
				bad(f+".field", "required for %s", r.Metric)
			}
			if len(r.Bounds) != 2 || !(r.Bounds[0] < r.Bounds[1]) || math.IsInf(r.Bounds[0], 0) || math.IsInf(r.Bounds[1], 0) {
				bad(f+".bounds", "want [lower, upper], finite, lower < upper")
			}
		default:
			bad(f+".metric", "want count, sum or mean, got %q", r.Metric)
		}
		if !(r.Epsilon > 0) || r.Epsilon > 10 || math.IsInf(r.Epsilon, 0) {
			bad(f+".epsilon", "want 0 < ε ≤ 10, got %g", r.Epsilon)
		}
		if r.Every < Duration(time.Hour) {
			bad(f+".every", "want a period of at least 1h")
		}
		if math.IsNaN(r.SuppressBelow) || math.IsInf(r.SuppressBelow, 0) {
			bad(f+".suppress_below", "want a finite number")
		}
	}
}
