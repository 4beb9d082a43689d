package risk

import (
	"cmp"
	"strings"
)

// Report is what a view's records reveal about how they single people out.
// It holds counts and field names only, never a value or a record.
type Report struct {
	// Records is the number of records in the view.
	Records int `json:"records"`
	// Unique is the number of records whose equivalence class holds one
	// person: no record of anyone else shares their quasi-identifiers.
	Unique int `json:"unique"`
	// UniqueShare is Unique / Records (0 for no records).
	UniqueShare float64 `json:"unique_share"`
	// MinK is the number of people in the smallest class: the view is
	// k-anonymous for k = MinK (0 for no records).
	MinK int `json:"min_k"`
	// MinKAtLeast marks a MinK of MaxPeople, a lower bound.
	MinKAtLeast bool `json:"min_k_at_least,omitempty"`
	// QuasiIdentifiers are the fields classes are formed on: the view's
	// fields of class quasi and id.
	QuasiIdentifiers []QuasiIdentifier `json:"quasi_identifiers"`
	// Classes counts the equivalence classes, by size.
	Classes Classes `json:"classes"`
	// Drivers rank the quasi-identifiers by how many unique records
	// dropping them would leave, fewest first (see Driver).
	Drivers []Driver `json:"drivers"`
	// Sensitive is the l-diversity of each sensitive field.
	Sensitive []Diversity `json:"sensitive"`
}

// QuasiIdentifier is one field classes are formed on.
type QuasiIdentifier struct {
	Field     string `json:"field"`
	Class     Class  `json:"class"`
	Treatment string `json:"treatment,omitempty"`
	// Distinct is the number of distinct values the view releases.
	Distinct int `json:"distinct"`
}

// Classes are the equivalence classes: their number and a histogram of
// their sizes in people.
type Classes struct {
	Count int `json:"count"`
	// Sizes are the bins 1, 2, 3-4, 5-9 and 10+ people, each with the
	// classes of that size and the records in them.
	Sizes []SizeBin `json:"sizes"`
}

// SizeBin is one bin of the class-size histogram.
type SizeBin struct {
	// Size is "1", "2", "3-4", "5-9" or "10+".
	Size    string `json:"size"`
	Classes int    `json:"classes"`
	Records int    `json:"records"`
}

// sizeBins are the histogram's bins: [lo, hi], hi 0 for no bound.
var sizeBins = []struct {
	name   string
	lo, hi int
}{{"1", 1, 1}, {"2", 2, 2}, {"3-4", 3, 4}, {"5-9", 5, 9}, {"10+", 10, 0}}

// Driver is one quasi-identifier's part in making records unique. The
// drivers are ranked greedily: first the field whose removal leaves the
// fewest unique records, then, with it removed, the next such field, and
// so on; ties go to the removal that leaves fewer classes, then to the
// field with more distinct values, then by name.
type Driver struct {
	Field string `json:"field"`
	// UniqueWithout is the number of unique records were this field alone
	// dropped from the quasi-identifiers.
	UniqueWithout int `json:"unique_without"`
	// UniqueAfter is the number of unique records were this field and
	// every driver ranked before it dropped.
	UniqueAfter int `json:"unique_after"`
}

// Diversity is a sensitive field's l-diversity over the classes.
type Diversity struct {
	Field     string `json:"field"`
	Treatment string `json:"treatment,omitempty"`
	// L is the smallest number of distinct values of the field in any
	// class: a class with L = 1 tells its one value of every record in it
	// to anyone who can place a person in the class.
	L int `json:"l"`
	// AtLeast marks an L of MaxDiversity: every class has at least that
	// many distinct values, and L is a lower bound.
	AtLeast bool `json:"l_at_least,omitempty"`
	// ClassesWithL1 and RecordsWithL1 count the classes whose records all
	// share one value of the field, and the records in them (every unique
	// record among them).
	ClassesWithL1 int `json:"classes_with_l_1"`
	RecordsWithL1 int `json:"records_with_l_1"`
}

// Report computes the report of the records added so far.
func (a *Assessor) Report() *Report {
	r := &Report{Records: a.records, QuasiIdentifiers: []QuasiIdentifier{}, Drivers: []Driver{}, Sensitive: []Diversity{},
		Classes: Classes{Count: len(a.classes), Sizes: make([]SizeBin, len(sizeBins))}}
	for i, b := range sizeBins {
		r.Classes.Sizes[i].Size = b.name
	}
	for i, f := range a.qis {
		r.QuasiIdentifiers = append(r.QuasiIdentifiers, QuasiIdentifier{Field: f.Name, Class: f.Class,
			Treatment: f.Treatment, Distinct: len(a.values[i])})
	}
	for _, f := range a.sens {
		d := Diversity{Field: f.Name, Treatment: f.Treatment}
		if len(a.classes) > 0 {
			d.L = MaxDiversity
		}
		r.Sensitive = append(r.Sensitive, d)
	}
	for _, c := range a.classes {
		k := len(c.people)
		if k == 1 {
			r.Unique += c.size
		}
		if r.MinK == 0 || k < r.MinK {
			r.MinK = k
		}
		for i, b := range sizeBins {
			if k >= b.lo && (b.hi == 0 || k <= b.hi) {
				r.Classes.Sizes[i].Classes++
				r.Classes.Sizes[i].Records += c.size
			}
		}
		for j, vals := range c.diverse {
			d := &r.Sensitive[j]
			d.L = min(d.L, len(vals))
			if len(vals) == 1 {
				d.ClassesWithL1++
				d.RecordsWithL1 += c.size
			}
		}
	}
	for j := range r.Sensitive {
		r.Sensitive[j].AtLeast = r.Sensitive[j].L == MaxDiversity
	}
	r.MinKAtLeast = r.MinK == MaxPeople
	if a.records > 0 {
		r.UniqueShare = float64(r.Unique) / float64(a.records)
	}
	r.Drivers = a.drivers()
	return r
}

// Withheld is the number of records k-anonymity at release would
// suppress: those of classes of fewer than k people or, when l > 0, with
// fewer than l distinct values of a sensitive field (l is counted up to
// MaxDiversity, k up to MaxPeople).
func (a *Assessor) Withheld(k, l int) int {
	n := 0
	for _, c := range a.classes {
		short := len(c.people) < k
		for _, vals := range c.diverse {
			short = short || (l > 0 && len(vals) < l)
		}
		if short {
			n += c.size
		}
	}
	return n
}

// drivers ranks the quasi-identifiers greedily by the unique records their
// removal leaves. Each step regroups the classes, not the records: the
// work is bounded by the number of classes times the quasi-identifiers
// squared.
func (a *Assessor) drivers() []Driver {
	n := len(a.qis)
	if n == 0 || a.records == 0 {
		return []Driver{}
	}
	dropped := make([]bool, n)
	without := make([]int, n)
	out := make([]Driver, 0, n)
	for step := 0; step < n; step++ {
		best, bestUnique, bestGroups := -1, 0, 0
		for i := range n {
			if dropped[i] {
				continue
			}
			dropped[i] = true
			unique, groups := a.regroup(dropped)
			dropped[i] = false
			if step == 0 {
				without[i] = unique
			}
			if best < 0 || cmp.Or(cmp.Compare(unique, bestUnique), cmp.Compare(groups, bestGroups),
				cmp.Compare(len(a.values[best]), len(a.values[i])), strings.Compare(a.qis[i].Name, a.qis[best].Name)) < 0 {
				best, bestUnique, bestGroups = i, unique, groups
			}
		}
		dropped[best] = true
		out = append(out, Driver{Field: a.qis[best].Name, UniqueWithout: without[best], UniqueAfter: bestUnique})
	}
	return out
}

// regroup merges the classes that differ only in dropped fields, and
// returns the unique records (those of merged classes of one person) and
// the classes that leaves.
func (a *Assessor) regroup(dropped []bool) (unique, groups int) {
	type merged struct {
		size   int
		people []uint64
	}
	ms := make(map[string]*merged, len(a.classes))
	key := make([]byte, 0, 4*len(a.qis))
	for k, c := range a.classes {
		key = key[:0]
		for i, d := range dropped {
			if !d {
				key = append(key, k[4*i:4*i+4]...)
			}
		}
		m := ms[string(key)]
		if m == nil {
			m = &merged{}
			ms[string(key)] = m
		}
		m.size += c.size
		if len(m.people) < 2 { // one person or more is all unique asks
			for _, h := range c.people {
				m.people = addCapped(m.people, h, 2)
			}
		}
	}
	for _, m := range ms {
		if len(m.people) == 1 {
			unique += m.size
		}
	}
	return unique, len(ms)
}
