package policy

import (
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestInputBuiltAsOPAValueIsTheSameDocument: the fast path that builds the
// input as an OPA value gives the policy exactly the document the plain Go
// map form gives, for every part of the input.
func TestInputBuiltAsOPAValueIsTheSameDocument(t *testing.T) {
	field, group := "cost", "district"
	for name, in := range map[string]*Input{
		"minimal": {Action: "read", Time: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)},
		"full": {
			Subject: Subject{ID: "alice", Roles: []string{"analyst", "public"}, Dept: "health", District: "朝阳区",
				Claims: map[string]any{"sub": "alice", "exp": 1.7e9, "roles": []any{"analyst"}, "nested": map[string]any{"a": true}}},
			Purpose: "public-health", Justification: "patient collapsed", Action: "stats",
			Resource: &Resource{Source: "health", Dataset: "visits", Classification: "L3",
				Fields: map[string]FieldInfo{"patient_id": {Type: "id_cn", Level: "L4"}, "cost": {Type: "integer"}}},
			Request: Request{Method: "GET", Path: "/v1/health/visits/stats",
				Params: map[string][]string{"district": {"朝阳区", "海淀区"}, "epsilon": {"0.5"}}},
			Stats: &StatsQuery{Metric: "mean", Field: &field, GroupBy: &group, Epsilon: 0.25},
			Time:  time.Date(2026, 11, 26, 10, 0, 0, 0, time.FixedZone("CST", 8*3600)),
		},
		"ungrouped count": {Action: "stats", Stats: &StatsQuery{Metric: "count", Epsilon: 1}},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := ast.InterfaceToValue(in.value())
			if err != nil {
				t.Fatal(err)
			}
			got, err := in.astValue()
			if err != nil {
				t.Fatal(err)
			}
			if got.Compare(want) != 0 {
				t.Errorf("astValue:\n%v\nvalue:\n%v", got, want)
			}
		})
	}
}
