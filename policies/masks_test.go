package policies_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/policy"
)

// decide runs the shipped policy for one read.
func decide(t *testing.T, subject policy.Subject, purpose, source, dataset string) *policy.Decision {
	t.Helper()
	ctx := context.Background()
	set, err := policy.Load(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	d, err := set.Decide(ctx, &policy.Input{
		Subject:  subject,
		Purpose:  purpose,
		Action:   "read",
		Resource: &policy.Resource{Source: source, Dataset: dataset},
		Request:  policy.Request{Method: "GET", Path: "/v1/" + source + "/" + dataset, Params: map[string][]string{}},
		Time:     time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
	})
	if err != nil || !d.Allow {
		t.Fatalf("%s read of %s/%s: %+v, %v", subject.ID, source, dataset, d, err)
	}
	return d
}

// transform releases body through the decision's plan under env.
func transform(t *testing.T, d *policy.Decision, body string, env *anonymize.Env) string {
	t.Helper()
	var out bytes.Buffer
	if _, err := d.Plan.Transform(&out, strings.NewReader(body), anonymize.Shape{Records: "items"}, env, anonymize.Limits{}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func testKeys(t *testing.T) *anonymize.Keys {
	t.Helper()
	keys, err := anonymize.NewKeys(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestCaseworkerSeesTheMaskedFormsTheDesignShows runs the shipped
// caseworker decision over an assistance record: the demo must show
// 110105********1234, 欧阳* and 138****5678, and only the caseworker's
// district. The name is masked to a fixed width: 李娜娜 is 李*, as 李娜
// would be.
func TestCaseworkerSeesTheMaskedFormsTheDesignShows(t *testing.T) {
	d := decide(t, policy.Subject{ID: "carol", Roles: []string{"caseworker"}, Dept: "civil", District: "朝阳区"}, "", "civil", "assistance")
	body := `{"items":[
		{"case_id":"A1","id_number":"110105199001051234","name":"欧阳娜","phone":"13812345678","district":"朝阳区",
		 "household_size":3,"monthly_allowance":1200,"start_date":"2025-06-01","bank_card":"6222021234567890"},
		{"case_id":"A2","id_number":"110108199001051234","name":"张伟","phone":"13987654321","district":"海淀区"},
		{"case_id":"A3","name":"李娜娜","id_number":"110105199001051235","phone":"010-12345678","district":"朝阳区"}
	]}`
	env := &anonymize.Env{Keys: testKeys(t), Org: "civil", Consumer: "carol", Dataset: "civil/assistance"}
	want := `{"items":[{"case_id":"A1","id_number":"110105********1234","name":"欧阳*","phone":"138****5678","district":"朝阳区",` +
		`"household_size":3,"monthly_allowance":1200,"start_date":"2025-06-01"},` +
		`{"case_id":"A3","name":"李*","id_number":"[REDACTED]","phone":"[REDACTED]","district":"朝阳区"}]}`
	if got := transform(t, d, body, env); got != want {
		t.Errorf("released\n%s\nwant\n%s", got, want)
	}
}

// TestAnalystViewPointsAtNoOne runs the shipped analyst decision over a
// visit: nothing that identifies the patient or the visit comes out, the
// cost is banded, and the decision asks for k = 5, which the gateway
// enforces on the whole view (gateway/kanon.go).
func TestAnalystViewPointsAtNoOne(t *testing.T) {
	d := decide(t, policy.Subject{ID: "alice", Roles: []string{"analyst"}, Dept: "health"}, "public-health", "health", "visits")
	if d.MinK != 5 {
		t.Errorf("min_k %d, want 5", d.MinK)
	}
	body := `{"items":[{"visit_id":"V1","patient_id":"110105199001051234","patient_name":"欧阳娜","district":"朝阳区",
		"hospital":"朝阳医院","diagnosis":"I10","visit_date":"2026-03-17","cost":3456.5}]}`
	env := &anonymize.Env{Keys: testKeys(t), Issuer: "https://idp.example", Org: "health", Consumer: "alice", Purpose: "public-health", Dataset: "health/visits"}
	want := `{"items":[{"district":"朝阳区","hospital":"朝阳医院","diagnosis":"I10","visit_date":"2026-03","cost":"2000-3999"}]}`
	if got := transform(t, d, body, env); got != want {
		t.Errorf("released\n%s\nwant\n%s", got, want)
	}
}

// TestMalformedTreatmentParametersMakeTheDecisionMalformed: a decision is
// compiled before it is enforced, so a treatment parameter the operator
// does not accept denies the request as malformed instead of releasing in
// a form the policy did not mean.
func TestMalformedTreatmentParametersMakeTheDecisionMalformed(t *testing.T) {
	for _, treatment := range []string{
		`{"op": "pseudonymize", "scope": "organisation"}`,
		`{"op": "pseudonymize", "scope": "shared:"}`,
		`{"op": "pseudonymize", "scope": "shared:Fusion 2027"}`,
		`{"op": "pseudonymize", "rotate": "90"}`,
		`{"op": "pseudonymize", "rotate": 90}`,
		`{"op": "pseudonymize", "rotate": "0d"}`,
		`{"op": "pseudonymize", "rotate": "3 months"}`,
		`{"op": "mask_name_cn", "width": "short"}`,
		`{"op": "mask_id_cn", "keep": "sex"}`,
		`{"op": "mask_id_cn", "keep": "region", "keep_last": 4}`,
		`{"op": "mask_phone_cn", "keep": "area"}`,
		`{"op": "mask_phone_cn", "keep_first": 7, "keep_last": 4}`,
	} {
		doc := `{"allow": true, "reason": "x", "fields": {"f": ` + treatment + `}}`
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		d, err := policy.ParseDecision(v)
		var me *policy.MalformedError
		if !errors.As(err, &me) || d != nil {
			t.Errorf("%s: decision %+v, error %v; want a malformed decision", treatment, d, err)
		}
	}
}
