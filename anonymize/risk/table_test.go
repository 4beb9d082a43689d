package risk

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
)

func TestTableFormsTheClassesTheAssessorReports(t *testing.T) {
	tab, err := NewTable(fixtureFields, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range fixture {
		tab.Add(record(t, s), "")
	}
	rep := assess(t, fixtureFields, fixture...)
	if tab.Classes() != rep.Classes.Count || tab.Records() != rep.Records {
		t.Errorf("table: %d classes of %d records; the assessor reports %d of %d",
			tab.Classes(), tab.Records(), rep.Classes.Count, rep.Records)
	}
}

func TestTableReleasesOnlyRecordsOfLargeAndDiverseClasses(t *testing.T) {
	// From the fixture's table of classes: records 1, 2 (size 2, one
	// diagnosis), 4, 5 (size 2, two diagnoses), 7 to 9 (size 3, one
	// diagnosis); 3, 6 and 10 are alone.
	tests := []struct {
		k, l int
		want []int // case ids released
	}{
		{2, 0, []int{1, 2, 4, 5, 7, 8, 9}},
		{3, 0, []int{7, 8, 9}},
		{2, 2, []int{4, 5}},
		{3, 2, nil},
	}
	for _, tt := range tests {
		tab, err := NewTable(fixtureFields, tt.k, tt.l)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range fixture {
			tab.Add(record(t, s), "")
		}
		var got []int
		for i, s := range fixture {
			if tab.Releases(record(t, s)) {
				got = append(got, i+1)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("k %d, l %d: released %v, want %v", tt.k, tt.l, got, tt.want)
		}
	}
}

func TestTableReleasesNoRecordOfAClassItNeverSaw(t *testing.T) {
	tab, _ := NewTable([]Field{{Name: "district"}}, 5, 0)
	for range 5 {
		tab.Add(map[string]json.RawMessage{"district": json.RawMessage(`"A"`)}, "")
	}
	if tab.Releases(map[string]json.RawMessage{"district": json.RawMessage(`"B"`)}) {
		t.Error("released a record of a class the table does not hold")
	}
	if !tab.Releases(map[string]json.RawMessage{"district": json.RawMessage(`"\u0041"`)}) {
		t.Error(`"\u0041" and "A" are one released value, and one class`)
	}
}

// Five visits of one patient in a class are one person: k counts people.
// A chronic patient's many visits must not make a class look large.
func TestTableCountsPeopleNotRecords(t *testing.T) {
	fields := []Field{{Name: "district"}, {Name: "diagnosis", Class: Sensitive}}
	tab, err := NewTable(fields, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(fields)
	if err != nil {
		t.Fatal(err)
	}
	add := func(district, patient string) {
		rec := map[string]json.RawMessage{"district": json.RawMessage(`"` + district + `"`), "diagnosis": json.RawMessage(`"J00"`)}
		unit := UnitOf(json.RawMessage(`"` + patient + `"`))
		tab.Add(rec, unit)
		a.AddUnit(rec, unit)
	}
	for range 10 {
		add("A", "p1") // ten visits, one patient
	}
	add("A", "p2")
	for _, p := range []string{"p3", "p4", "p5"} {
		add("B", p)
	}
	released := func(district string) bool {
		return tab.Releases(map[string]json.RawMessage{"district": json.RawMessage(`"` + district + `"`), "diagnosis": json.RawMessage(`"J00"`)})
	}
	if released("A") {
		t.Error("class A (11 records, 2 people) released at k = 3")
	}
	if !released("B") {
		t.Error("class B (3 records, 3 people) withheld at k = 3")
	}
	if w := a.Withheld(3, 0); w != 11 {
		t.Errorf("withheld at k = 3: %d, want the 11 visits of class A", w)
	}
	rep := a.Report()
	if rep.MinK != 2 || rep.Unique != 0 || rep.Records != 14 {
		t.Errorf("report: min_k %d, unique %d, records %d; want 2, 0, 14", rep.MinK, rep.Unique, rep.Records)
	}
	// A class of one person, however many records, is unique.
	for range 4 {
		add("C", "p6")
	}
	if rep = a.Report(); rep.MinK != 1 || rep.Unique != 4 {
		t.Errorf("one patient's 4 visits alone in class C: min_k %d, unique %d; want 1, 4", rep.MinK, rep.Unique)
	}
	if d := rep.Drivers[0]; d.Field != "district" || d.UniqueWithout != 0 {
		t.Errorf("drivers: %+v; dropping district merges everyone", rep.Drivers)
	}
}

func TestNewTableRefusesKBelowOne(t *testing.T) {
	if _, err := NewTable([]Field{{Name: "district"}}, 0, 0); err == nil {
		t.Error("k = 0 accepted")
	}
}

// BenchmarkTableBuild adds 10⁶ synthetic released records, of about
// 10⁵ classes on three quasi-identifiers, to a table that tracks l = 3 of
// one sensitive field, and reports the table's heap bytes per class and
// the time per record.
func BenchmarkTableBuild(b *testing.B) {
	const n = 1_000_000
	recs := make([]map[string]json.RawMessage, 1000)
	fields := []Field{{Name: "district", Class: Quasi}, {Name: "birth", Class: Quasi}, {Name: "phone", Class: ID},
		{Name: "diagnosis", Class: Sensitive}}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tab, _ := NewTable(fields, 5, 3)
		for i := range n {
			rec := recs[i%len(recs)]
			if rec == nil {
				rec = map[string]json.RawMessage{}
				recs[i%len(recs)] = rec
			}
			c := i % 100_003
			rec["district"] = json.RawMessage(fmt.Sprintf(`"D%d"`, c%16))
			rec["birth"] = json.RawMessage(fmt.Sprintf(`"19%02d-%02d"`, c%80, c%12+1))
			rec["phone"] = json.RawMessage(fmt.Sprintf(`"138****%04d"`, c/16%10000))
			rec["diagnosis"] = json.RawMessage(fmt.Sprintf(`"J%02d"`, i%7))
			tab.Add(rec, "")
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(tab.Classes()), "table-B/class")
		b.ReportMetric(float64(tab.Classes()), "classes")
		runtime.KeepAlive(tab)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
}
