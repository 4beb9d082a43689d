package anonymize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// itemsShape is the demo departments' body: records under "items", paging
// metadata and a total.
var itemsShape = Shape{Records: "items", Meta: []string{"page", "page_size"}, Counts: []string{"total"}}

func testKeys(t testing.TB) *Keys {
	t.Helper()
	k, err := NewKeys(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatalf("NewKeys: %v", err)
	}
	return k
}

// testEnv is a fresh request environment: an Env serves one transform at a
// time. The caller is the demo's analyst: alice of the health department,
// for public health.
func testEnv(t testing.TB) *Env {
	t.Helper()
	return &Env{Keys: testKeys(t), Issuer: testIssuer, Org: "health", Consumer: "alice", Purpose: "public-health", Dataset: "health/visits"}
}

// testIssuer is the token issuer of testEnv's caller.
const testIssuer = "https://idp.example"

func mustCompile(t testing.TB, s Spec) *Plan {
	t.Helper()
	p, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

// keep names fields to release unchanged.
func keep(names ...string) map[string]Rule {
	m := make(map[string]Rule, len(names))
	for _, n := range names {
		m[n] = Rule{Op: "keep"}
	}
	return m
}

// run transforms body with default limits and a fresh Env.
func run(t testing.TB, p *Plan, shape Shape, body string) ([]byte, Stats, error) {
	t.Helper()
	var out bytes.Buffer
	st, err := p.Transform(&out, strings.NewReader(body), shape, testEnv(t), Limits{})
	return out.Bytes(), st, err
}

// release is run for bodies that must transform; it also checks that the
// output is valid UTF-8 JSON and that the stats agree with it.
func release(t testing.TB, p *Plan, shape Shape, body string) ([]byte, Stats) {
	t.Helper()
	out, st, err := run(t, p, shape, body)
	if err != nil {
		t.Fatalf("Transform(%s): %v", body, err)
	}
	checkOutput(t, out)
	if st.BytesIn != int64(len(body)) || st.BytesOut != int64(len(out)) {
		t.Errorf("Stats bytes in/out = %d/%d, want %d/%d", st.BytesIn, st.BytesOut, len(body), len(out))
	}
	return out, st
}

func checkOutput(t testing.TB, out []byte) {
	t.Helper()
	if !json.Valid(out) || !utf8.Valid(out) {
		t.Fatalf("output is not valid UTF-8 JSON: %q", out)
	}
}

func decodeJSON(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// assertJSON compares a body with the JSON text want, ignoring layout and
// member order.
func assertJSON(t testing.TB, got []byte, want string) {
	t.Helper()
	if diff := cmp.Diff(decodeJSON(t, []byte(want)), decodeJSON(t, got)); diff != "" {
		t.Errorf("output mismatch (-want +got):\n%s\ngot: %s", diff, got)
	}
}

func TestTransformReleasesOnlyNamedFieldsAtEveryDepth(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]Rule
		record string
		want   string
	}{
		{
			name:   "unnamed top-level fields",
			fields: keep("district"),
			record: `{"patient_name":"张三","district":"朝阳区","cost":12,"flag":true,"none":null}`,
			want:   `{"district":"朝阳区"}`,
		},
		{
			name:   "objects and arrays under unnamed keys",
			fields: keep("district"),
			record: `{"extra":{"patient_name":"张三","deeper":{"id":"110105194912310021"}},"district":"朝阳区","list":[{"patient_name":"李四"}]}`,
			want:   `{"district":"朝阳区"}`,
		},
		{
			name:   "parts of a named object the spec does not name",
			fields: keep("address.city"),
			record: `{"address":{"street":"建国路88号","city":"北京","geo":{"lat":39.9}},"name":"张三"}`,
			want:   `{"address":{"city":"北京"}}`,
		},
		{
			name:   "named object without the named part",
			fields: keep("address.city"),
			record: `{"address":{"street":"建国路88号"}}`,
			want:   `{"address":{}}`,
		},
		{
			name:   "deep path",
			fields: keep("a.b.c.d"),
			record: `{"a":{"x":1,"b":{"y":[1,2],"c":{"e":"secret","d":"ok"}}},"z":{"b":{"c":{"d":"no"}}}}`,
			want:   `{"a":{"b":{"c":{"d":"ok"}}}}`,
		},
		{
			name:   "parts of array elements",
			fields: keep("contacts[].phone"),
			record: `{"contacts":[{"phone":"13812345678","name":"张三"},{"name":"李四","relation":"父亲"},{"phone":"13900001111","extra":[{"phone":"leak"}]}]}`,
			want:   `{"contacts":[{"phone":"13812345678"},{},{"phone":"13900001111"}]}`,
		},
		{
			name:   "elements of a scalar array",
			fields: keep("tags[]"),
			record: `{"tags":["a",1,true,null,{"secret":"x"},["secret"]]}`,
			want:   `{"tags":["a",1,true,null,"[REDACTED]","[REDACTED]"]}`,
		},
		{
			name:   "nested arrays",
			fields: keep("matrix[][]"),
			record: `{"matrix":[[1,2],[],[3,{"x":"secret"}]]}`,
			want:   `{"matrix":[[1,2],[],[3,"[REDACTED]"]]}`,
		},
		{
			name:   "array elements inside a named object",
			fields: keep("household.members[].name", "household.size"),
			record: `{"household":{"size":3,"members":[{"name":"张三","id":"1"},{"id":"2"}],"address":"x"}}`,
			want:   `{"household":{"size":3,"members":[{"name":"张三"},{}]}}`,
		},
		{
			name:   "named object given a scalar",
			fields: keep("address.city"),
			record: `{"address":"北京市朝阳区建国路88号"}`,
			want:   `{"address":"[REDACTED]"}`,
		},
		{
			name:   "named object given an array",
			fields: keep("address.city"),
			record: `{"address":[{"city":"北京"}]}`,
			want:   `{"address":"[REDACTED]"}`,
		},
		{
			name:   "named array given an object",
			fields: keep("contacts[].phone"),
			record: `{"contacts":{"phone":"13812345678"}}`,
			want:   `{"contacts":"[REDACTED]"}`,
		},
		{
			name:   "named array element given a scalar",
			fields: keep("contacts[].phone"),
			record: `{"contacts":["13812345678"]}`,
			want:   `{"contacts":["[REDACTED]"]}`,
		},
		{
			name:   "named object given null",
			fields: keep("address.city"),
			record: `{"address":null}`,
			want:   `{"address":"[REDACTED]"}`,
		},
		{
			name:   "field named only to be dropped",
			fields: map[string]Rule{"patient_name": {Op: "drop"}, "district": {Op: "keep"}},
			record: `{"patient_name":"张三","district":"朝阳区"}`,
			want:   `{"district":"朝阳区"}`,
		},
		{
			name:   "nothing named",
			fields: nil,
			record: `{"patient_name":"张三","district":"朝阳区"}`,
			want:   `{}`,
		},
		{
			name:   "keys differing only in case are other keys",
			fields: keep("district"),
			record: `{"District":"x","DISTRICT":"y","district":"朝阳区"}`,
			want:   `{"district":"朝阳区"}`,
		},
		{
			name:   "whitespace everywhere",
			fields: keep("district", "address.city"),
			record: "{ \"x\" : [ 1 , { \"y\" : 2 } ] ,\n\t\"district\" : \"朝阳区\" , \"address\" : { \"street\" : \"s\" , \"city\" : \"北京\" } }",
			want:   `{"district":"朝阳区","address":{"city":"北京"}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, Spec{Fields: tc.fields})
			out, _ := release(t, p, itemsShape, `{"items":[`+tc.record+`],"secret":"top"}`)
			assertJSON(t, out, `{"items":[`+tc.want+`]}`)
		})
	}
}

func TestTransformMatchesEscapedKeysByTheirDecodedName(t *testing.T) {
	spec := Spec{Fields: map[string]Rule{
		"patient_name": {Op: "drop"},
		"district":     {Op: "keep"},
		"address.city": {Op: "keep"},
		"a/b":          {Op: "keep"},
		"姓名":           {Op: "mask_name_cn"},
	}}
	tests := []struct {
		name   string
		record string
		want   string
	}{
		{"dropped field stays dropped", `{"pati\u0065nt_name":"张三","\u0070atient_name":"李四"}`, `{}`},
		{"kept field is kept", `{"distr\u0069ct":"朝阳区"}`, `{"district":"朝阳区"}`},
		{"every character escaped", `{"\u0064\u0069\u0073\u0074\u0072\u0069\u0063\u0074":"朝阳区"}`, `{"district":"朝阳区"}`},
		{"nested keys", `{"addr\u0065ss":{"c\u0069ty":"北京","str\u0065et":"建国路"}}`, `{"address":{"city":"北京"}}`},
		{"escaped solidus", `{"a\/b":1}`, `{"a/b":1}`},
		{"chinese key escaped", `{"\u59d3\u540d":"张三"}`, `{"姓名":"张*"}`},
		{"chinese key raw", `{"姓名":"张三"}`, `{"姓名":"张*"}`},
		{"escape that decodes to another name", `{"district\u0000":"x","district ":"y"}`, `{}`},
	}
	p := mustCompile(t, spec)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := release(t, p, itemsShape, `{"items":[`+tc.record+`]}`)
			assertJSON(t, out, `{"items":[`+tc.want+`]}`)
		})
	}

	t.Run("row condition on an escaped key", func(t *testing.T) {
		p := mustCompile(t, Spec{Fields: keep("id"), Rows: []Cond{{Field: "district", In: []any{"朝阳区"}}}})
		out, st := release(t, p, itemsShape, `{"items":[{"id":1,"distr\u0069ct":"\u671d\u9633\u533a"},{"id":2,"district":"海淀区"}]}`)
		assertJSON(t, out, `{"items":[{"id":1}]}`)
		if st.Filtered != 1 {
			t.Errorf("Stats.Filtered = %d, want 1", st.Filtered)
		}
	})
	t.Run("records member written with escapes", func(t *testing.T) {
		p := mustCompile(t, Spec{Fields: keep("id")})
		out, _ := release(t, p, itemsShape, `{"it\u0065ms":[{"id":1}],"p\u0061ge":2}`)
		assertJSON(t, out, `{"items":[{"id":1}],"page":2}`)
	})
}

func TestTransformRejectsAmbiguousAndMisshapenBodies(t *testing.T) {
	spec := Spec{
		Fields: map[string]Rule{"district": {Op: "keep"}, "address.city": {Op: "keep"}, "contacts[].phone": {Op: "keep"}},
		Rows:   []Cond{{Field: "status", NotIn: []any{"deleted"}}},
	}
	tests := []struct {
		name  string
		shape Shape
		body  string
	}{
		{"repeated named key", itemsShape, `{"items":[{"district":"朝阳区","status":"ok","district":"海淀区"}]}`},
		{"repeated named key written with an escape", itemsShape, `{"items":[{"district":"朝阳区","status":"ok","distr\u0069ct":"海淀区"}]}`},
		{"repeated named key in a nested object", itemsShape, `{"items":[{"status":"ok","address":{"city":"北京","city":"上海"}}]}`},
		{"repeated named key in an array element", itemsShape, `{"items":[{"status":"ok","contacts":[{"phone":"1"},{"phone":"2","phone":"3"}]}]}`},
		{"repeated named object", itemsShape, `{"items":[{"status":"ok","address":{"city":"北京"},"address":{"city":"上海"}}]}`},
		{"repeated condition field", itemsShape, `{"items":[{"status":"deleted","status":"ok"}]}`},
		{"repeated records member", itemsShape, `{"items":[],"items":[{"district":"朝阳区","status":"ok"}]}`},
		{"repeated records member written with an escape", itemsShape, `{"items":[],"it\u0065ms":[]}`},
		{"repeated meta member", itemsShape, `{"items":[],"page":1,"page":2}`},
		{"repeated count member", itemsShape, `{"total":1,"items":[],"total":2}`},
		{"missing records member", itemsShape, `{"data":[{"district":"朝阳区","status":"ok"}],"page":1}`},
		{"empty body object", itemsShape, `{}`},
		{"records member is an object", itemsShape, `{"items":{"district":"朝阳区","status":"ok"}}`},
		{"records member is a string", itemsShape, `{"items":"[]"}`},
		{"records member is null", itemsShape, `{"items":null}`},
		{"record is a string", itemsShape, `{"items":["朝阳区"]}`},
		{"record is a number", itemsShape, `{"items":[{"district":"朝阳区","status":"ok"},1]}`},
		{"record is null", itemsShape, `{"items":[null]}`},
		{"record is an array", itemsShape, `{"items":[[{"district":"朝阳区","status":"ok"}]]}`},
		{"body is an array", itemsShape, `[{"district":"朝阳区","status":"ok"}]`},
		{"body is a string", itemsShape, `"items"`},
		{"body is null", itemsShape, `null`},
		{"bare body is an object", Shape{}, `{"items":[{"district":"朝阳区","status":"ok"}]}`},
		{"bare body is a number", Shape{}, `42`},
		{"bare record is a string", Shape{}, `["朝阳区"]`},
	}
	p := mustCompile(t, spec)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := run(t, p, tc.shape, tc.body)
			var se *ShapeError
			if !errors.As(err, &se) {
				t.Errorf("Transform(%s) = %q, %v; want a *ShapeError", tc.body, out, err)
			}
		})
	}
}

// truncationBodies are valid bodies of each shape; every proper prefix of
// each is invalid.
var truncationBodies = []struct {
	shape Shape
	body  string
}{
	{itemsShape, `{"page":1,"items":[{"patient_id":"110105194912310021","patient_name":"\u5f20\u4e09","district":"朝阳区",` +
		`"contacts":[{"phone":"13812345678"},{"phone":13900001111}],"cost":-1.5e3,"ok":true,"none":null,"x":{"y":[1,"]}"]}},` +
		`{"district":"海淀区","cost":0}],"total":12345}`},
	{itemsShape, `{ "items" : [ ] , "total" : 123 , "page_size" : 20 }`},
	{itemsShape, `{"items":[{"district":"a\"b\\"}],"page":true}`},
	{Shape{}, `[{"district":"朝阳区","cost":100},{"district":"海淀区","cost":1e2}]`},
	{Shape{}, `[]`},
}

func TestTransformFailsOnEveryTruncation(t *testing.T) {
	p := mustCompile(t, Spec{Fields: map[string]Rule{
		"district":         {Op: "keep"},
		"cost":             {Op: "keep"},
		"patient_id":       {Op: "pseudonymize"},
		"contacts[].phone": {Op: "mask", Params: Params{"keep_first": 3, "keep_last": 4}},
	}})
	for _, b := range truncationBodies {
		release(t, p, b.shape, b.body) // the whole body is fine
		for n := 0; n < len(b.body); n++ {
			prefix := b.body[:n]
			if out, _, err := run(t, p, b.shape, prefix); err == nil {
				t.Errorf("Transform(%q) = %s, want an error for a truncated body", prefix, out)
			}
		}
	}
}

func TestTransformRejectsInvalidJSONAnywhere(t *testing.T) {
	p := mustCompile(t, Spec{Fields: keep("district", "address.city", "tags[]")})
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	tests := []struct {
		name  string
		shape Shape
		body  string
	}{
		{"empty body", itemsShape, ``},
		{"whitespace body", itemsShape, " \n\t"},
		{"byte order mark", itemsShape, "\xef\xbb\xbf{\"items\":[]}"},
		{"garbage after the body", itemsShape, `{"items":[]} x`},
		{"second object after the body", itemsShape, `{"items":[]}{}`},
		{"closing bracket after the body", itemsShape, `{"items":[]}]`},
		{"garbage after a bare array", Shape{}, `[] []`},
		{"unquoted member name", itemsShape, `{items:[]}`},
		{"single-quoted member name", itemsShape, `{'items':[]}`},
		{"number as member name", itemsShape, `{"items":[],1:2}`},
		{"missing colon", itemsShape, `{"items" []}`},
		{"trailing comma in the body", itemsShape, `{"items":[],}`},
		{"trailing comma in the records", itemsShape, `{"items":[{"district":"a"},]}`},
		{"leading comma in the records", itemsShape, `{"items":[,{"district":"a"}]}`},
		{"missing comma between records", itemsShape, `{"items":[{"district":"a"} {"district":"b"}]}`},
		{"trailing comma in a record", itemsShape, `{"items":[{"district":"a",}]}`},
		{"mismatched brackets in a record", itemsShape, `{"items":[{"district":"a","x":[}]}]}`},
		{"record closed by a bracket", itemsShape, `{"items":[{"district":"a"]]}`},
		{"invalid literal in a skipped field", itemsShape, `{"items":[{"district":"a","x":tru}]}`},
		{"leading zero in a skipped field", itemsShape, `{"items":[{"district":"a","x":01}]}`},
		{"bare minus in a skipped field", itemsShape, `{"items":[{"district":"a","x":-}]}`},
		{"fraction without digits in a skipped field", itemsShape, `{"items":[{"district":"a","x":1.}]}`},
		{"exponent without digits in a skipped field", itemsShape, `{"items":[{"district":"a","x":1e}]}`},
		{"control character in a skipped field", itemsShape, "{\"items\":[{\"district\":\"a\",\"x\":\"a\x01b\"}]}"},
		{"bad escape in a skipped field", itemsShape, `{"items":[{"district":"a","x":"\q"}]}`},
		{"short unicode escape in a skipped field", itemsShape, `{"items":[{"district":"a","x":"\u12"}]}`},
		{"missing colon in a skipped object", itemsShape, `{"items":[{"district":"a","x":{"y" 1}}]}`},
		{"trailing comma in a skipped array", itemsShape, `{"items":[{"district":"a","x":[1,]}]}`},
		{"invalid key in a skipped object", itemsShape, `{"items":[{"district":"a","x":{"\q":1}}]}`},
		{"nesting too deep in a skipped field", itemsShape, `{"items":[{"district":"a","x":` + deep + `}]}`},
		{"nesting too deep in a named field", itemsShape, `{"items":[{"tags":[` + deep + `]}]}`},
		{"invalid kept value", itemsShape, `{"items":[{"district":nul}]}`},
		{"invalid named object part", itemsShape, `{"items":[{"address":{"city":"北京","street":"\x"}}]}`},
		{"invalid array element", itemsShape, `{"items":[{"tags":["a",+1]}]}`},
		{"invalid meta value", itemsShape, `{"items":[],"page":1x}`},
		{"invalid unnamed member", itemsShape, `{"items":[],"extra":{"a":}}`},
		{"unnamed member that is a bad literal", itemsShape, `{"items":[],"extra":nulll}`},
		{"unterminated string in the records", itemsShape, `{"items":[{"district":"a}]}`},
		{"raw newline in a key", itemsShape, "{\"items\":[{\"dist\nrict\":\"a\"}]}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if out, _, err := run(t, p, tc.shape, tc.body); err == nil {
				t.Errorf("Transform(%q) = %s, want an error", tc.body, out)
			}
		})
	}
}

// visits is a page of records for the row-condition tests.
const visits = `{"items":[
	{"id":1,"district":"朝阳区","cost":100,"visit_date":"2026-03-01","insured":true},
	{"id":2,"district":"海淀区","cost":250.5,"visit_date":"2026-03-15T08:00:00+08:00","insured":false},
	{"id":3,"district":"\u671d\u9633\u533a","cost":1e3,"visit_date":"2026-04-01"},
	{"id":4,"cost":"100","visit_date":"not a date","insured":null},
	{"id":5,"district":null,"cost":null},
	{"id":6,"district":"东城区","cost":-5,"visit_date":"2025-12-31"}
],"page":1,"total":6}`

func TestRowConditionsReleaseOnlyMatchingRecords(t *testing.T) {
	tests := []struct {
		name  string
		rows  []Cond
		want  []int // released ids
		total bool  // the count passes through
	}{
		{"no conditions", nil, []int{1, 2, 3, 4, 5, 6}, true},
		{"in strings", []Cond{{Field: "district", In: []any{"朝阳区", "东城区"}}}, []int{1, 3, 6}, false},
		{"in numbers of any form", []Cond{{Field: "cost", In: []any{100, 1000.0, json.Number("-5")}}}, []int{1, 3, 6}, false},
		{"in does not mix strings and numbers", []Cond{{Field: "cost", In: []any{"100"}}}, []int{4}, false},
		{"in booleans", []Cond{{Field: "insured", In: []any{true}}}, []int{1}, false},
		{"empty in matches nothing", []Cond{{Field: "district", In: []any{}}}, nil, false},
		{"not in needs the field", []Cond{{Field: "district", NotIn: []any{"海淀区"}}}, []int{1, 3, 6}, false},
		{"not in excludes", []Cond{{Field: "id", NotIn: []any{1, 2, 3}}}, []int{4, 5, 6}, false},
		{"eq string", []Cond{{Field: "district", Eq: "海淀区"}}, []int{2}, false},
		{"eq number", []Cond{{Field: "cost", Eq: json.Number("1000")}}, []int{3}, false},
		{"eq bool", []Cond{{Field: "insured", Eq: false}}, []int{2}, false},
		{"gte number", []Cond{{Field: "cost", Gte: 250.5}}, []int{2, 3}, false},
		{"lte number", []Cond{{Field: "cost", Lte: 100}}, []int{1, 6}, false},
		{"number range", []Cond{{Field: "cost", Gte: 0, Lte: 300}}, []int{1, 2}, false},
		{"gte date", []Cond{{Field: "visit_date", Gte: "2026-03-01"}}, []int{1, 2, 3}, false},
		{"lte date", []Cond{{Field: "visit_date", Lte: "2026-03-14"}}, []int{1, 6}, false},
		{"date range with a timestamp bound", []Cond{{Field: "visit_date", Gte: "2026-03-02", Lte: "2026-03-31T23:59:59Z"}}, []int{2}, false},
		{"every condition must hold", []Cond{
			{Field: "district", In: []any{"朝阳区", "海淀区"}},
			{Field: "cost", Gte: 200},
		}, []int{2, 3}, false},
		{"two conditions on one field", []Cond{
			{Field: "cost", Gte: 0},
			{Field: "cost", Lte: 100},
		}, []int{1}, false},
		{"condition on a field no record has", []Cond{{Field: "status", NotIn: []any{"deleted"}}}, nil, false},
		{"condition every record meets", []Cond{{Field: "id", Gte: 1}}, []int{1, 2, 3, 4, 5, 6}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, Spec{Fields: keep("id"), Rows: tc.rows})
			out, st := release(t, p, itemsShape, visits)
			var got struct {
				Items []struct{ ID int }
				Page  *int
				Total *int
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			var ids []int
			for _, it := range got.Items {
				ids = append(ids, it.ID)
			}
			if diff := cmp.Diff(tc.want, ids); diff != "" {
				t.Errorf("released ids mismatch (-want +got):\n%s", diff)
			}
			wantSt := Stats{Records: 6, Released: len(tc.want), Filtered: 6 - len(tc.want)}
			if diff := cmp.Diff(wantSt, st, ignoreBytes); diff != "" {
				t.Errorf("Stats mismatch (-want +got):\n%s", diff)
			}
			if got.Page == nil || *got.Page != 1 {
				t.Errorf("page = %v, want 1", got.Page)
			}
			if (got.Total != nil) != tc.total {
				t.Errorf("total released = %v, want %v", got.Total != nil, tc.total)
			}
		})
	}
}

var ignoreBytes = cmp.FilterPath(func(p cmp.Path) bool {
	s := p.String()
	return s == "BytesIn" || s == "BytesOut"
}, cmp.Ignore())

func TestRowConditionOnAnUnreleasedFieldIsEvaluatedButNotReleased(t *testing.T) {
	p := mustCompile(t, Spec{
		Fields: map[string]Rule{"id": {Op: "keep"}, "district": {Op: "drop"}},
		Rows:   []Cond{{Field: "district", In: []any{"朝阳区"}}},
	})
	out, _ := release(t, p, itemsShape, visits)
	assertJSON(t, out, `{"items":[{"id":1},{"id":3}],"page":1}`)
}

func TestMaxRowsCapsRecordsThatMeetTheConditions(t *testing.T) {
	tests := []struct {
		name    string
		maxRows int
		rows    []Cond
		want    string
		wantSt  Stats
	}{
		{"cap after filtering", 2, []Cond{{Field: "district", NotIn: []any{"海淀区"}}},
			`{"items":[{"id":1},{"id":3}],"page":1}`, Stats{Records: 6, Released: 2, Filtered: 3, Truncated: true}},
		{"cap equal to the matches", 3, []Cond{{Field: "district", NotIn: []any{"海淀区"}}},
			`{"items":[{"id":1},{"id":3},{"id":6}],"page":1}`, Stats{Records: 6, Released: 3, Filtered: 3}},
		{"cap without conditions keeps the count", 1, nil,
			`{"items":[{"id":1}],"page":1,"total":6}`, Stats{Records: 6, Released: 1, Truncated: true}},
		{"no cap", 0, nil,
			`{"items":[{"id":1},{"id":2},{"id":3},{"id":4},{"id":5},{"id":6}],"page":1,"total":6}`, Stats{Records: 6, Released: 6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, Spec{Fields: keep("id"), Rows: tc.rows, MaxRows: tc.maxRows})
			out, st := release(t, p, itemsShape, visits)
			assertJSON(t, out, tc.want)
			if diff := cmp.Diff(tc.wantSt, st, ignoreBytes); diff != "" {
				t.Errorf("Stats mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCountsPassOnlyWhenNoRecordWasFiltered(t *testing.T) {
	p := mustCompile(t, Spec{Fields: keep("id"), Rows: []Cond{{Field: "district", In: []any{"朝阳区"}}}})
	tests := []struct {
		name, body, want string
	}{
		{"nothing filtered", `{"total":2,"items":[{"id":1,"district":"朝阳区"},{"id":2,"district":"朝阳区"}],"page":3}`,
			`{"items":[{"id":1},{"id":2}],"page":3,"total":2}`},
		{"one filtered", `{"total":2,"items":[{"id":1,"district":"朝阳区"},{"id":2,"district":"海淀区"}],"page":3}`,
			`{"items":[{"id":1}],"page":3}`},
		{"all filtered", `{"items":[{"id":2,"district":"海淀区"}],"total":1}`, `{"items":[]}`},
		{"no records", `{"items":[],"total":0}`, `{"items":[],"total":0}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := release(t, p, itemsShape, tc.body)
			assertJSON(t, out, tc.want)
		})
	}
}

// A shape that names a Filtered member says how many records the row
// conditions removed, so an empty page is not a mystery; none removed,
// nothing is said.
func TestFilteredSaysHowManyRecordsTheRowConditionsRemoved(t *testing.T) {
	p := mustCompile(t, Spec{Fields: keep("id"), Rows: []Cond{{Field: "district", In: []any{"朝阳区"}}}})
	shape := Shape{Records: "items", Meta: []string{"page"}, Filtered: "filtered"}
	for _, tc := range []struct{ name, body, want string }{
		{"one of two", `{"items":[{"id":1,"district":"朝阳区"},{"id":2,"district":"海淀区"}],"page":3}`,
			`{"items":[{"id":1}],"page":3,"filtered":1}`},
		{"all", `{"items":[{"id":2,"district":"海淀区"},{"id":3,"district":"东城区"}]}`, `{"items":[],"filtered":2}`},
		{"none", `{"items":[{"id":1,"district":"朝阳区"}]}`, `{"items":[{"id":1}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := release(t, p, shape, tc.body)
			assertJSON(t, out, tc.want)
		})
	}
	bare, _ := release(t, p, Shape{Filtered: "filtered"}, `[{"id":2,"district":"海淀区"}]`)
	assertJSON(t, bare, `{"items":[],"filtered":1}`)
}

func TestMetaPassesOnlyTheScalarsItNames(t *testing.T) {
	p := mustCompile(t, Spec{Fields: keep("id")})
	shape := Shape{Records: "items", Meta: []string{"page", "next", "more", "cursor", "filters", "tags"}, Counts: []string{"total"}}
	body := `{"page":2,"next":"/visits?page=3","more":true,"cursor":null,` +
		`"filters":{"district":"朝阳区","patient_id":"110105194912310021"},"tags":["secret"],` +
		`"total":{"朝阳区":10},"secret":"unnamed","items":[{"id":1}]}`
	out, _ := release(t, p, shape, body)
	assertJSON(t, out, `{"items":[{"id":1}],"page":2,"next":"/visits?page=3","more":true,"cursor":null}`)
}

func TestMetaStringsAreWrittenAsValidUTF8(t *testing.T) {
	p := mustCompile(t, Spec{Fields: keep("id")})
	out, _ := release(t, p, itemsShape, "{\"items\":[],\"page\":\"a\xffb\u2028c\"}")
	assertJSON(t, out, `{"items":[],"page":"a\ufffdb\u2028c"}`)
	if bytes.Contains(out, []byte("\u2028")) {
		t.Errorf("output %q holds a raw U+2028", out)
	}
}

func TestBareArrayBodyReleasesRecordsUnderItems(t *testing.T) {
	p := mustCompile(t, Spec{Fields: keep("id", "district")})
	out, st := release(t, p, Shape{Meta: []string{"page"}}, ` [{"id":1,"district":"朝阳区","name":"张三"}, {"id":2}] `)
	assertJSON(t, out, `{"items":[{"id":1,"district":"朝阳区"},{"id":2}]}`)
	if st.Records != 2 || st.Released != 2 {
		t.Errorf("Stats = %+v, want 2 records read and released", st)
	}
	out, _ = release(t, p, Shape{}, `[]`)
	assertJSON(t, out, `{"items":[]}`)
}

func TestLimitsBoundWhatATransformReads(t *testing.T) {
	p := mustCompile(t, Spec{Fields: keep("name")})
	record := `{"name":"` + strings.Repeat("x", 100) + `"}` // 111 bytes
	body := `{"items":[` + record + `]}`
	tests := []struct {
		name    string
		body    string
		lim     Limits
		tooBig  bool
		comment string
	}{
		{name: "record at the limit", body: body, lim: Limits{MaxRecordBytes: len(record)}},
		{name: "record over the limit", body: body, lim: Limits{MaxRecordBytes: len(record) - 1}, tooBig: true},
		{name: "later record over the limit", body: `{"items":[{"name":"a"},` + record + `]}`, lim: Limits{MaxRecordBytes: 50}, tooBig: true},
		{name: "unnamed member over the limit", body: `{"items":[],"x":` + record + `}`, lim: Limits{MaxRecordBytes: 50}, tooBig: true},
		{name: "meta member over the limit", body: `{"items":[],"page":"` + strings.Repeat("9", 100) + `"}`, lim: Limits{MaxRecordBytes: 50}, tooBig: true},
		{name: "body at the limit", body: body, lim: Limits{MaxBodyBytes: int64(len(body))}},
		{name: "body over the limit", body: body, lim: Limits{MaxBodyBytes: int64(len(body) - 1)}, tooBig: true},
		{name: "trailing whitespace over the body limit", body: body + "   ", lim: Limits{MaxBodyBytes: int64(len(body))}, tooBig: true},
		{name: "default record limit is 1 MiB", body: `[{"name":"` + strings.Repeat("x", 1<<20) + `"}]`, tooBig: true},
		{name: "large body under the default limits", body: `[` + strings.Repeat(record+",", 10000) + record + `]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			shape := itemsShape
			if tc.body[0] == '[' {
				shape = Shape{}
			}
			_, err := p.Transform(io.Discard, strings.NewReader(tc.body), shape, testEnv(t), tc.lim)
			if tc.tooBig && !errors.Is(err, ErrTooLarge) {
				t.Errorf("Transform error = %v, want ErrTooLarge", err)
			}
			if !tc.tooBig && err != nil {
				t.Errorf("Transform: %v", err)
			}
		})
	}
}

// recordReader serves {"items":[rec,rec,...,rec],"total":n} without holding
// the body, calling probe after each MiB read.
type recordReader struct {
	rec, pending []byte
	left         int
	probe        func()
	read, next   int
}

func (r *recordReader) Read(p []byte) (int, error) {
	if r.read >= r.next && r.probe != nil {
		r.probe()
		r.next += 1 << 20
	}
	for len(r.pending) == 0 {
		switch {
		case r.left < 0:
			return 0, io.EOF
		case r.left == 0:
			r.pending = []byte(`],"total":1}`)
		default:
			r.pending = r.rec
		}
		r.left--
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	r.read += n
	return n, nil
}

func newRecordReader(rec string, n int, probe func()) *recordReader {
	return &recordReader{rec: []byte("," + rec), pending: []byte(`{"items":[` + rec), left: n - 1, probe: probe}
}

func TestTransformMemoryIsBoundedByTheLargestRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 32 MiB")
	}
	p := mustCompile(t, Spec{Fields: map[string]Rule{
		"patient_id": {Op: "pseudonymize"}, "district": {Op: "keep"}, "visit_date": {Op: "generalize", Params: Params{"to": "month"}},
	}})
	rec := `{"patient_id":"110105194912310021","patient_name":"张三","district":"朝阳区","hospital":"北京朝阳医院",` +
		`"diagnosis":"J06.9","visit_date":"2026-03-14","cost":1280,"notes":"` + strings.Repeat("随访", 40) + `"}`
	n := (32 << 20) / len(rec)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, uint64(0)
	probe := func() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	st, err := p.Transform(io.Discard, newRecordReader(rec, n, probe), itemsShape, testEnv(t), Limits{MaxRecordBytes: 4 << 10})
	if err != nil {
		t.Fatalf("Transform: %v", err)
	}
	if st.Released != n || st.BytesIn < 32<<20-int64(len(rec)) {
		t.Fatalf("Stats = %+v, want %d records released", st, n)
	}
	if grown := int64(peak) - int64(base); grown > 4<<20 {
		t.Errorf("live heap grew by %d bytes while streaming %d bytes, want at most 4 MiB", grown, st.BytesIn)
	}
}

func TestTransformOutputDoesNotDependOnReadSizes(t *testing.T) {
	p := mustCompile(t, Spec{Fields: map[string]Rule{
		"id": {Op: "keep"}, "note": {Op: "keep"}, "phone": {Op: "mask", Params: Params{"keep_first": 3, "keep_last": 4}},
	}})
	var b strings.Builder
	b.WriteString(`{"page":1,"items":[`)
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		// Records of uneven sizes, some longer than the read buffer, with
		// escapes and multibyte characters to straddle its boundaries.
		fmt.Fprintf(&b, `{"id":%d,"note":"%s\"\\\u4e2d","phone":"138%08d","skip":{"x":"%s"}}`,
			i, strings.Repeat("朝阳", i*37%500), i, strings.Repeat("]", i*7919%70000))
	}
	b.WriteString(`],"total":100}`)
	body := b.String()
	want, _ := release(t, p, itemsShape, body)
	for name, r := range map[string]io.Reader{
		"one byte":  iotest.OneByteReader(strings.NewReader(body)),
		"half":      iotest.HalfReader(strings.NewReader(body)),
		"data+EOF":  iotest.DataErrReader(strings.NewReader(body)),
		"one chunk": bytes.NewReader([]byte(body)),
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if _, err := p.Transform(&out, r, itemsShape, testEnv(t), Limits{}); err != nil {
				t.Fatalf("Transform: %v", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from a whole-body read (%d vs %d bytes)", out.Len(), len(want))
			}
		})
	}
}

var errUpstream = errors.New("upstream connection reset")

// failingReader returns the first n bytes of body, then err.
type failingReader struct {
	body string
	n    int
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := copy(p, r.body[:r.n])
	r.body, r.n = r.body[k:], r.n-k
	return k, nil
}

func TestReadErrorsFailTheTransform(t *testing.T) {
	p := mustCompile(t, Spec{Fields: keep("district", "cost")})
	for _, b := range truncationBodies {
		for n := 0; n <= len(b.body); n++ {
			_, err := p.Transform(io.Discard, &failingReader{body: b.body, n: n, err: errUpstream}, b.shape, testEnv(t), Limits{})
			if !errors.Is(err, errUpstream) {
				t.Errorf("read error after %d bytes of %q: Transform error = %v, want %v", n, b.body, err, errUpstream)
			}
		}
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errUpstream
	}
	w.n--
	return len(p), nil
}

func TestWriteErrorsFailTheTransform(t *testing.T) {
	p := mustCompile(t, Spec{Fields: keep("note")})
	small := `{"items":[{"note":"x"}]}`
	large := newRecordReader(`{"note":"`+strings.Repeat("x", 1000)+`"}`, 1000, nil)
	if _, err := p.Transform(&failingWriter{}, strings.NewReader(small), itemsShape, testEnv(t), Limits{}); !errors.Is(err, errUpstream) {
		t.Errorf("small body: Transform error = %v, want %v", err, errUpstream)
	}
	if _, err := p.Transform(&failingWriter{n: 1}, large, itemsShape, testEnv(t), Limits{}); !errors.Is(err, errUpstream) {
		t.Errorf("large body: Transform error = %v, want %v", err, errUpstream)
	}
}

func TestTransformReportsStats(t *testing.T) {
	p := mustCompile(t, Spec{Fields: map[string]Rule{"id": {Op: "keep"}, "cost": {Op: "keep"}}, Rows: []Cond{{Field: "id", Lte: 3}}})
	out, st := release(t, p, itemsShape, visits)
	want := Stats{Records: 6, Released: 3, Filtered: 3, Fallbacks: 0, BytesIn: int64(len(visits)), BytesOut: int64(len(out))}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("Stats mismatch (-want +got):\n%s", diff)
	}
	p = mustCompile(t, Spec{Fields: map[string]Rule{"cost": {Op: "generalize", Params: Params{"to": "year"}}}})
	if _, st = release(t, p, itemsShape, visits); st.Fallbacks != 6 {
		t.Errorf("Stats.Fallbacks = %d, want 6 (no cost is a date)", st.Fallbacks)
	}
}

func TestPlanIsSafeForConcurrentUse(t *testing.T) {
	p := mustCompile(t, Spec{
		Fields: map[string]Rule{
			"patient_id":   {Op: "pseudonymize", Params: Params{"scope": "consumer"}},
			"phone":        {Op: "mask", Params: Params{"keep_first": 3, "keep_last": 4}},
			"name":         {Op: "mask_name_cn"},
			"visit_date":   {Op: "generalize", Params: Params{"to": "month"}},
			"address.city": {Op: "keep"},
			"tags[]":       {Op: "keep"},
		},
		Rows: []Cond{{Field: "district", NotIn: []any{"海淀区"}}},
	})
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 2000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"patient_id":"1101051949%08d","phone":"138%08d","name":"欧阳%c","visit_date":"2026-%02d-14",`+
			`"address":{"city":"北京","street":"x"},"tags":["a",%d],"district":"%s"}`,
			i, i, '娜'+rune(i%5), i%12+1, i, []string{"朝阳区", "海淀区", "东城区"}[i%3])
	}
	b.WriteString(`],"page":1,"total":2000}`)
	body := b.String()
	want, wantSt := release(t, p, itemsShape, body)

	const workers = 16
	keys := testKeys(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				var out bytes.Buffer
				env := &Env{Keys: keys, Issuer: testIssuer, Org: "health", Consumer: "alice", Purpose: "public-health", Dataset: "health/visits"}
				st, err := p.Transform(&out, strings.NewReader(body), itemsShape, env, Limits{})
				switch {
				case err != nil:
					errs <- fmt.Errorf("worker %d: %v", w, err)
					return
				case st != wantSt || !bytes.Equal(out.Bytes(), want):
					errs <- fmt.Errorf("worker %d: output or stats differ from a lone transform", w)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPlanDescribesWhatItReleases(t *testing.T) {
	spec := Spec{
		Fields: map[string]Rule{
			"patient_id":   {Op: "pseudonymize"},
			"patient_name": {Op: "drop"},
			"visit_date":   {Op: "generalize", Params: Params{"to": "month"}},
			"cost":         {Op: "keep"},
			"address.city": {Op: "keep"},
		},
		Rows: []Cond{
			{Field: "district", In: []any{"朝阳区", "海淀区"}},
			{Field: "cost", Gte: 0, Lte: json.Number("100000")},
			{Field: "status", NotIn: []any{"deleted"}, Eq: "open"},
		},
		MaxRows: 1000,
	}
	p := mustCompile(t, spec)

	wantTreatments := map[string]string{"patient_id": "pseudonymize", "visit_date": "generalize", "cost": "keep", "address.city": "keep"}
	if diff := cmp.Diff(wantTreatments, p.Treatments()); diff != "" {
		t.Errorf("Treatments() mismatch (-want +got):\n%s", diff)
	}
	wantFilters := []string{"district in [朝阳区 海淀区]", "cost >= 0 and cost <= 100000", "status not in [deleted] and status = open"}
	if diff := cmp.Diff(wantFilters, p.RowFilters()); diff != "" {
		t.Errorf("RowFilters() mismatch (-want +got):\n%s", diff)
	}
	for field, want := range map[string]bool{
		"cost": true, "patient_id": false, "patient_name": false, "visit_date": false,
		"address": false, "address.city": false, "district": false, "unknown": false,
	} {
		if got := p.Releases(field); got != want {
			t.Errorf("Releases(%q) = %v, want %v", field, got, want)
		}
	}
	if !p.HasRowFilter() || p.MaxRows() != 1000 {
		t.Errorf("HasRowFilter, MaxRows = %v, %d; want true, 1000", p.HasRowFilter(), p.MaxRows())
	}
	if diff := cmp.Diff(spec, p.Spec()); diff != "" {
		t.Errorf("Spec() mismatch (-want +got):\n%s", diff)
	}
	empty := mustCompile(t, Spec{})
	if empty.HasRowFilter() || empty.MaxRows() != 0 || len(empty.RowFilters()) != 0 || len(empty.Treatments()) != 0 {
		t.Errorf("empty plan describes filters %v, max rows %d, treatments %v", empty.RowFilters(), empty.MaxRows(), empty.Treatments())
	}
}

func TestPushdownOffersOnlyPlainStringMembershipTests(t *testing.T) {
	tests := []struct {
		name string
		rows []Cond
		want map[string][]string
	}{
		{"no conditions", nil, map[string][]string{}},
		{"strings", []Cond{{Field: "district", In: []any{"朝阳区", "海淀区"}}}, map[string][]string{"district": {"朝阳区", "海淀区"}}},
		{"numbers", []Cond{{Field: "cost", In: []any{100}}}, map[string][]string{}},
		{"mixed", []Cond{{Field: "district", In: []any{"朝阳区", 1}}}, map[string][]string{}},
		{"empty list", []Cond{{Field: "district", In: []any{}}}, map[string][]string{}},
		{"in with another test", []Cond{{Field: "district", In: []any{"朝阳区"}, NotIn: []any{"海淀区"}}}, map[string][]string{}},
		{"not in", []Cond{{Field: "district", NotIn: []any{"海淀区"}}}, map[string][]string{}},
		{"eq", []Cond{{Field: "district", Eq: "朝阳区"}}, map[string][]string{}},
		{"range", []Cond{{Field: "visit_date", Gte: "2026-01-01"}}, map[string][]string{}},
		{"only the plain ones", []Cond{
			{Field: "district", In: []any{"朝阳区"}},
			{Field: "cost", Lte: 100},
			{Field: "hospital", In: []any{"北京朝阳医院"}},
		}, map[string][]string{"district": {"朝阳区"}, "hospital": {"北京朝阳医院"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, Spec{Rows: tc.rows})
			if diff := cmp.Diff(tc.want, p.Pushdown()); diff != "" {
				t.Errorf("Pushdown() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompileRejectsBadRowConditions(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
	}{
		{"negative max rows", Spec{MaxRows: -1}},
		{"no field", Spec{Rows: []Cond{{In: []any{"a"}}}}},
		{"nested field", Spec{Rows: []Cond{{Field: "address.city", In: []any{"北京"}}}}},
		{"array field", Spec{Rows: []Cond{{Field: "tags[]", In: []any{"a"}}}}},
		{"tests nothing", Spec{Rows: []Cond{{Field: "district"}}}},
		{"in with an object", Spec{Rows: []Cond{{Field: "district", In: []any{map[string]any{}}}}}},
		{"in with null", Spec{Rows: []Cond{{Field: "district", In: []any{nil}}}}},
		{"not in with an array", Spec{Rows: []Cond{{Field: "district", NotIn: []any{[]any{"a"}}}}}},
		{"eq with an array", Spec{Rows: []Cond{{Field: "district", Eq: []any{"a"}}}}},
		{"gte with a non-date string", Spec{Rows: []Cond{{Field: "cost", Gte: "100"}}}},
		{"lte with a bool", Spec{Rows: []Cond{{Field: "cost", Lte: true}}}},
		{"bad json.Number", Spec{Rows: []Cond{{Field: "cost", Eq: json.Number("x")}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Compile(tc.spec); err == nil {
				t.Errorf("Compile(%+v) succeeded, want an error", tc.spec)
			}
		})
	}
}

func TestParseCondReadsConditionsAsRegoGivesThem(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		want    Cond
		wantErr bool
	}{
		{name: "in", in: map[string]any{"field": "district", "in": []any{"朝阳区"}},
			want: Cond{Field: "district", In: []any{"朝阳区"}}},
		{name: "all tests", in: map[string]any{"field": "cost", "not_in": []any{1.0}, "eq": 2.0, "gte": 0.0, "lte": 9.0},
			want: Cond{Field: "cost", NotIn: []any{1.0}, Eq: 2.0, Gte: 0.0, Lte: 9.0}},
		{name: "not an object", in: []any{"district"}, wantErr: true},
		{name: "field not a string", in: map[string]any{"field": 1, "in": []any{"a"}}, wantErr: true},
		{name: "in not an array", in: map[string]any{"field": "district", "in": "朝阳区"}, wantErr: true},
		{name: "not_in not an array", in: map[string]any{"field": "district", "not_in": "朝阳区"}, wantErr: true},
		{name: "unknown test", in: map[string]any{"field": "district", "like": "朝%"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCond(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseCond(%v) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseCond(%v) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}
