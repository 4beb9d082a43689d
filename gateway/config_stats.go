package gateway

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// PopulationConfig is a group of people whose privacy statistics budgets
// protect: every release about any dataset whose privacy unit identifies
// them is charged to the population's budget, so adding a dataset about
// the same people adds no budget.
type PopulationConfig struct {
	// Name is the population's name (datasets name it in population).
	// Required in populations; leave it unset in default_population.
	Name string `yaml:"name"`
	// Budget is the privacy loss each person of the population may bear in
	// all releases together (per period, when one is set). Required.
	Budget BudgetConfig `yaml:"budget"`
	// Allocations reserve ε of the budget for each role class: the policy
	// names the class a release is charged to in stats.account ("analyst",
	// "public", "open"). They sum to at most budget.epsilon and never
	// borrow from each other: one class spending its share leaves the
	// others theirs. A class without an allocation gets no statistics.
	// Required: at least one class.
	//
	//config:pattern nameRE
	Allocations map[string]float64 `yaml:"allocations"`
	// Accounting is how losses add up: pure (default; ε adds, Laplace
	// noise) or zcdp (ρ adds, Gaussian noise; (ε, δ) by the standard
	// conversion). See docs/statistics.md.
	//
	//config:enum pure zcdp
	Accounting string `yaml:"accounting"`
}

// BudgetConfig is a population's privacy budget.
type BudgetConfig struct {
	// Epsilon is the population's ε. Required: positive, at most 1e6.
	Epsilon float64 `yaml:"epsilon"`
	// Delta is the population's δ (default 1e-6; at most 0.001): what
	// private partition selection, and under zCDP the conversion to
	// (ε, δ), may spend.
	Delta float64 `yaml:"delta"`
	// Period renews the budget at each boundary ("365d", "30d", "24h"):
	// the guarantee is then per period; at least 1h. Unset, a spent
	// budget stays spent.
	Period Duration `yaml:"period"`
	// PeriodStart is where periods are counted from, an RFC 3339 date or
	// time (default 1970-01-01T00:00:00Z). Needs period.
	PeriodStart string `yaml:"period_start"`
}

// NoiseConfig marks a dataset whose upstream serves aggregates (rows such
// as {"district": ..., "visits": 1234}) rather than records about people.
// The gateway cannot bound contributions it does not see, so the owner
// declares them; statistics on the dataset are sums of its numeric fields
// with noise calibrated to that declaration, charged like any release.
type NoiseConfig struct {
	// Mechanism is laplace (default) or gaussian.
	//
	//config:enum laplace gaussian
	Mechanism string `yaml:"mechanism"`
	// Delta is the δ of Gaussian noise per release (default 1e-6; at most
	// 0.001); unset for Laplace.
	Delta float64 `yaml:"delta"`
	// MaxRows is how many rows one person's data can reach (default 1).
	MaxRows int `yaml:"max_rows"`
	// Sensitivity maps each numeric field statistics may sum to how much
	// one person can change its value in one row. Required: at least one
	// declared numeric field.
	Sensitivity map[string]float64 `yaml:"sensitivity"`
}

// validatePopulations checks populations, default_population and each
// dataset's population.
func (c *Config) validatePopulations(bad func(field, format string, args ...any)) {
	names := map[string]bool{}
	for i := range c.Populations {
		p := &c.Populations[i]
		f := fmt.Sprintf("populations[%d]", i)
		switch {
		case !nameRE.MatchString(p.Name):
			bad(f+".name", "want lower-case letters, digits, - or _, got %q", p.Name)
		case names[p.Name]:
			bad(f+".name", "duplicate population %q", p.Name)
		}
		names[p.Name] = true
		p.validate(f, bad)
	}
	if p := c.DefaultPopulation; p != nil {
		if p.Name != "" {
			bad("default_population.name", "leave unset: each dataset without a population is one named after it")
		}
		p.validate("default_population", bad)
	}
	for i := range c.Sources {
		for j := range c.Sources[i].Datasets {
			d := &c.Sources[i].Datasets[j]
			if d.Population != "" && !names[d.Population] {
				bad(fmt.Sprintf("sources[%d].datasets[%d].population", i, j), "%q is not among populations", d.Population)
			}
		}
	}
}

// maxBudgetEpsilon keeps every cap well inside what the ledger holds.
const maxBudgetEpsilon = 1e6

func (p *PopulationConfig) validate(f string, bad func(field, format string, args ...any)) {
	b := &p.Budget
	if !(b.Epsilon > 0 && b.Epsilon <= maxBudgetEpsilon) {
		bad(f+".budget.epsilon", "want 0 < ε <= %g, got %v", float64(maxBudgetEpsilon), b.Epsilon)
	}
	if b.Delta == 0 {
		b.Delta = 1e-6
	}
	if !(b.Delta > 0 && b.Delta <= 1e-3) {
		bad(f+".budget.delta", "want 0 < δ <= 0.001, got %v", b.Delta)
	}
	if b.Period < 0 || (b.Period > 0 && b.Period < Duration(time.Hour)) {
		bad(f+".budget.period", "want at least 1h, or unset for a budget that never renews")
	}
	if b.PeriodStart != "" {
		if b.Period == 0 {
			bad(f+".budget.period_start", "needs budget.period")
		}
		if _, err := parsePeriodStart(b.PeriodStart); err != nil {
			bad(f+".budget.period_start", "want an RFC 3339 date or time, got %q", b.PeriodStart)
		}
	}
	switch p.Accounting {
	case "":
		p.Accounting = "pure"
	case "pure", "zcdp":
	default:
		bad(f+".accounting", "want pure or zcdp, got %q", p.Accounting)
	}
	if len(p.Allocations) == 0 {
		bad(f+".allocations", "name at least one role class and its ε")
	}
	sum := 0.0
	for _, class := range slices.Sorted(maps.Keys(p.Allocations)) {
		eps := p.Allocations[class]
		switch {
		case !nameRE.MatchString(class):
			bad(f+".allocations", "%q: want lower-case letters, digits, - or _", class)
		case !(eps > 0) || math.IsInf(eps, 0):
			bad(f+".allocations."+class, "want a positive ε, got %v", eps)
		}
		sum += eps
	}
	if sum > b.Epsilon*(1+1e-12) {
		bad(f+".allocations", "they sum to ε=%g, more than budget.epsilon=%g", sum, b.Epsilon)
	}
}

// parsePeriodStart reads period_start: a date or an RFC 3339 time.
func parsePeriodStart(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

// validateStats checks a dataset's statistics settings and fills their
// defaults; df is the dataset's field path for errors.
func (d *DatasetConfig) validateStats(df string, bad func(field, format string, args ...any)) {
	if d.MaxRecords == 0 {
		d.MaxRecords = 100_000
	}
	if d.MaxRecords < 1 {
		bad(df+".max_records", "must be positive")
	}
	if d.StatsPageSize == 0 {
		d.StatsPageSize = 1000
	}
	if d.StatsPageSize < 1 {
		bad(df+".stats_page_size", "must be positive")
	}
	if d.MaxPartitions == 0 {
		d.MaxPartitions = 1
	}
	if d.MaxPartitions < 1 || d.MaxPartitions > 1000 {
		bad(df+".max_partitions", "want 1 to 1000")
	}
	if d.Delta == 0 {
		d.Delta = 1e-6
	}
	if !(d.Delta > 0 && d.Delta <= 1e-3) {
		bad(df+".delta", "want 0 < δ <= 0.001")
	}
	if d.StatsTimeout == 0 {
		d.StatsTimeout = Duration(time.Minute)
	}
	if d.StatsTimeout < 0 {
		bad(df+".stats_timeout", "must be positive")
	}
	if d.KAnonymityRefresh == 0 {
		d.KAnonymityRefresh = Duration(24 * time.Hour)
	}
	if d.KAnonymityRefresh < Duration(time.Second) {
		bad(df+".k_anonymity_refresh", "want at least 1s")
	}
	declared := func(field string) bool {
		_, ok := d.Fields[field]
		return d.Fields == nil || ok
	}
	for field, values := range d.Domains {
		f := df + ".domains." + field
		if !declared(field) {
			bad(f, "%q is not a declared field", field)
		}
		if len(values) == 0 {
			bad(f, "list at least one value")
		}
		seen := map[string]bool{}
		for _, v := range values {
			if seen[v] {
				bad(f, "%q is listed twice", v)
			}
			seen[v] = true
		}
	}
	n := d.Noise
	if n == nil {
		return
	}
	nf := df + ".noise"
	switch n.Mechanism {
	case "":
		n.Mechanism = "laplace"
	case "laplace", "gaussian":
	default:
		bad(nf+".mechanism", "want laplace or gaussian, got %q", n.Mechanism)
	}
	switch {
	case n.Mechanism == "gaussian" && n.Delta == 0:
		n.Delta = 1e-6
	case n.Mechanism == "laplace" && n.Delta != 0:
		bad(nf+".delta", "only Gaussian noise spends δ")
	}
	if n.Delta < 0 || n.Delta > 1e-3 {
		bad(nf+".delta", "want 0 < δ <= 0.001")
	}
	if n.MaxRows == 0 {
		n.MaxRows = 1
	}
	if n.MaxRows < 1 {
		bad(nf+".max_rows", "must be positive")
	}
	if len(n.Sensitivity) == 0 {
		bad(nf+".sensitivity", "declare the sensitivity of at least one numeric field")
	}
	for field, v := range n.Sensitivity {
		t := d.Fields[field].Type
		switch {
		case !declared(field):
			bad(nf+".sensitivity."+field, "%q is not a declared field", field)
		case !(v > 0) || math.IsInf(v, 0):
			bad(nf+".sensitivity."+field, "want a positive number")
		case t == "integer" && v != math.Trunc(v):
			bad(nf+".sensitivity."+field, "an integer field needs an integer sensitivity")
		case d.Fields != nil && t != "integer" && t != "number":
			bad(nf+".sensitivity."+field, "%q is not declared numeric (integer or number)", field)
		}
	}
}
