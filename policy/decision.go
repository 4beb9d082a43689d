package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"

	"github.com/sluicegw/sluice/anonymize"
)

// Decision is what the policy releases to one request. The zero Decision
// denies.
type Decision struct {
	Allow  bool   `json:"allow"`
	Reason string `json:"reason,omitempty"`
	// Fields maps field paths to treatments; fields not named are dropped.
	Fields map[string]anonymize.Rule `json:"fields,omitempty"`
	// Rows are conditions every released record must meet.
	Rows []anonymize.Cond `json:"rows,omitempty"`
	// Params are the query parameters the caller may pass upstream.
	Params []string `json:"params,omitempty"`
	// MaskedFilters names fields the caller may filter on although it
	// receives them masked or not at all. Without it such a filter is
	// refused: it would be an oracle on the hidden value.
	MaskedFilters []string `json:"masked_filters,omitempty"`
	// Suppress removes records whose count field is below a threshold
	// (small-cell suppression of pre-aggregated data); nil removes none.
	Suppress *anonymize.Suppress `json:"suppress,omitempty"`
	// MaxRows caps the records released per request; 0 means no cap.
	MaxRows int `json:"max_rows,omitempty"`
	// MinK asks for k-anonymity at release: a record read releases no
	// record whose equivalence class on the released quasi-identifiers,
	// over the caller's whole view of the dataset, holds fewer than MinK
	// records; 0 asks for none, else it is at least 2.
	MinK int `json:"min_k,omitempty"`
	// MinL adds l-diversity to MinK: no record is released whose class
	// holds fewer than MinL distinct values of a released sensitive
	// field; 0 asks for none, else it is at least 2 and MinK is set.
	MinL int `json:"min_l,omitempty"`
	// Grant names the sharing grant (input.grants) a read is released
	// under; the audit record names it. "" for none.
	Grant string `json:"grant,omitempty"`
	// Stats bounds statistics releases; nil allows none.
	Stats *StatsLimits `json:"stats,omitempty"`
	// Flags are markers the gateway records in the audit trail, such as
	// "break_glass"; they release nothing.
	Flags []string `json:"flags,omitempty"`

	// Plan is the compiled record transform of an allowing decision.
	Plan *anonymize.Plan `json:"-"`
}

// StatsLimits bound the differentially private releases a decision allows.
type StatsLimits struct {
	Metrics    []string              `json:"metrics"`
	MaxEpsilon float64               `json:"max_epsilon"`
	GroupBy    []string              `json:"group_by,omitempty"`
	Bounds     map[string][2]float64 `json:"bounds,omitempty"`
	// Account names the allocation of the dataset's population this
	// release is charged to: the caller's role class ("analyst",
	// "public"). Required: one class never spends another's share.
	Account string `json:"account,omitempty"`
	// ConsumerBudget caps what one consumer (issuer, organisation and
	// subject) may spend on the population.
	ConsumerBudget float64 `json:"consumer_budget,omitempty"`
	// OrgBudget caps what the caller's organisation (issuer and the dept,
	// azp or client_id claim) may spend on the population in all, so that
	// minting subjects inside one organisation buys nothing; 0 sets no
	// organisation cap.
	OrgBudget float64 `json:"org_budget,omitempty"`
}

// AllowsParam reports whether the decision lets the caller pass name.
func (d *Decision) AllowsParam(name string) bool {
	for _, p := range d.Params {
		if p == name {
			return true
		}
	}
	return false
}

// AllowsMaskedFilter reports whether the decision explicitly lets the
// caller filter on field although it does not receive field in clear.
func (d *Decision) AllowsMaskedFilter(field string) bool {
	for _, f := range d.MaskedFilters {
		if f == field {
			return true
		}
	}
	return false
}

// deny builds a denying decision.
func deny(reason string) *Decision { return &Decision{Reason: reason} }

// MalformedError says why a policy's result is not a valid decision.
type MalformedError struct{ Msg string }

func (e *MalformedError) Error() string { return "malformed decision: " + e.Msg }

func malformed(format string, args ...any) error {
	return &MalformedError{Msg: fmt.Sprintf(format, args...)}
}

// parseDecision validates the value of data.sluice.decision. Anything it
// does not understand makes the whole decision malformed: a typo in a
// policy must not quietly widen what is released.
func parseDecision(v any) (*Decision, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("want an object, got %T", v)
	}
	d := &Decision{}
	allow, ok := m["allow"].(bool)
	if !ok {
		return nil, malformed(`"allow" must be a boolean`)
	}
	if r, present := m["reason"]; present {
		if d.Reason, ok = r.(string); !ok {
			return nil, malformed(`"reason" must be a string`)
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val := m[k]
		var err error
		switch k {
		case "allow", "reason":
		case "fields":
			err = d.parseFields(val)
		case "rows":
			err = d.parseRows(val)
		case "params":
			d.Params, err = stringList(val)
		case "masked_filters":
			d.MaskedFilters, err = stringList(val)
		case "suppress":
			d.Suppress, err = anonymize.ParseSuppress(val)
		case "max_rows":
			d.MaxRows, err = nonNegInt(val)
		case "min_k":
			d.MinK, err = atLeastTwo(val)
		case "min_l":
			d.MinL, err = atLeastTwo(val)
		case "flags":
			d.Flags, err = stringList(val)
		case "grant":
			var ok bool
			if d.Grant, ok = val.(string); !ok || d.Grant == "" {
				err = fmt.Errorf("want a grant id, got %v", val)
			}
		case "stats":
			d.Stats, err = parseStats(val)
		default:
			err = fmt.Errorf("unknown member")
		}
		if err != nil {
			return nil, malformed("%s: %v", k, err)
		}
	}
	if !allow {
		return &Decision{Reason: d.Reason, Flags: d.Flags}, nil
	}
	if d.MinL > 0 && d.MinK == 0 {
		return nil, malformed("min_l: needs min_k")
	}
	d.Allow = true
	plan, err := anonymize.Compile(anonymize.Spec{Fields: d.Fields, Rows: d.Rows, Suppress: d.Suppress, MaxRows: d.MaxRows})
	if err != nil {
		return nil, malformed("%v", err)
	}
	d.Plan = plan
	return d, nil
}

func (d *Decision) parseFields(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("want an object, got %T", v)
	}
	d.Fields = make(map[string]anonymize.Rule, len(m))
	for path, t := range m {
		r, err := anonymize.ParseRule(t)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		d.Fields[path] = r
	}
	return nil
}

func (d *Decision) parseRows(v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("want an array, got %T", v)
	}
	for i, c := range list {
		cond, err := anonymize.ParseCond(c)
		if err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
		d.Rows = append(d.Rows, cond)
	}
	return nil
}

func parseStats(v any) (*StatsLimits, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want an object, got %T", v)
	}
	s := &StatsLimits{}
	for k, val := range m {
		var err error
		switch k {
		case "metrics":
			if s.Metrics, err = stringList(val); err == nil {
				for _, metric := range s.Metrics {
					if metric != "count" && metric != "sum" && metric != "mean" {
						err = fmt.Errorf("unknown metric %q", metric)
					}
				}
			}
		case "group_by":
			s.GroupBy, err = stringList(val)
		case "max_epsilon":
			s.MaxEpsilon, err = positive(val)
		case "consumer_budget":
			s.ConsumerBudget, err = positive(val)
		case "org_budget":
			s.OrgBudget, err = positive(val)
		case "account":
			if s.Account, err = str(val); err == nil && !accountRE.MatchString(s.Account) {
				err = fmt.Errorf("want a class name of lower-case letters, digits, - or _, got %q", s.Account)
			}
		case "bounds":
			s.Bounds, err = parseBounds(val)
		default:
			err = fmt.Errorf("unknown member")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	// Without an account or a consumer budget the gateway releases
	// nothing: it has no allocation to charge or no cap to keep.
	if s.MaxEpsilon == 0 {
		return nil, fmt.Errorf("max_epsilon is required")
	}
	return s, nil
}

// accountRE is what a population allocation's name may be.
var accountRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func str(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %T", v)
	}
	return s, nil
}

func parseBounds(v any) (map[string][2]float64, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want an object, got %T", v)
	}
	out := make(map[string][2]float64, len(m))
	for field, b := range m {
		pair, ok := b.([]any)
		if !ok || len(pair) != 2 {
			return nil, fmt.Errorf("%s: want [lower, upper]", field)
		}
		lo, err1 := number(pair[0])
		hi, err2 := number(pair[1])
		if err1 != nil || err2 != nil || lo > hi {
			return nil, fmt.Errorf("%s: want [lower, upper] numbers with lower <= upper", field)
		}
		out[field] = [2]float64{lo, hi}
	}
	return out, nil
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want an array of strings, got %T", v)
	}
	out := make([]string, len(list))
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("want an array of strings, got %T at [%d]", x, i)
		}
		out[i] = s
	}
	return out, nil
}

func number(v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, fmt.Errorf("bad number %s", x)
		}
		return f, nil
	case float64:
		return x, nil
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}

func positive(v any) (float64, error) {
	f, err := number(v)
	if err != nil {
		return 0, err
	}
	if f <= 0 {
		return 0, fmt.Errorf("want a positive number, got %v", f)
	}
	return f, nil
}

func nonNegInt(v any) (int, error) {
	f, err := number(v)
	if err != nil {
		return 0, err
	}
	if f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
		return 0, fmt.Errorf("want a non-negative integer, got %v", f)
	}
	return int(f), nil
}

// atLeastTwo reads a k or an l: a class of one is no anonymity at all.
func atLeastTwo(v any) (int, error) {
	n, err := nonNegInt(v)
	if err != nil {
		return 0, err
	}
	if n < 2 {
		return 0, fmt.Errorf("want an integer of at least 2, got %d", n)
	}
	return n, nil
}

// ParseDecision validates a decision document as the gateway would read it
// from data.sluice.decision; for tools and tests that build decisions
// without evaluating Rego.
func ParseDecision(v any) (*Decision, error) { return parseDecision(v) }
