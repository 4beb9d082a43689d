package anonymize

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Cond is a row condition on a top-level field. Every operator given must
// hold; a record without the field, or with a value of another type, fails.
type Cond struct {
	Field string `json:"field"`
	// In: the value is one of these (strings, numbers or booleans).
	In []any `json:"in,omitempty"`
	// NotIn: the value is present and none of these.
	NotIn []any `json:"not_in,omitempty"`
	// Eq: the value equals this.
	Eq any `json:"eq,omitempty"`
	// Gte, Lte: the value is a number or a date (YYYY-MM-DD or RFC 3339) on
	// or after / on or before this one. A bound given as a calendar date
	// compares calendar dates, each timestamp on its own date: lte
	// "2026-03-14" holds for "2026-03-14T23:30:00+08:00". A bound given as
	// a timestamp compares instants, a value's calendar date standing for
	// its midnight UTC. A number bound never matches a string, nor a date
	// bound a number.
	Gte any `json:"gte,omitempty"`
	Lte any `json:"lte,omitempty"`
}

// ParseCond reads a row condition as Rego produces it.
func ParseCond(v any) (Cond, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Cond{}, fmt.Errorf("row condition must be an object, got %T", v)
	}
	var c Cond
	for k, val := range m {
		switch k {
		case "field":
			s, ok := val.(string)
			if !ok {
				return Cond{}, fmt.Errorf("field: want a string, got %T", val)
			}
			c.Field = s
		case "in", "not_in":
			list, ok := val.([]any)
			if !ok {
				return Cond{}, fmt.Errorf("%s: want an array, got %T", k, val)
			}
			if k == "in" {
				c.In = list
			} else {
				c.NotIn = list
			}
		case "eq":
			c.Eq = val
		case "gte":
			c.Gte = val
		case "lte":
			c.Lte = val
		default:
			return Cond{}, fmt.Errorf("unknown condition %q", k)
		}
	}
	return c, nil
}

// scalar is a comparable form of a JSON scalar: its kind and canonical text.
type scalar struct {
	kind Kind
	text string
}

func scalarOf(v any) (scalar, error) {
	switch x := v.(type) {
	case string:
		return scalar{String, x}, nil
	case bool:
		return scalar{Bool, strconv.FormatBool(x)}, nil
	case float64:
		return scalar{Number, canonNumber(x)}, nil
	case int:
		return scalar{Number, canonNumber(float64(x))}, nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return scalar{}, fmt.Errorf("bad number %s", x)
		}
		return scalar{Number, canonNumber(f)}, nil
	}
	return scalar{}, fmt.Errorf("want a string, number or boolean, got %T", v)
}

func canonNumber(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// valueScalar reads a record's value as a scalar.
func valueScalar(v Value) (scalar, bool) {
	switch v.Kind {
	case String:
		s, _ := v.Text()
		return scalar{String, s}, true
	case Number:
		f, ok := v.Float()
		if !ok || math.IsInf(f, 0) {
			return scalar{}, false
		}
		return scalar{Number, canonNumber(f)}, true
	case Bool:
		return scalar{Bool, string(v.Raw)}, true
	}
	return scalar{}, false
}

// bound is one end of a range: a number, a calendar date or an instant.
type bound struct {
	num      float64
	date     time.Time
	isDate   bool
	dateOnly bool // a calendar date: compare values by their dates
}

func boundOf(v any) (bound, error) {
	switch x := v.(type) {
	case string:
		t, ok := parseDate(x)
		if !ok {
			return bound{}, fmt.Errorf("%q is not a date", x)
		}
		_, err := time.Parse(time.DateOnly, x)
		return bound{date: t, isDate: true, dateOnly: err == nil}, nil
	default:
		s, err := scalarOf(v)
		if err != nil || s.kind != Number {
			return bound{}, fmt.Errorf("want a number or a date, got %v", v)
		}
		f, _ := strconv.ParseFloat(s.text, 64)
		return bound{num: f}, nil
	}
}

// cmp compares a record value against the bound: -1, 0, 1; ok false when
// the value is not of the bound's type.
func (b bound) cmp(v Value) (int, bool) {
	if b.isDate {
		if v.Kind != String {
			return 0, false
		}
		s, _ := v.Text()
		t, ok := parseDate(s)
		if !ok {
			return 0, false
		}
		if b.dateOnly {
			y, m, d := t.Date()
			t = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		}
		return t.Compare(b.date), true
	}
	f, ok := v.Float()
	if !ok || math.IsNaN(f) {
		return 0, false
	}
	switch {
	case f < b.num:
		return -1, true
	case f > b.num:
		return 1, true
	}
	return 0, true
}

type cond struct {
	src      Cond
	in       map[scalar]bool
	notIn    map[scalar]bool
	eq       *scalar
	gte, lte *bound
}

func compileCond(c Cond) (*cond, error) {
	if c.Field == "" || strings.ContainsAny(c.Field, ".[]") {
		return nil, fmt.Errorf("field: want a top-level field name, got %q", c.Field)
	}
	cc := &cond{src: c}
	set := func(list []any) (map[scalar]bool, error) {
		m := make(map[scalar]bool, len(list))
		for _, v := range list {
			s, err := scalarOf(v)
			if err != nil {
				return nil, err
			}
			m[s] = true
		}
		return m, nil
	}
	var err error
	if c.In != nil {
		if cc.in, err = set(c.In); err != nil {
			return nil, fmt.Errorf("in: %w", err)
		}
	}
	if c.NotIn != nil {
		if cc.notIn, err = set(c.NotIn); err != nil {
			return nil, fmt.Errorf("not_in: %w", err)
		}
	}
	if c.Eq != nil {
		s, err := scalarOf(c.Eq)
		if err != nil {
			return nil, fmt.Errorf("eq: %w", err)
		}
		cc.eq = &s
	}
	for _, b := range []struct {
		name string
		v    any
		dst  **bound
	}{{"gte", c.Gte, &cc.gte}, {"lte", c.Lte, &cc.lte}} {
		if b.v == nil {
			continue
		}
		bd, err := boundOf(b.v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.name, err)
		}
		*b.dst = &bd
	}
	if cc.gte != nil && cc.lte != nil && cc.gte.isDate != cc.lte.isDate {
		return nil, fmt.Errorf("gte and lte: one is a date and the other a number")
	}
	if cc.in == nil && cc.notIn == nil && cc.eq == nil && cc.gte == nil && cc.lte == nil {
		return nil, fmt.Errorf("condition on %q tests nothing", c.Field)
	}
	return cc, nil
}

// match reports whether the record value v meets the condition.
func (c *cond) match(v Value) bool {
	if c.in != nil || c.notIn != nil || c.eq != nil {
		s, ok := valueScalar(v)
		if !ok {
			return false
		}
		if c.in != nil && !c.in[s] {
			return false
		}
		if c.notIn != nil && c.notIn[s] {
			return false
		}
		if c.eq != nil && *c.eq != s {
			return false
		}
	}
	if c.gte != nil {
		if r, ok := c.gte.cmp(v); !ok || r < 0 {
			return false
		}
	}
	if c.lte != nil {
		if r, ok := c.lte.cmp(v); !ok || r > 0 {
			return false
		}
	}
	return true
}

// String renders the condition for audit records, values as the policy gave
// them.
func (c *cond) String() string {
	var parts []string
	add := func(op string, v any) { parts = append(parts, fmt.Sprintf("%s %s %v", c.src.Field, op, v)) }
	if c.src.In != nil {
		add("in", c.src.In)
	}
	if c.src.NotIn != nil {
		add("not in", c.src.NotIn)
	}
	if c.src.Eq != nil {
		add("=", c.src.Eq)
	}
	if c.src.Gte != nil {
		add(">=", c.src.Gte)
	}
	if c.src.Lte != nil {
		add("<=", c.src.Lte)
	}
	return strings.Join(parts, " and ")
}

// Pushdown returns, for a condition that is a plain membership test on
// strings, the field and the allowed values, so the gateway can ask the
// upstream to filter too. The gateway still filters every record itself.
func (p *Plan) Pushdown() map[string][]string {
	out := map[string][]string{}
	for _, c := range p.conds {
		if c.notIn != nil || c.eq != nil || c.gte != nil || c.lte != nil || c.in == nil {
			continue
		}
		var vals []string
		for _, v := range c.src.In {
			s, ok := v.(string)
			if !ok {
				vals = nil
				break
			}
			vals = append(vals, s)
		}
		if vals != nil {
			out[c.src.Field] = vals
		}
	}
	return out
}
