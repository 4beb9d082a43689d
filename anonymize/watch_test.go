package anonymize

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seenBy returns a shape watching fields and the record of what it saw:
// one line per released record, the watched values' texts joined by "|"
// ("-" for a field the record lacks).
func seenBy(fields ...string) (Shape, *[]string) {
	var got []string
	shape := itemsShape
	shape.Watch = fields
	shape.Seen = func(vals []Value) {
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v.Raw == nil {
				parts[i] = "-"
				continue
			}
			s, ok := v.Text()
			if !ok {
				s = "?" + string(v.Raw)
			}
			parts[i] = s
		}
		got = append(got, strings.Join(parts, "|"))
	}
	return shape, &got
}

// The gateway learns whose records it released from Watch: the values as
// the upstream sent them, whatever the treatment (dropped, pseudonymised),
// for exactly the records released — not those filtered, suppressed or cut
// by max_rows — in order.
func TestWatchSeesTheRawValuesOfExactlyTheReleasedRecords(t *testing.T) {
	body := `{"items":[
		{"id":"A1","pid":"110101199001011234","district":"朝阳区","n":9},
		{"id":"A2","pid":"110101199001015678","district":"海淀区","n":9},
		{"id":"A3","pid":"11010\u0031199001019999","district":"朝阳区","n":1},
		{"id":4,"district":"朝阳区","n":9},
		{"id":"A5","pid":"110101199001011234","district":"朝阳区","n":9}
	],"page":1}`
	tests := []struct {
		name string
		spec Spec
		want []string
	}{
		{"dropped and kept fields alike", Spec{Fields: keep("district")},
			[]string{"A1|110101199001011234", "A2|110101199001015678", "A3|110101199001019999", "4|-", "A5|110101199001011234"}},
		{"pseudonymised", Spec{Fields: map[string]Rule{"pid": {Op: "pseudonymize"}}},
			[]string{"A1|110101199001011234", "A2|110101199001015678", "A3|110101199001019999", "4|-", "A5|110101199001011234"}},
		{"row conditions", Spec{Fields: keep("id"), Rows: []Cond{{Field: "district", In: []any{"朝阳区"}}}},
			[]string{"A1|110101199001011234", "A3|110101199001019999", "4|-", "A5|110101199001011234"}},
		{"suppression", Spec{Fields: keep("id"), Suppress: &Suppress{CountField: "n", Below: 5}},
			[]string{"A1|110101199001011234", "A2|110101199001015678", "4|-", "A5|110101199001011234"}},
		{"max rows", Spec{Fields: keep("id"), MaxRows: 2},
			[]string{"A1|110101199001011234", "A2|110101199001015678"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shape, got := seenBy("id", "pid")
			out, st := release(t, mustCompile(t, tt.spec), shape, body)
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("seen (-want +got):\n%s\nreleased %s", diff, out)
			}
			if st.Released != len(*got) {
				t.Errorf("released %d records, saw %d", st.Released, len(*got))
			}
		})
	}
}

// A watched field is found under an escaped name too, and a record that
// names it twice is refused: whose record it is must not depend on which
// value a reader takes (a department hiding a person behind a decoy).
func TestWatchFindsEscapedNamesAndRefusesRepeats(t *testing.T) {
	shape, got := seenBy("pid")
	release(t, mustCompile(t, Spec{Fields: keep("id")}), shape, `{"items":[{"id":1,"p\u0069d":"X"}]}`)
	if diff := cmp.Diff([]string{"X"}, *got); diff != "" {
		t.Errorf("escaped name (-want +got):\n%s", diff)
	}
	for _, body := range []string{
		`{"items":[{"id":1,"pid":"X","pid":"Y"}]}`,
		`{"items":[{"id":1,"pid":"X","p\u0069d":"Y"}]}`,
	} {
		shape, got := seenBy("pid")
		var out bytes.Buffer
		_, err := mustCompile(t, Spec{Fields: keep("id")}).Transform(&out, strings.NewReader(body), shape, testEnv(t), Limits{})
		if _, ok := err.(*ShapeError); !ok {
			t.Errorf("%s: err = %v, want a ShapeError", body, err)
		}
		if len(*got) != 0 {
			t.Errorf("%s: saw %v of a refused body", body, *got)
		}
	}
}
