package policies_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/policy"
)

// TestCaseworkerSeesTheMaskedFormsTheDesignShows runs the shipped
// caseworker decision over an assistance record: the demo must show
// 110105********1234, 欧阳* and 138****5678, and only the caseworker's
// district.
func TestCaseworkerSeesTheMaskedFormsTheDesignShows(t *testing.T) {
	ctx := context.Background()
	set, err := policy.Load(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	d, err := set.Decide(ctx, &policy.Input{
		Subject:  policy.Subject{ID: "carol", Roles: []string{"caseworker"}, Dept: "civil", District: "朝阳区"},
		Action:   "read",
		Resource: &policy.Resource{Source: "civil", Dataset: "assistance"},
		Request:  policy.Request{Method: "GET", Path: "/v1/civil/assistance", Params: map[string][]string{}},
		Time:     time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
	})
	if err != nil || !d.Allow {
		t.Fatalf("caseworker read: %+v, %v", d, err)
	}
	body := `{"items":[
		{"case_id":"A1","id_number":"110105199001051234","name":"欧阳娜","phone":"13812345678","district":"朝阳区",
		 "household_size":3,"monthly_allowance":1200,"start_date":"2025-06-01","bank_card":"6222021234567890"},
		{"case_id":"A2","id_number":"110108199001051234","name":"张伟","phone":"13987654321","district":"海淀区"}
	]}`
	var out bytes.Buffer
	keys, err := anonymize.NewKeys(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	env := &anonymize.Env{Keys: keys, Consumer: "carol", Dataset: "civil/assistance"}
	if _, err := d.Plan.Transform(&out, strings.NewReader(body), anonymize.Shape{Records: "items"}, env, anonymize.Limits{}); err != nil {
		t.Fatal(err)
	}
	want := `{"items":[{"case_id":"A1","id_number":"110105********1234","name":"欧阳*","phone":"138****5678","district":"朝阳区",` +
		`"household_size":3,"monthly_allowance":1200,"start_date":"2025-06-01"}]}`
	if got := out.String(); got != want {
		t.Errorf("released\n%s\nwant\n%s", got, want)
	}
}
