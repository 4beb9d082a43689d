package anonymize

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// cells is an upstream that already aggregates: cases per district and
// diagnosis, some of them small.
const cells = `{"items":[
	{"id":1,"district":"朝阳区","diagnosis":"J06.9","cases":12},
	{"id":2,"district":"海淀区","diagnosis":"I10","cases":3},
	{"id":3,"district":"朝阳区","diagnosis":"E11.9","cases":5},
	{"id":4,"district":"东城区","diagnosis":"K29.7","cases":4.999},
	{"id":5,"district":"朝阳区","diagnosis":"M54.5","cases":"7"},
	{"id":6,"district":"朝阳区","diagnosis":"J45.9","cases":null},
	{"id":7,"district":"朝阳区","diagnosis":"A00"},
	{"id":8,"district":"海淀区","diagnosis":"B20","cases":1e400},
	{"id":9,"district":"海淀区","diagnosis":"C34","cases":-10},
	{"id":10,"district":"海淀区","diagnosis":"D50","cases":{"n":100}},
	{"id":11,"district":"海淀区","diagnosis":"E66","cases":5.0e1},
	{"id":12,"district":"东城区","diagnosis":"F32","cases":0}
],"page":1,"total":12}`

func TestSuppressionRemovesSmallCells(t *testing.T) {
	tests := []struct {
		name   string
		spec   Spec
		want   string
		wantSt Stats
	}{
		{
			name:   "counts below k and unreadable counts are removed",
			spec:   Spec{Fields: keep("id", "cases"), Suppress: &Suppress{CountField: "cases", Below: 5}},
			want:   `{"items":[{"id":1,"cases":12},{"id":3,"cases":5},{"id":11,"cases":5.0e1}],"page":1}`,
			wantSt: Stats{Records: 12, Released: 3, Suppressed: 9},
		},
		{
			name:   "the count field is read but released only when named",
			spec:   Spec{Fields: keep("id"), Suppress: &Suppress{CountField: "cases", Below: 5}},
			want:   `{"items":[{"id":1},{"id":3},{"id":11}],"page":1}`,
			wantSt: Stats{Records: 12, Released: 3, Suppressed: 9},
		},
		{
			name:   "below 1 removes only zero, negative and unreadable counts",
			spec:   Spec{Fields: keep("id"), Suppress: &Suppress{CountField: "cases", Below: 1}},
			want:   `{"items":[{"id":1},{"id":2},{"id":3},{"id":4},{"id":11}],"page":1}`,
			wantSt: Stats{Records: 12, Released: 5, Suppressed: 7},
		},
		{
			name: "row conditions apply first and count as filtered",
			spec: Spec{Fields: keep("id"), Rows: []Cond{{Field: "district", In: []any{"朝阳区"}}},
				Suppress: &Suppress{CountField: "cases", Below: 5}},
			want:   `{"items":[{"id":1},{"id":3}],"page":1}`,
			wantSt: Stats{Records: 12, Released: 2, Filtered: 7, Suppressed: 3},
		},
		{
			name:   "max_rows counts only records that survive suppression",
			spec:   Spec{Fields: keep("id"), Suppress: &Suppress{CountField: "cases", Below: 5}, MaxRows: 2},
			want:   `{"items":[{"id":1},{"id":3}],"page":1}`,
			wantSt: Stats{Records: 12, Released: 2, Suppressed: 9, Truncated: true},
		},
		{
			name:   "a count field nobody has suppresses everything",
			spec:   Spec{Fields: keep("id"), Suppress: &Suppress{CountField: "n", Below: 1}},
			want:   `{"items":[],"page":1}`,
			wantSt: Stats{Records: 12, Suppressed: 12},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, st := release(t, mustCompile(t, tc.spec), itemsShape, cells)
			assertJSON(t, out, tc.want)
			if diff := cmp.Diff(tc.wantSt, st, ignoreBytes); diff != "" {
				t.Errorf("Stats mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// An upstream total counts the small cells too, on this page or another:
// with suppression it never passes, even when this page suppressed nothing.
func TestSuppressionWithholdsUpstreamCounts(t *testing.T) {
	p := mustCompile(t, Spec{Fields: keep("id"), Suppress: &Suppress{CountField: "cases", Below: 5}})
	out, st := release(t, p, itemsShape, `{"items":[{"id":1,"cases":50}],"page":2,"page_size":1,"total":40}`)
	assertJSON(t, out, `{"items":[{"id":1}],"page":2,"page_size":1}`)
	if st.Suppressed != 0 || st.Released != 1 {
		t.Errorf("Stats = %+v, want one record released and none suppressed", st)
	}
}

// Two counts in one record are ambiguous: which one was checked?
func TestSuppressionRefusesARepeatedCount(t *testing.T) {
	p := mustCompile(t, Spec{Fields: keep("id"), Suppress: &Suppress{CountField: "cases", Below: 5}})
	for _, rec := range []string{`{"id":1,"cases":50,"cases":1}`, `{"id":1,"cases":1,"c\u0061ses":50}`} {
		if out, _, err := run(t, p, itemsShape, `{"items":[`+rec+`]}`); err == nil {
			t.Errorf("Transform(%s) = %s, want an error", rec, out)
		}
	}
}

func TestCompileRejectsBadSuppression(t *testing.T) {
	for name, s := range map[string]*Suppress{
		"no field":     {Below: 5},
		"nested field": {CountField: "counts.cases", Below: 5},
		"array field":  {CountField: "cases[]", Below: 5},
		"below zero":   {CountField: "cases", Below: 0},
		"negative":     {CountField: "cases", Below: -3},
	} {
		if _, err := Compile(Spec{Suppress: s}); err == nil {
			t.Errorf("%s: Compile(%+v) succeeded, want an error", name, s)
		}
	}
}

func TestParseSuppressReadsWhatRegoGives(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    *Suppress
		wantErr string
	}{
		{name: "both members", in: `{"count_field": "cases", "below": 5}`, want: &Suppress{CountField: "cases", Below: 5}},
		{name: "integral float", in: `{"count_field": "cases", "below": 10.0}`, want: &Suppress{CountField: "cases", Below: 10}},
		{name: "unknown member", in: `{"count_field": "cases", "below": 5, "above": 1}`, wantErr: `unknown member "above"`},
		{name: "no count_field", in: `{"below": 5}`, wantErr: "count_field"},
		{name: "no below", in: `{"count_field": "cases"}`, wantErr: "below"},
		{name: "count_field a number", in: `{"count_field": 1, "below": 5}`, wantErr: "count_field"},
		{name: "below a string", in: `{"count_field": "cases", "below": "5"}`, wantErr: "below"},
		{name: "below fractional", in: `{"count_field": "cases", "below": 2.5}`, wantErr: "below"},
		{name: "below negative", in: `{"count_field": "cases", "below": -1}`, wantErr: "below"},
		{name: "not an object", in: `["cases", 5]`, wantErr: "object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec := json.NewDecoder(strings.NewReader(tc.in))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			got, err := ParseSuppress(v)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("ParseSuppress(%s) = %+v, %v; want an error about %s", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseSuppress(%s) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestPlanDescribesSuppressionAsARowFilter(t *testing.T) {
	p := mustCompile(t, Spec{Rows: []Cond{{Field: "district", In: []any{"朝阳区"}}}, Suppress: &Suppress{CountField: "cases", Below: 5}})
	want := []string{"district in [朝阳区]", "cases >= 5 (smaller counts suppressed)"}
	if diff := cmp.Diff(want, p.RowFilters()); diff != "" {
		t.Errorf("RowFilters() mismatch (-want +got):\n%s", diff)
	}
	if !p.HasRowFilter() {
		t.Error("HasRowFilter() = false for a plan that suppresses")
	}
	if got := p.Suppression(); got == nil || *got != (Suppress{CountField: "cases", Below: 5}) {
		t.Errorf("Suppression() = %+v", got)
	}
	// Suppression cannot be pushed to the upstream: a gateway that compares
	// Pushdown with RowFilters withholds upstream totals.
	if len(p.Pushdown()) != 1 {
		t.Errorf("Pushdown() = %v, want only the district filter", p.Pushdown())
	}
	if p := mustCompile(t, Spec{Suppress: &Suppress{CountField: "cases", Below: 5}}); !p.HasRowFilter() || p.Suppression() == nil {
		t.Error("a plan with only suppression reports no row filter")
	}
	if mustCompile(t, Spec{}).Suppression() != nil {
		t.Error("a plan without suppression reports one")
	}
}
