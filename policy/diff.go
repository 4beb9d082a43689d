package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/sluicegw/sluice/anonymize"
)

// Diff lists how decision b differs from decision a in what it would
// release: allow or deny, each field's treatment (a field not named is
// dropped, so "drop" and absent are the same), row filters, parameters,
// limits, and any other member a decision carries. Reasons are not
// compared: they explain, they do not release. Two denies never differ.
// Each difference reads "what: a → b"; the list is sorted and empty when
// the decisions release the same.
//
// It is how a shadow policy set's decision is compared with the active
// one's.
func Diff(a, b *Decision) []string {
	if a == nil {
		a = &Decision{}
	}
	if b == nil {
		b = &Decision{}
	}
	if a.Allow != b.Allow {
		return []string{fmt.Sprintf("allow: %t → %t", a.Allow, b.Allow)}
	}
	if !a.Allow {
		return nil
	}
	var out []string
	add := func(what, x, y string) {
		if x != y {
			out = append(out, fmt.Sprintf("%s: %s → %s", what, x, y))
		}
	}
	for _, f := range slices.Sorted(maps.Keys(union(a.Fields, b.Fields))) {
		add("fields."+f, ruleText(a.Fields, f), ruleText(b.Fields, f))
	}
	add("rows", listText(rowText(a)), listText(rowText(b)))
	ma, mb := members(a), members(b)
	for _, k := range slices.Sorted(maps.Keys(union(ma, mb))) {
		switch k {
		case "allow", "reason", "fields", "rows":
		case "stats":
			sa, _ := ma[k].(map[string]any)
			sb, _ := mb[k].(map[string]any)
			if (sa == nil) != (sb == nil) {
				add("stats", valueText(ma[k]), valueText(mb[k]))
				continue
			}
			for _, sk := range slices.Sorted(maps.Keys(union(sa, sb))) {
				add("stats."+sk, valueText(sa[sk]), valueText(sb[sk]))
			}
		default:
			add(k, valueText(ma[k]), valueText(mb[k]))
		}
	}
	sort.Strings(out)
	return out
}

func union[V any](a, b map[string]V) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// ruleText shows a field's treatment: the operator, with its parameters
// when it has any.
func ruleText(rules map[string]anonymize.Rule, field string) string {
	r, ok := rules[field]
	if !ok || r.Op == "" {
		return "drop"
	}
	return RuleText(r)
}

// RuleText shows a treatment as `op` or `op{"param":value,...}`.
func RuleText(r anonymize.Rule) string {
	if len(r.Params) == 0 {
		return r.Op
	}
	return r.Op + valueText(map[string]any(r.Params))
}

func rowText(d *Decision) []string {
	if d.Plan != nil {
		return d.Plan.RowFilters()
	}
	out := make([]string, len(d.Rows))
	for i, c := range d.Rows {
		out[i] = valueText(c)
	}
	return out
}

func listText(l []string) string { return "[" + strings.Join(l, ", ") + "]" }

// members is the decision as a JSON object, lists of strings sorted (they
// are sets: params, metrics, group_by, ...).
func members(d *Decision) map[string]any {
	b, err := json.Marshal(d)
	if err != nil {
		return map[string]any{}
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return map[string]any{}
	}
	return normalise(m).(map[string]any)
}

func normalise(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
	case []any:
		strs := make([]string, 0, len(x))
		for i, e := range x {
			x[i] = normalise(e)
			if s, ok := e.(string); ok {
				strs = append(strs, s)
			}
		}
		if len(strs) == len(x) {
			sort.Strings(strs)
			for i, s := range strs {
				x[i] = s
			}
		}
	}
	return v
}

// valueText is compact JSON, or "none" for a missing value.
func valueText(v any) string {
	if v == nil || (reflect.ValueOf(v).Kind() == reflect.Pointer && reflect.ValueOf(v).IsNil()) {
		return "none"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
