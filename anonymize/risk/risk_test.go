package risk

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// record turns a record written as JSON into what the transform emits.
func record(t *testing.T, s string) map[string]json.RawMessage {
	t.Helper()
	var rec map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &rec); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return rec
}

func assess(t *testing.T, fields []Field, records ...string) *Report {
	t.Helper()
	a, err := New(fields)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range records {
		a.Add(record(t, s))
	}
	return a.Report()
}

// fixture is ten released records, small enough to count by hand:
//
//	#   district year phone  diagnosis income   class (district, year, phone)
//	1   A        1980 ***1   flu       100      A/1980/1  size 2, diagnosis {flu}, income {100, 200}
//	2   A        1980 ***1   flu       200
//	3   A        1980 ***2   cold      300      A/1980/2  size 1
//	4   A        1990 ***1   flu       100      A/1990/1  size 2, diagnosis {flu, asthma}, income {100, 200}
//	5   A        1990 ***1   asthma    200
//	6   B        1980 ***5   cold      100      B/1980/5  size 1
//	7   B        1990 ***3   cold      100      B/1990/3  size 3, diagnosis {cold}, income {100, 200, 300}
//	8   B        1990 ***3   cold      200
//	9   B        1990 ***3   cold      300
//	10  C        1980 ***4   flu       100      C/1980/4  size 1
//
// case_id is unique to every record but not given to the assessor, so it
// must not split any class.
var fixture = []string{
	`{"case_id": 1, "district": "A", "year": 1980, "phone": "***1", "diagnosis": "flu", "income": 100}`,
	`{"case_id": 2, "district": "A", "year": 1980, "phone": "***1", "diagnosis": "flu", "income": 200}`,
	`{"case_id": 3, "district": "A", "year": 1980, "phone": "***2", "diagnosis": "cold", "income": 300}`,
	`{"case_id": 4, "district": "A", "year": 1990, "phone": "***1", "diagnosis": "flu", "income": 100}`,
	`{"case_id": 5, "district": "A", "year": 1990, "phone": "***1", "diagnosis": "asthma", "income": 200}`,
	`{"case_id": 6, "district": "B", "year": 1980, "phone": "***5", "diagnosis": "cold", "income": 100}`,
	`{"case_id": 7, "district": "B", "year": 1990, "phone": "***3", "diagnosis": "cold", "income": 100}`,
	`{"case_id": 8, "district": "B", "year": 1990, "phone": "***3", "diagnosis": "cold", "income": 200}`,
	`{"case_id": 9, "district": "B", "year": 1990, "phone": "***3", "diagnosis": "cold", "income": 300}`,
	`{"case_id": 10, "district": "C", "year": 1980, "phone": "***4", "diagnosis": "flu", "income": 100}`,
}

var fixtureFields = []Field{
	{Name: "year", Treatment: "generalize"},
	{Name: "district", Class: Quasi, Treatment: "keep"},
	{Name: "phone", Class: ID, Treatment: "mask_phone_cn"},
	{Name: "diagnosis", Class: Sensitive, Treatment: "keep"},
	{Name: "income", Class: Sensitive, Treatment: "keep"},
}

func TestRiskReportCountsClassesOfAHandCountedView(t *testing.T) {
	got := assess(t, fixtureFields, fixture...)
	want := &Report{
		Records: 10,
		// Records 3, 6 and 10 are alone in their classes.
		Unique:      3,
		UniqueShare: 0.3,
		MinK:        1,
		// Sorted by name; an id field counts as a quasi-identifier, and
		// an empty class is quasi.
		QuasiIdentifiers: []QuasiIdentifier{
			{Field: "district", Class: Quasi, Treatment: "keep", Distinct: 3},
			{Field: "phone", Class: ID, Treatment: "mask_phone_cn", Distinct: 5},
			{Field: "year", Class: Quasi, Treatment: "generalize", Distinct: 2},
		},
		Classes: Classes{Count: 6, Sizes: []SizeBin{
			{Size: "1", Classes: 3, Records: 3},
			{Size: "2", Classes: 2, Records: 4},
			{Size: "3-4", Classes: 1, Records: 3},
			{Size: "5-9"},
			{Size: "10+"},
		}},
		// Dropped alone: without district, (year, phone) leaves 3, 6 and
		// 10 unique; without year, (district, phone) leaves 3, 6 and 10;
		// without phone, (district, year) leaves 6 and 10 — phone first.
		// Then without phone and district, (year) has two classes of 5:
		// none unique; and nothing is left to drop after year.
		Drivers: []Driver{
			{Field: "phone", UniqueWithout: 2, UniqueAfter: 2},
			{Field: "district", UniqueWithout: 3, UniqueAfter: 0},
			{Field: "year", UniqueWithout: 3, UniqueAfter: 0},
		},
		Sensitive: []Diversity{
			// Every class but A/1990/1 has one diagnosis: 5 classes, 2 +
			// 1 + 1 + 3 + 1 = 8 records.
			{Field: "diagnosis", Treatment: "keep", L: 1, ClassesWithL1: 5, RecordsWithL1: 8},
			// Only the three unique records' classes have one income.
			{Field: "income", Treatment: "keep", L: 1, ClassesWithL1: 3, RecordsWithL1: 3},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}

func TestRiskReportOfAViewWithoutUniqueRecordsGivesItsSmallestClassAndL(t *testing.T) {
	// Only records 1, 2, 4, 5, 7, 8, 9 of the fixture: classes A/1980/1
	// (2), A/1990/1 (2) and B/1990/3 (3). Incomes: {100, 200}, {100,
	// 200}, {100, 200, 300}: l = 2, no class with one income.
	var recs []string
	for _, i := range []int{1, 2, 4, 5, 7, 8, 9} {
		recs = append(recs, fixture[i-1])
	}
	got := assess(t, fixtureFields, recs...)
	if got.Records != 7 || got.Unique != 0 || got.MinK != 2 || got.Classes.Count != 3 {
		t.Errorf("records %d unique %d min_k %d classes %d, want 7, 0, 2, 3", got.Records, got.Unique, got.MinK, got.Classes.Count)
	}
	wantSensitive := []Diversity{
		{Field: "diagnosis", Treatment: "keep", L: 1, ClassesWithL1: 2, RecordsWithL1: 5},
		{Field: "income", Treatment: "keep", L: 2},
	}
	if diff := cmp.Diff(wantSensitive, got.Sensitive); diff != "" {
		t.Errorf("sensitive (-want +got):\n%s", diff)
	}
}

func TestRiskReportKeepsAbsentNullAndTheStringNullApart(t *testing.T) {
	got := assess(t, []Field{{Name: "v"}},
		`{"v": null}`, `{"v": "null"}`, `{}`, `{"v": 1}`, `{"v": "1"}`,
		`{"v": "\u5f20"}`, `{"v": "张"}`, `{"v": {"a": 1, "b": [1, 2]}}`, `{"v":{"a":1,"b":[1,2]}}`)
	// Nine records, seven values: the escaped and the literal 张 are one,
	// and so are the two spellings of the object.
	if got.Classes.Count != 7 || got.Unique != 5 {
		t.Errorf("classes %d unique %d, want 7 and 5", got.Classes.Count, got.Unique)
	}
}

func TestRiskReportWithoutQuasiIdentifiersIsOneClass(t *testing.T) {
	got := assess(t, []Field{{Name: "diagnosis", Class: Sensitive}},
		`{"diagnosis": "flu"}`, `{"diagnosis": "cold"}`, `{"diagnosis": "flu"}`)
	if got.Classes.Count != 1 || got.MinK != 3 || got.Unique != 0 || len(got.Drivers) != 0 {
		t.Errorf("report %+v, want one class of 3 and no drivers", got)
	}
	if d := got.Sensitive[0]; d.L != 2 || d.ClassesWithL1 != 0 {
		t.Errorf("diversity %+v, want l = 2", d)
	}
}

func TestRiskReportOfNoRecordsIsEmpty(t *testing.T) {
	got := assess(t, fixtureFields)
	if got.Records != 0 || got.Unique != 0 || got.UniqueShare != 0 || got.MinK != 0 || got.Classes.Count != 0 ||
		len(got.Drivers) != 0 || got.Sensitive[0].L != 0 || got.Sensitive[0].AtLeast {
		t.Errorf("report %+v, want zeros", got)
	}
	b, _ := json.Marshal(got)
	var back map[string]any
	json.Unmarshal(b, &back)
	for _, k := range []string{"quasi_identifiers", "drivers", "sensitive"} {
		if _, ok := back[k].([]any); !ok {
			t.Errorf("%s is %v in JSON, want an array", k, back[k])
		}
	}
}

func TestRiskReportCountsDiversityUpToItsCap(t *testing.T) {
	a, _ := New([]Field{{Name: "d"}, {Name: "s", Class: Sensitive}})
	for i := range MaxDiversity + 10 {
		a.Add(record(t, fmt.Sprintf(`{"d": "x", "s": %d}`, i)))
	}
	if d := a.Report().Sensitive[0]; d.L != MaxDiversity || !d.AtLeast {
		t.Errorf("diversity %+v, want l = %d at least", d, MaxDiversity)
	}
}

func TestRiskNewRefusesUnknownClassesAndRepeatedFields(t *testing.T) {
	for _, fields := range [][]Field{
		{{Name: "a", Class: "secret"}},
		{{Name: "a"}, {Name: "a", Class: Sensitive}},
		{{Name: ""}},
	} {
		if _, err := New(fields); err == nil {
			t.Errorf("New(%v): no error", fields)
		}
	}
}

func TestRiskAssessorHoldsClassesNotRecords(t *testing.T) {
	// 10,000 records in 10 classes: the assessor holds 10 classes and 10
	// interned values, whatever else the records carry.
	a, _ := New([]Field{{Name: "d"}, {Name: "s", Class: Sensitive}})
	for i := range 10_000 {
		a.Add(record(t, fmt.Sprintf(`{"d": %d, "s": "v%d", "note": "record %d"}`, i%10, i%3, i)))
	}
	if len(a.classes) != 10 || len(a.values[0]) != 10 {
		t.Errorf("%d classes and %d values held, want 10 and 10", len(a.classes), len(a.values[0]))
	}
	// Each record a person of its own, every class holds 1,000 people:
	// counted up to MaxPeople, a lower bound.
	if r := a.Report(); r.MinK != MaxPeople || !r.MinKAtLeast || r.Sensitive[0].L != 3 {
		t.Errorf("min_k %d (at least: %v), l %d, want %d (true) and 3", r.MinK, r.MinKAtLeast, r.Sensitive[0].L, MaxPeople)
	}
}
