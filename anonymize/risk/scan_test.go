package risk

import (
	"encoding/json"
	"fmt"
	"testing"
)

// ReleasesJSON decides as Releases does on the decoded record, for
// records written in every way JSON allows: spacing, escapes, member
// order, nested values, absent members.
func TestReleasesJSONDecidesAsReleases(t *testing.T) {
	fields := []Field{{Name: "district"}, {Name: "band"}, {Name: "diagnosis", Class: Sensitive}}
	tab, err := NewTable(fields, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{
		`{"district":"A","band":"1","diagnosis":"X"}`, `{"district":"A","band":"1","diagnosis":"Y"}`,
		`{"district":"B","band":"1","diagnosis":"X"}`, `{"district":"B","band":"1","diagnosis":"X"}`,
		`{"district":"\u0043","band":{"lo":1,"hi":[2,3]},"diagnosis":"X"}`, `{"district":"C","band":{"lo":1,"hi":[2,3]},"diagnosis":"Z"}`,
	} {
		var rec map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &rec); err != nil {
			t.Fatal(err)
		}
		tab.Add(rec, fmt.Sprint("p", i))
	}
	for _, s := range []string{
		`{"district":"A","band":"1","diagnosis":"X"}`,
		` { "band" : "1" , "diagnosis":"Q", "district" : "A" } `,
		`{"district":"B","band":"1","diagnosis":"X"}`,
		`{"district":"C","band":{"lo":1,"hi":[2,3]},"note":"a \"quoted\" }{ text"}`,
		`{"d\u0069strict":"A","band":"1"}`,
		`{"district":"A"}`,
		`{"district":"Z","band":"1"}`,
		`{}`,
	} {
		var rec map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &rec); err != nil {
			t.Fatal(err)
		}
		if got, want := tab.ReleasesJSON([]byte(s)), tab.Releases(rec); got != want {
			t.Errorf("%s: ReleasesJSON %v, Releases %v", s, got, want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"district":`, `{"district":"A"`, `{"district" "A"}`, `"A"`} {
		if tab.ReleasesJSON([]byte(bad)) {
			t.Errorf("%q released", bad)
		}
	}
}
