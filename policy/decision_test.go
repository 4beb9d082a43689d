package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sluicegw/sluice/anonymize"
)

// opaValue decodes JSON the way OPA hands results back: objects as
// map[string]any, arrays as []any, numbers as json.Number.
func opaValue(t testing.TB, doc string) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("bad test JSON %s: %v", doc, err)
	}
	return v
}

var ignorePlan = cmpopts.IgnoreFields(Decision{}, "Plan")

func TestParseDecisionReadsAWellFormedAllow(t *testing.T) {
	got, err := parseDecision(opaValue(t, `{
		"allow": true,
		"reason": "analyst read of health visits",
		"fields": {
			"patient_id": "pseudonymize",
			"patient_name": "drop",
			"visit_date": {"op": "generalize", "to": "month"},
			"phone": {"op": "mask", "keep_first": 3, "keep_last": 4},
			"cost": "keep"
		},
		"rows": [{"field": "district", "in": ["朝阳区"]}, {"field": "cost", "gte": 0, "lte": 100000}],
		"params": ["district", "page", "page_size"],
		"max_rows": 1000,
		"stats": {
			"metrics": ["count", "sum", "mean"],
			"max_epsilon": 1.0,
			"group_by": ["district"],
			"bounds": {"cost": [0, 100000]},
			"account": "analyst",
			"consumer_budget": 5.0,
			"org_budget": 20
		}
	}`))
	if err != nil {
		t.Fatalf("parseDecision: %v", err)
	}
	want := &Decision{
		Allow:  true,
		Reason: "analyst read of health visits",
		Fields: map[string]anonymize.Rule{
			"patient_id":   {Op: "pseudonymize"},
			"patient_name": {Op: "drop"},
			"visit_date":   {Op: "generalize", Params: anonymize.Params{"to": "month"}},
			"phone":        {Op: "mask", Params: anonymize.Params{"keep_first": json.Number("3"), "keep_last": json.Number("4")}},
			"cost":         {Op: "keep"},
		},
		Rows: []anonymize.Cond{
			{Field: "district", In: []any{"朝阳区"}},
			{Field: "cost", Gte: json.Number("0"), Lte: json.Number("100000")},
		},
		Params:  []string{"district", "page", "page_size"},
		MaxRows: 1000,
		Stats: &StatsLimits{
			Metrics:        []string{"count", "sum", "mean"},
			MaxEpsilon:     1,
			GroupBy:        []string{"district"},
			Bounds:         map[string][2]float64{"cost": {0, 100000}},
			Account:        "analyst",
			ConsumerBudget: 5,
			OrgBudget:      20,
		},
	}
	if diff := cmp.Diff(want, got, ignorePlan); diff != "" {
		t.Errorf("decision (-want +got):\n%s", diff)
	}
	if got.Plan == nil {
		t.Fatal("an allowing decision has no compiled plan")
	}
	if got.Plan.MaxRows() != 1000 || !got.Plan.HasRowFilter() {
		t.Errorf("plan max rows %d, row filter %v; want 1000 and a filter", got.Plan.MaxRows(), got.Plan.HasRowFilter())
	}
	if !got.AllowsParam("district") || got.AllowsParam("name") {
		t.Errorf("AllowsParam: district %v, name %v; want true, false", got.AllowsParam("district"), got.AllowsParam("name"))
	}
}

func TestParseDecisionReadsMinimalDecisions(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want *Decision
	}{
		{"deny", `{"allow": false, "reason": "no rule grants this access"}`,
			&Decision{Reason: "no rule grants this access"}},
		{"deny without reason", `{"allow": false}`, &Decision{}},
		{"allow releasing nothing", `{"allow": true}`, &Decision{Allow: true}},
		{"allow with empty fields", `{"allow": true, "fields": {}}`,
			&Decision{Allow: true, Fields: map[string]anonymize.Rule{}}},
		{"max_rows zero means no cap", `{"allow": true, "max_rows": 0}`, &Decision{Allow: true}},
		{"integral max_rows written as a float", `{"allow": true, "max_rows": 10.0}`, &Decision{Allow: true, MaxRows: 10}},
		{"stats with only max_epsilon", `{"allow": true, "stats": {"max_epsilon": 0.5}}`,
			&Decision{Allow: true, Stats: &StatsLimits{MaxEpsilon: 0.5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDecision(opaValue(t, tt.doc))
			if err != nil {
				t.Fatalf("parseDecision(%s): %v", tt.doc, err)
			}
			if diff := cmp.Diff(tt.want, got, ignorePlan); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
			if got.Allow != (got.Plan != nil) {
				t.Errorf("allow %v with plan %v: an allowing decision, and only one, carries a plan", got.Allow, got.Plan)
			}
		})
	}
}

func TestParseDecisionRejectsEveryMalformedDecision(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{"not an object", `[{"allow": true}]`},
		{"a bare boolean", `true`},
		{"a string", `"allow"`},
		{"null", `null`},
		{"allow missing", `{"reason": "x", "fields": {"a": "keep"}}`},
		{"allow a string", `{"allow": "true"}`},
		{"allow a number", `{"allow": 1}`},
		{"allow null", `{"allow": null}`},
		{"reason not a string", `{"allow": true, "reason": 42}`},
		{"unknown member", `{"allow": true, "feilds": {"a": "keep"}}`},
		{"unknown member in a deny", `{"allow": false, "because": "x"}`},
		{"fields not an object", `{"allow": true, "fields": ["a", "b"]}`},
		{"fields a string", `{"allow": true, "fields": "keep"}`},
		{"fields null", `{"allow": true, "fields": null}`},
		{"treatment a number", `{"allow": true, "fields": {"a": 1}}`},
		{"treatment object without op", `{"allow": true, "fields": {"a": {"to": "month"}}}`},
		{"treatment with an unknown operator", `{"allow": true, "fields": {"a": "encrypt"}}`},
		{"treatment object with an unknown operator", `{"allow": true, "fields": {"a": {"op": "kep"}}}`},
		{"operator with an unknown parameter", `{"allow": true, "fields": {"a": {"op": "mask", "keep_frist": 3}}}`},
		{"operator with a parameter of the wrong type", `{"allow": true, "fields": {"a": {"op": "mask", "keep_first": "3"}}}`},
		{"operator with a fractional parameter", `{"allow": true, "fields": {"a": {"op": "mask", "keep_last": 2.5}}}`},
		{"operator with a negative parameter", `{"allow": true, "fields": {"a": {"op": "mask", "keep_last": -1}}}`},
		{"operator with a bad parameter value", `{"allow": true, "fields": {"d": {"op": "generalize", "to": "week"}}}`},
		{"operator that takes no parameters given one", `{"allow": true, "fields": {"a": {"op": "keep", "deep": true}}}`},
		{"malformed field path", `{"allow": true, "fields": {"a..b": "keep"}}`},
		{"field both treated and nested", `{"allow": true, "fields": {"a": "keep", "a.b": "keep"}}`},
		{"min_k of one", `{"allow": true, "min_k": 1}`},
		{"min_k of zero", `{"allow": true, "min_k": 0}`},
		{"min_k negative", `{"allow": true, "min_k": -3}`},
		{"min_k fractional", `{"allow": true, "min_k": 2.5}`},
		{"min_k a string", `{"allow": true, "min_k": "5"}`},
		{"min_l of one", `{"allow": true, "min_k": 3, "min_l": 1}`},
		{"min_l fractional", `{"allow": true, "min_k": 3, "min_l": 2.5}`},
		{"min_l without min_k", `{"allow": true, "min_l": 2}`},
		{"rows not an array", `{"allow": true, "rows": {"field": "district", "in": ["x"]}}`},
		{"row not an object", `{"allow": true, "rows": ["district"]}`},
		{"row with an unknown condition", `{"allow": true, "rows": [{"field": "district", "like": "x%"}]}`},
		{"empty row condition", `{"allow": true, "rows": [{}]}`},
		{"row condition that tests nothing", `{"allow": true, "rows": [{"field": "district"}]}`},
		{"row condition without a field", `{"allow": true, "rows": [{"in": ["x"]}]}`},
		{"row condition on a nested field", `{"allow": true, "rows": [{"field": "a.b", "eq": 1}]}`},
		{"row in not an array", `{"allow": true, "rows": [{"field": "district", "in": "x"}]}`},
		{"row in with an object", `{"allow": true, "rows": [{"field": "district", "in": [{"x": 1}]}]}`},
		{"row gte not a date", `{"allow": true, "rows": [{"field": "d", "gte": "yesterday"}]}`},
		{"params not an array", `{"allow": true, "params": "district"}`},
		{"params not strings", `{"allow": true, "params": ["district", 1]}`},
		{"params null", `{"allow": true, "params": null}`},
		{"max_rows negative", `{"allow": true, "max_rows": -1}`},
		{"max_rows fractional", `{"allow": true, "max_rows": 1.5}`},
		{"max_rows a string", `{"allow": true, "max_rows": "1000"}`},
		{"max_rows huge", `{"allow": true, "max_rows": 1e400}`},
		{"stats not an object", `{"allow": true, "stats": ["count"]}`},
		{"stats with an unknown metric", `{"allow": true, "stats": {"metrics": ["count", "median"], "max_epsilon": 1}}`},
		{"stats with an unknown metric first", `{"allow": true, "stats": {"metrics": ["median", "count"], "max_epsilon": 1}}`},
		{"stats metrics not strings", `{"allow": true, "stats": {"metrics": [1], "max_epsilon": 1}}`},
		{"stats with an unknown member", `{"allow": true, "stats": {"max_epsilon": 1, "epsilon": 9}}`},
		{"stats max_epsilon zero", `{"allow": true, "stats": {"max_epsilon": 0}}`},
		{"stats max_epsilon negative", `{"allow": true, "stats": {"max_epsilon": -1}}`},
		{"stats max_epsilon a string", `{"allow": true, "stats": {"max_epsilon": "1"}}`},
		{"stats max_epsilon missing", `{"allow": true, "stats": {"metrics": ["count"]}}`},
		{"stats consumer_budget zero", `{"allow": true, "stats": {"max_epsilon": 1, "consumer_budget": 0}}`},
		{"stats org_budget negative", `{"allow": true, "stats": {"max_epsilon": 1, "account": "a", "consumer_budget": 1, "org_budget": -5}}`},
		{"stats dataset_budget, which populations replaced", `{"allow": true, "stats": {"max_epsilon": 1, "account": "a", "consumer_budget": 1, "dataset_budget": 5}}`},
		{"stats with a malformed account", `{"allow": true, "stats": {"max_epsilon": 1, "account": "Public Class", "consumer_budget": 1}}`},
		{"stats account not a string", `{"allow": true, "stats": {"max_epsilon": 1, "account": 7, "consumer_budget": 1}}`},
		{"stats group_by not strings", `{"allow": true, "stats": {"max_epsilon": 1, "group_by": [true]}}`},
		{"stats bounds not an object", `{"allow": true, "stats": {"max_epsilon": 1, "bounds": [0, 1]}}`},
		{"stats bounds lower above upper", `{"allow": true, "stats": {"max_epsilon": 1, "bounds": {"cost": [100, 0]}}}`},
		{"stats bounds of one number", `{"allow": true, "stats": {"max_epsilon": 1, "bounds": {"cost": [100]}}}`},
		{"stats bounds of three numbers", `{"allow": true, "stats": {"max_epsilon": 1, "bounds": {"cost": [0, 1, 2]}}}`},
		{"stats bounds not numbers", `{"allow": true, "stats": {"max_epsilon": 1, "bounds": {"cost": ["0", "1"]}}}`},
		{"stats bounds infinite", `{"allow": true, "stats": {"max_epsilon": 1, "bounds": {"cost": [0, 1e400]}}}`},
		{"suppress not an object", `{"allow": true, "suppress": 5}`},
		{"suppress with an unknown member", `{"allow": true, "suppress": {"count_field": "cases", "below": 5, "above": 1}}`},
		{"suppress without count_field", `{"allow": true, "suppress": {"below": 5}}`},
		{"suppress without below", `{"allow": true, "suppress": {"count_field": "cases"}}`},
		{"suppress below zero", `{"allow": true, "suppress": {"count_field": "cases", "below": 0}}`},
		{"suppress below fractional", `{"allow": true, "suppress": {"count_field": "cases", "below": 2.5}}`},
		{"suppress on a nested field", `{"allow": true, "suppress": {"count_field": "a.cases", "below": 5}}`},
		{"operator with a parameter of another level", `{"allow": true, "fields": {"d": {"op": "generalize", "to": "month", "band": 10}}}`},
		{"mask_id_cn keeping everything", `{"allow": true, "fields": {"id": {"op": "mask_id_cn", "keep_first": 14}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDecision(opaValue(t, tt.doc))
			if err == nil {
				t.Fatalf("parseDecision(%s) = %+v, want an error", tt.doc, got)
			}
			if got != nil {
				t.Errorf("parseDecision(%s) returned decision %+v with its error, want nil", tt.doc, got)
			}
			var me *MalformedError
			if !errors.As(err, &me) {
				t.Errorf("error %v is a %T, want a *MalformedError", err, err)
			}
		})
	}
}

// A deny is a deny whatever else it carries: it may fail validation (and so
// deny anyway) but must never come back allowing.
func TestParseDecisionKeepsADenyWithJunkADeny(t *testing.T) {
	for _, doc := range []string{
		`{"allow": false, "fields": {"a": "encrypt"}}`,
		`{"allow": false, "fields": {"a": {"op": "mask", "keep_first": -3}}}`,
		`{"allow": false, "fields": 7}`,
		`{"allow": false, "rows": [{}]}`,
		`{"allow": false, "rows": "district"}`,
		`{"allow": false, "params": [1]}`,
		`{"allow": false, "max_rows": -1}`,
		`{"allow": false, "suppress": {"count_field": "cases", "below": 5}}`,
		`{"allow": false, "stats": {"metrics": ["median"]}}`,
		`{"allow": false, "stats": {"max_epsilon": 1}, "fields": {"a": "keep"}}`,
	} {
		got, err := parseDecision(opaValue(t, doc))
		if err == nil && (got == nil || got.Allow || got.Plan != nil) {
			t.Errorf("parseDecision(%s) = %+v, want a deny", doc, got)
		}
		if err != nil && got != nil {
			t.Errorf("parseDecision(%s) returned %+v with error %v, want nil", doc, got, err)
		}
		if err == nil && (got.Fields != nil || got.Rows != nil || got.Params != nil || got.Stats != nil || got.MaxRows != 0 || got.Suppress != nil) {
			t.Errorf("parseDecision(%s) = %+v: a deny carries grants", doc, got)
		}
	}
}

func TestParseDecisionReadsSmallCellSuppression(t *testing.T) {
	got, err := parseDecision(opaValue(t, `{
		"allow": true,
		"fields": {"district": "keep", "diagnosis": "keep", "cases": "keep", "id": {"op": "mask_id_cn", "keep_last": 4}},
		"suppress": {"count_field": "cases", "below": 5}
	}`))
	if err != nil {
		t.Fatalf("parseDecision: %v", err)
	}
	want := &anonymize.Suppress{CountField: "cases", Below: 5}
	if diff := cmp.Diff(want, got.Suppress); diff != "" {
		t.Errorf("Suppress (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, got.Plan.Suppression()); diff != "" {
		t.Errorf("the plan does not carry the suppression (-want +got):\n%s", diff)
	}
}

func TestParseDecisionReadsKAnonymityAndLDiversity(t *testing.T) {
	tests := []struct {
		doc        string
		minK, minL int
	}{
		{`{"allow": true, "fields": {"district": "keep"}, "min_k": 5}`, 5, 0},
		{`{"allow": true, "fields": {"district": "keep"}, "min_k": 2, "min_l": 3}`, 2, 3},
		{`{"allow": true, "fields": {"district": "keep"}}`, 0, 0},
	}
	for _, tt := range tests {
		got, err := parseDecision(opaValue(t, tt.doc))
		if err != nil {
			t.Fatalf("%s: %v", tt.doc, err)
		}
		if got.MinK != tt.minK || got.MinL != tt.minL {
			t.Errorf("%s: min_k %d, min_l %d; want %d, %d", tt.doc, got.MinK, got.MinL, tt.minK, tt.minL)
		}
	}
}

func TestMalformedErrorSaysTheDecisionIsMalformed(t *testing.T) {
	_, err := parseDecision(opaValue(t, `{"allow": true, "feilds": {}}`))
	if err == nil {
		t.Fatal("parseDecision accepted an unknown member")
	}
	got := err.Error()
	want := "malformed decision: feilds: unknown member"
	if got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}
