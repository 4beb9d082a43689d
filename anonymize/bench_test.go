package anonymize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

// visitsBody is a realistic health/visits page of n records, as the demo
// department serves it.
func visitsBody(tb testing.TB, n int) []byte {
	tb.Helper()
	districts := []string{"朝阳区", "海淀区", "东城区", "西城区", "丰台区", "石景山区"}
	hospitals := []string{"北京朝阳医院", "北京大学第三医院", "北京协和医院", "首都医科大学附属北京友谊医院"}
	diagnoses := []string{"J06.9", "I10", "E11.9", "K29.7", "M54.5", "J45.9"}
	surnames := []rune("王李张刘陈杨赵黄周吴")
	given := []rune("伟芳娜秀英敏静丽强磊军洋")
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		first17 := fmt.Sprintf("110105%04d%02d%02d%03d", 1940+i%70, i%12+1, i%28+1, i%1000)
		check, ok := CheckDigitCN(first17)
		if !ok {
			tb.Fatalf("bad ID prefix %s", first17)
		}
		name := string(surnames[i%len(surnames)]) + string(given[i%len(given)]) + string(given[(i/7)%len(given)])
		fmt.Fprintf(&b, `{"visit_id":"V%08d","patient_id":"%s%c","patient_name":"%s","district":"%s","hospital":"%s",`+
			`"diagnosis":"%s","visit_date":"2026-%02d-%02d","cost":%d}`,
			i, first17, check, name, districts[i%len(districts)], hospitals[i%len(hospitals)],
			diagnoses[i%len(diagnoses)], i%12+1, i%28+1, 80+i*37%5000)
	}
	fmt.Fprintf(&b, `],"page":1,"page_size":%d,"total":%d}`, n, n*10)
	return b.Bytes()
}

// analystSpec is the shipped analyst release of health/visits.
var analystSpec = Spec{Fields: map[string]Rule{
	"visit_id":     {Op: "keep"},
	"patient_id":   {Op: "pseudonymize"},
	"patient_name": {Op: "drop"},
	"district":     {Op: "keep"},
	"hospital":     {Op: "keep"},
	"diagnosis":    {Op: "keep"},
	"visit_date":   {Op: "generalize", Params: Params{"to": "month"}},
	"cost":         {Op: "keep"},
}}

var benchSizes = []int{20, 2000}

// BenchmarkTransform measures a release as the gateway runs it: a fresh Env
// per request, output streamed to the caller.
func BenchmarkTransform(b *testing.B) {
	p := mustCompile(b, analystSpec)
	keys := testKeys(b)
	shape := Shape{Records: "items", Meta: []string{"page", "page_size"}, Counts: []string{"total"}}
	for _, n := range benchSizes {
		body := visitsBody(b, n)
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				env := &Env{Keys: keys, Consumer: "alice", Dataset: "health/visits"}
				if _, err := p.Transform(io.Discard, bytes.NewReader(body), shape, env, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// maskingSpec releases the same body through the validating Chinese-format
// masks and the generalisations, the most expensive operators.
var maskingSpec = Spec{Fields: map[string]Rule{
	"visit_id":     {Op: "keep"},
	"patient_id":   {Op: "mask_id_cn"},
	"patient_name": {Op: "mask_name_cn"},
	"district":     {Op: "keep"},
	"hospital":     {Op: "mask", Params: Params{"keep_first": 2}},
	"diagnosis":    {Op: "generalize", Params: Params{"to": "prefix", "length": 3}},
	"visit_date":   {Op: "generalize", Params: Params{"to": "quarter"}},
	"cost":         {Op: "generalize", Params: Params{"to": "bucket", "width": 1000}},
}}

// BenchmarkTransformMasks is BenchmarkTransform with maskingSpec.
func BenchmarkTransformMasks(b *testing.B) {
	p := mustCompile(b, maskingSpec)
	shape := Shape{Records: "items", Meta: []string{"page", "page_size"}, Counts: []string{"total"}}
	for _, n := range benchSizes {
		body := visitsBody(b, n)
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				st, err := p.Transform(io.Discard, bytes.NewReader(body), shape, &Env{}, Limits{})
				if err != nil || st.Fallbacks != 0 {
					b.Fatal(err, st.Fallbacks)
				}
			}
		})
	}
}

// BenchmarkEncodingJSONRoundTrip is the baseline Transform must beat by
// 1.5×: decoding the same body with encoding/json and encoding it again,
// without applying any treatment.
func BenchmarkEncodingJSONRoundTrip(b *testing.B) {
	for _, n := range benchSizes {
		body := visitsBody(b, n)
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var page struct {
					Items    []map[string]any `json:"items"`
					Page     int              `json:"page"`
					PageSize int              `json:"page_size"`
					Total    int              `json:"total"`
				}
				if err := json.Unmarshal(body, &page); err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(page); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestBenchmarkBodyReleasesAsTheAnalystSees(t *testing.T) {
	p := mustCompile(t, analystSpec)
	body := visitsBody(t, 20)
	out, st := release(t, p, itemsShape, string(body))
	if st.Released != 20 || st.Fallbacks != 0 {
		t.Fatalf("Stats = %+v, want 20 records released without fallbacks", st)
	}
	var got struct{ Items []map[string]any }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for _, rec := range got.Items {
		if _, ok := rec["patient_name"]; ok || len(rec) != 7 || !pseudonymRE.MatchString(rec["patient_id"].(string)) ||
			len(rec["visit_date"].(string)) != len("2026-03") {
			t.Fatalf("released record %v is not the analyst's view", rec)
		}
	}
	if strings.Contains(string(out), "110105") {
		t.Errorf("output holds a raw ID prefix: %s", out)
	}
}
