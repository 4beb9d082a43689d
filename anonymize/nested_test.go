package anonymize

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// household is a record with objects in arrays in objects in arrays, and a
// secret under an unnamed key at every depth.
const household = `{
	"case_id": "C001",
	"secret0": "secret-depth-0",
	"household": {
		"secret1": "secret-depth-1",
		"size": 3,
		"members": [
			{
				"name": "欧阳娜娜",
				"id_number": "110105199001051234",
				"secret2": "secret-depth-2",
				"contacts": [
					{"phone": "+86 138-1234-5678", "secret3": "secret-depth-3", "kind": "mobile"},
					{"phone": "13987654321", "email": "lisi@example.com", "extra": {"secret4": "secret-depth-4"}}
				],
				"address": {"full": "北京市朝阳区建国路88号", "postcode": "100020", "geo": {"lat": 39.9, "secret5": "secret-depth-5"}}
			},
			{
				"name": "张伟",
				"id_number": "11010519491231002X",
				"contacts": [],
				"address": {"full": "广东省深圳市南山区科技园路1号"}
			},
			{"name": "王", "contacts": [{"phone": "010-12345678"}], "address": "北京市"}
		]
	},
	"visits": [[{"code": "J06.9", "date": "2026-03-14", "secret6": "secret-depth-6"}], [], [{"code": "I10", "date": "2025-12-31T23:00:00+08:00"}]]
}`

var householdSpec = Spec{Fields: map[string]Rule{
	"case_id":                                 {Op: "keep"},
	"household.size":                          {Op: "keep"},
	"household.members[].name":                {Op: "mask_name_cn"},
	"household.members[].id_number":           {Op: "mask_id_cn"},
	"household.members[].contacts[].phone":    {Op: "mask_phone_cn"},
	"household.members[].contacts[].email":    {Op: "mask_email"},
	"household.members[].address.full":        {Op: "mask_address"},
	"household.members[].address.postcode":    {Op: "generalize", Params: Params{"to": "prefix", "length": 3}},
	"visits[][].code":                         {Op: "generalize", Params: Params{"to": "prefix", "length": 3}},
	"visits[][].date":                         {Op: "generalize", Params: Params{"to": "quarter"}},
	"household.members[].contacts[].kind":     {Op: "drop"},
	"household.members[].address.geo.lat":     {Op: "round"},
	"household.members[].address.geo.missing": {Op: "keep"},
}}

func TestNestedPathsReleaseOnlyWhatTheyName(t *testing.T) {
	p := mustCompile(t, householdSpec)
	out, st := release(t, p, itemsShape, `{"items":[`+household+`]}`)
	assertJSON(t, out, `{"items":[{
		"case_id": "C001",
		"household": {
			"size": 3,
			"members": [
				{
					"name": "欧阳**",
					"id_number": "110105********1234",
					"contacts": [{"phone": "138****5678"}, {"phone": "139****4321", "email": "l***@example.com"}],
					"address": {"full": "北京市朝阳区******", "postcode": "100", "geo": {"lat": 40}}
				},
				{
					"name": "张*",
					"id_number": "110105********002X",
					"contacts": [],
					"address": {"full": "广东省深圳市南山区******"}
				},
				{"name": "*", "contacts": [{"phone": "[REDACTED]"}], "address": "[REDACTED]"}
			]
		},
		"visits": [[{"code": "J06", "date": "2026-Q1"}], [], [{"code": "I10", "date": "2025-Q4"}]]
	}]}`)
	// The landline under mask_phone_cn and the string where an address
	// object was expected.
	if st.Fallbacks != 2 {
		t.Errorf("Stats.Fallbacks = %d, want 2", st.Fallbacks)
	}
	for _, secret := range []string{"secret-depth", "mobile", "110105199001051234", "1234-5678", "12345678", "建国路", "科技园", "欧阳娜娜", "lisi", "39.9"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("output holds %q: %s", secret, out)
		}
	}
}

// Wherever a record puts something of another shape than the spec names,
// the named part is redacted and nothing under it leaks.
func TestNestedPathsRedactMisshapenParts(t *testing.T) {
	p := mustCompile(t, householdSpec)
	tests := []struct {
		name, record, want string
		fallbacks          int
	}{
		{"members an object", `{"household":{"members":{"name":"张伟"}}}`, `{"household":{"members":"[REDACTED]"}}`, 1},
		{"member a string", `{"household":{"members":["张伟"]}}`, `{"household":{"members":["[REDACTED]"]}}`, 1},
		{"contacts a string", `{"household":{"members":[{"contacts":"13812345678"}]}}`, `{"household":{"members":[{"contacts":"[REDACTED]"}]}}`, 1},
		{"phone an object", `{"household":{"members":[{"contacts":[{"phone":{"n":"13812345678"}}]}]}}`,
			`{"household":{"members":[{"contacts":[{"phone":"[REDACTED]"}]}]}}`, 1},
		{"visits one level too shallow", `{"visits":[{"code":"J06.9"}]}`, `{"visits":["[REDACTED]"]}`, 1},
		{"visits one level too deep", `{"visits":[[[{"code":"J06.9"}]]]}`, `{"visits":[["[REDACTED]"]]}`, 1},
		{"household null", `{"household":null}`, `{"household":"[REDACTED]"}`, 1},
		{"leaf where a container is named", `{"household":{"members":[{"address":{"geo":"39.9,116.4"}}]}}`,
			`{"household":{"members":[{"address":{"geo":"[REDACTED]"}}]}}`, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, st := release(t, p, itemsShape, `{"items":[`+tc.record+`]}`)
			assertJSON(t, out, `{"items":[`+tc.want+`]}`)
			if st.Fallbacks != tc.fallbacks {
				t.Errorf("Stats.Fallbacks = %d, want %d", st.Fallbacks, tc.fallbacks)
			}
		})
	}
}

// A repeated key at any depth is ambiguous (which phone was masked?), so
// the transform fails rather than guess; an escaped spelling is the same
// key.
func TestNestedPathsRefuseRepeatedKeysAtEveryDepth(t *testing.T) {
	p := mustCompile(t, householdSpec)
	for _, rec := range []string{
		`{"household":{"size":1,"size":2}}`,
		`{"household":{"members":[{"name":"张伟","n\u0061me":"李四"}]}}`,
		`{"household":{"members":[{"contacts":[{"phone":"13812345678","phone":"13987654321"}]}]}}`,
		`{"household":{"members":[{"address":{"full":"北京市朝阳区","full":"x"}}]}}`,
		`{"visits":[[{"code":"J06.9","code":"I10"}]]}`,
	} {
		if out, _, err := run(t, p, itemsShape, `{"items":[`+rec+`]}`); err == nil {
			t.Errorf("Transform(%s) = %s, want an error", rec, out)
		}
	}
}

func TestRowRangesCompareDatesAsDates(t *testing.T) {
	body := `{"items":[
		{"id":1,"d":"2026-03-14"},
		{"id":2,"d":"2026-03-14T23:30:00+08:00"},
		{"id":3,"d":"2026-03-15T00:30:00+08:00"},
		{"id":4,"d":"2026-03-13T23:59:59Z"},
		{"id":5,"d":"2026-3-14"},
		{"id":6,"d":20260314},
		{"id":7,"d":"2026-02-30"}
	]}`
	tests := []struct {
		name string
		cond Cond
		want []int
	}{
		{"on a calendar date", Cond{Field: "d", Gte: "2026-03-14", Lte: "2026-03-14"}, []int{1, 2}},
		{"on or before a date", Cond{Field: "d", Lte: "2026-03-14"}, []int{1, 2, 4}},
		{"on or after a date", Cond{Field: "d", Gte: "2026-03-14"}, []int{1, 2, 3}},
		{"before an instant", Cond{Field: "d", Lte: "2026-03-14T12:00:00Z"}, []int{1, 4}},
		{"after an instant with an offset", Cond{Field: "d", Gte: "2026-03-14T23:00:00+08:00"}, []int{2, 3}},
		{"dates are not numbers", Cond{Field: "d", Gte: 20260101}, []int{6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, Spec{Fields: keep("id"), Rows: []Cond{tc.cond}})
			out, _ := release(t, p, itemsShape, body)
			var got []int
			for _, it := range decodeJSON(t, out).(map[string]any)["items"].([]any) {
				n, _ := it.(map[string]any)["id"].(interface{ Int64() (int64, error) }).Int64()
				got = append(got, int(n))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("released ids (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := Compile(Spec{Rows: []Cond{{Field: "d", Gte: "2026-01-01", Lte: 100}}}); err == nil {
		t.Error("a range from a date to a number compiled")
	}
}

// Every condition must hold, then max_rows caps what is left: a cap never
// lets a record through that a condition removed, and records removed do
// not use up the cap.
func TestRowConditionsApplyBeforeMaxRows(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 40 {
		if i > 0 {
			b.WriteByte(',')
		}
		district := []string{"朝阳区", "海淀区"}[i%2]
		b.WriteString(`{"id":` + strconv.Itoa(i) + `,"district":"` + district + `","cost":` + strconv.Itoa(i*10) + `,"d":"` + day.AddDate(0, 0, i).Format(time.DateOnly) + `"}`)
	}
	b.WriteString(`]}`)
	p := mustCompile(t, Spec{
		Fields: keep("id"),
		Rows: []Cond{
			{Field: "district", In: []any{"朝阳区"}},
			{Field: "cost", Gte: 100, Lte: 300},
			{Field: "d", Gte: "2026-01-15"},
		},
		MaxRows: 3,
	})
	out, st := release(t, p, itemsShape, b.String())
	// 朝阳区 are the even ids; cost 100–300 is ids 10–30; from 15 January
	// is ids 14 and up: 14, 16, ..., 30 meet all three, and the cap
	// releases the first three.
	assertJSON(t, out, `{"items":[{"id":14},{"id":16},{"id":18}]}`)
	if want := (Stats{Records: 40, Released: 3, Filtered: 31, Truncated: true}); !cmp.Equal(want, st, ignoreBytes) {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
}
