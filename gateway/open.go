package gateway

// Open data: declared statistics published to everyone, without a token.
// Each release is computed by the gateway itself once per period (never
// per visitor), charged once to its population's "open" allocation,
// stored in the answer cache (durable, shared by replicas, first answer
// wins) and audited; visitors read the copy in memory. A period whose
// release cannot be computed serves the last good one, with its date.

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicegw/sluice/policy"
)

// OpenTable is a published release, as everyone reads it.
type OpenTable struct {
	ID            string `json:"id"`
	Title         string `json:"title"`
	TitleZH       string `json:"title_zh,omitempty"`
	Description   string `json:"description,omitempty"`
	DescriptionZH string `json:"description_zh,omitempty"`
	// Source and Dataset are what the table is computed from.
	Source  string `json:"source"`
	Dataset string `json:"dataset"`
	// Metric is count, sum or mean, of Field, by GroupBy.
	Metric  string `json:"metric"`
	Field   string `json:"field,omitempty"`
	GroupBy string `json:"group_by,omitempty"`
	// Counts says what a count counts: people, each once per group.
	Counts string `json:"counts,omitempty"`
	// Epsilon and Delta are the privacy loss of this release, the loss
	// each cell shares.
	Epsilon         float64 `json:"epsilon"`
	Delta           float64 `json:"delta"`
	Mechanism       string  `json:"mechanism"`
	Accounting      string  `json:"accounting"`
	ConfidenceLevel float64 `json:"confidence_level"`
	// Margin is the typical half-width of a cell's 95% interval: each
	// number is accurate to about ±Margin.
	Margin float64 `json:"margin"`
	// Period is the period the release was computed for.
	Period OpenPeriod `json:"period"`
	// ReleasedAt is when it was computed.
	ReleasedAt time.Time `json:"released_at"`
	// Current is false when the release of the period in force could not
	// be computed: this is the last good one, and Note says so.
	Current bool   `json:"current"`
	Note    string `json:"note,omitempty"`
	// Cells are the table's numbers, one per group of the public domain.
	Cells []OpenCell `json:"cells"`
	// Budget is the allocation the release was charged to.
	Budget OpenBudget `json:"budget"`
	// Guarantee states the population's budget in words.
	Guarantee string `json:"guarantee"`
}

// OpenPeriod is one period of a release.
type OpenPeriod struct {
	Every string    `json:"every"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// OpenCell is one number of a table, or the reason it is withheld: a
// withheld cell carries no value and no interval.
type OpenCell struct {
	// Key is the group; absent for an ungrouped total.
	Key     *string     `json:"key,omitempty"`
	Value   *float64    `json:"value,omitempty"`
	CI95    *[2]float64 `json:"ci95,omitempty"`
	Epsilon float64     `json:"epsilon"`
	// Suppressed is why the cell is withheld: "noise_exceeds_value" (the
	// number is smaller than its own 95% margin of error) or
	// "below_threshold" (below the release's suppress_below).
	Suppressed string `json:"suppressed,omitempty"`
}

// The reasons a cell is withheld.
const (
	SuppressedNoise     = "noise_exceeds_value"
	SuppressedThreshold = "below_threshold"
)

// OpenBudget names the allocation a release draws on and its cap.
type OpenBudget struct {
	Population string  `json:"population"`
	Allocation string  `json:"allocation"`
	EpsilonCap float64 `json:"epsilon_cap"`
	// BudgetPeriod is the population's budget period in force, when its
	// budget renews.
	BudgetPeriod *period `json:"budget_period,omitempty"`
}

// OpenLedger is the public ledger: what each population's open
// allocation has spent and has left, and what each release spent.
type OpenLedger struct {
	Allocations []OpenAllocation `json:"allocations"`
	// AsOf is when the ledger was read.
	AsOf time.Time `json:"as_of"`
}

// OpenAllocation is one population's open allocation.
type OpenAllocation struct {
	Population   string  `json:"population"`
	Allocation   string  `json:"allocation"`
	Accounting   string  `json:"accounting"`
	BudgetPeriod *period `json:"budget_period,omitempty"`
	EpsilonCap   float64 `json:"epsilon_cap"`
	EpsilonSpent float64 `json:"epsilon_spent"`
	EpsilonLeft  float64 `json:"epsilon_left"`
	// Releases are the releases charged to it, each with its ε per
	// period and what it spent in the budget period in force.
	Releases []OpenReleaseSpend `json:"releases"`
}

// OpenReleaseSpend is what one release has spent.
type OpenReleaseSpend struct {
	ID               string  `json:"id"`
	EpsilonPerPeriod float64 `json:"epsilon_per_period"`
	Every            string  `json:"every"`
	EpsilonSpent     float64 `json:"epsilon_spent"`
}

// openData is the gateway's open data: the declared releases and the
// latest table of each, which visitors read.
type openData struct {
	releases []*openRelease // as declared
	mu       sync.RWMutex
	latest   map[string]*openServed // by release id
}

// openServed is a table as it is served, encoded once.
type openServed struct {
	table *OpenTable
	json  []byte
	csv   []byte
	etag  string
}

// tables are the latest tables, in the order declared; a release not yet
// computed is absent.
func (o *openData) tables() []*OpenTable {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var out []*OpenTable
	for _, r := range o.releases {
		if sv := o.latest[r.cfg.ID]; sv != nil {
			out = append(out, sv.table)
		}
	}
	return out
}

// served is the latest table of release id, nil when none.
func (o *openData) served(id string) *openServed {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.latest[id]
}

// put makes t the latest table of its release.
func (o *openData) put(t *OpenTable) error {
	j, err := json.Marshal(t)
	if err != nil {
		return err
	}
	c, err := t.csv()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(j)
	sv := &openServed{table: t, json: append(j, '\n'), csv: c, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.latest == nil {
		o.latest = map[string]*openServed{}
	}
	o.latest[t.ID] = sv
	return nil
}

// csvHeader are the columns of a table's CSV, one row per cell: what the
// JSON says of each cell, number for number.
var csvHeader = []string{"group", "value", "ci95_low", "ci95_high", "epsilon", "suppressed"}

// csv encodes the table's cells; a withheld cell has empty numbers.
func (t *OpenTable) csv() ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(csvHeader)
	num := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	for _, c := range t.Cells {
		row := make([]string, len(csvHeader))
		if c.Key != nil {
			row[0] = csvSafe(*c.Key)
		}
		if c.Value != nil {
			row[1] = num(*c.Value)
		}
		if c.CI95 != nil {
			row[2], row[3] = num(c.CI95[0]), num(c.CI95[1])
		}
		row[4], row[5] = num(c.Epsilon), c.Suppressed
		w.Write(row)
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// csvSafe keeps a spreadsheet from reading a group name as a formula
// (CSV injection: a cell starting with = + - @ or a tab is prefixed with
// a quote, as OWASP advises).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// openRelease is a declared release, planned at start.
type openRelease struct {
	cfg   *OpenReleaseConfig
	ds    *dataset
	job   *statsJob           // the statistics job each period repeats
	lim   *policy.StatsLimits // what it is charged as: the open allocation
	every time.Duration
}
