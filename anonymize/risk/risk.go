// Package risk measures how far a released view of records can single
// people out, whatever its fields' treatments hide: masking hides what a
// value says, not that a row is the only one of its kind.
//
// An [Assessor] is given the view's released fields, each with its class
// (a quasi-identifier, a sensitive value, or an identifier), and then the
// released records one at a time, as the transform emits them. Its
// [Report] groups the records into equivalence classes on their
// quasi-identifiers (k-anonymity): how many records are alone in their
// class, the smallest class, a histogram of class sizes, which fields make
// records unique (drivers), and for each sensitive field the smallest
// number of distinct values in a class (l-diversity).
//
// k counts people, not records: five visits of one patient in one class
// single the patient out as surely as one. A record added with its privacy
// unit ([Assessor.AddUnit]: the person it is about, e.g. a patient's ID)
// counts once per person in its class; a record added without one
// ([Assessor.Add]) counts as a person of its own.
//
// Records are not kept: memory is bounded by the number of classes (each
// class holds its size and, per sensitive field and for its people, at
// most [MaxDiversity] distinct value hashes; each quasi-identifier's
// distinct values are interned, and there are no more of them than
// classes). The package is pure:
// records in, report out; it names no value and no record in the report.
package risk

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Class is a field's part in re-identification.
type Class string

const (
	// Quasi is a field that, with others, may single a person out: what
	// someone else can know of a person (district, birth date, the day
	// of a visit).
	Quasi Class = "quasi"
	// Sensitive is what must not be learned of a person (a diagnosis).
	Sensitive Class = "sensitive"
	// ID identifies a person on its own (an ID number, a phone number, a
	// record number). A released ID is counted as a quasi-identifier: a
	// masked one keeps digits, and a pseudonym is one value per person.
	ID Class = "id"
)

// MaxDiversity is the most distinct values of a sensitive field counted in
// one class; an l of MaxDiversity is a lower bound (Diversity.AtLeast).
const MaxDiversity = 64

// Field is a released field of the view.
type Field struct {
	// Name is the record's top-level member.
	Name string
	// Class is quasi (also when empty), sensitive or id.
	Class Class
	// Treatment is how the view releases the field (e.g. "keep",
	// "mask_id_cn"); the report repeats it for the reader.
	Treatment string
}

// Assessor accumulates the equivalence classes of one view. It is not
// safe for concurrent use.
type Assessor struct {
	qis, sens []Field
	// values interns each quasi-identifier's released values: a class is
	// keyed by the ids of its values, 4 bytes each.
	values  []map[string]uint32
	classes map[string]*class
	records int
	key     []byte
}

// MaxPeople is the most distinct people counted in one class: a k of
// MaxPeople is a lower bound (Report.MinKAtLeast).
const MaxPeople = 64

// class is one equivalence class: records with the same released
// quasi-identifiers.
type class struct {
	size int
	// people holds the hashes of the distinct privacy units of the
	// class's records, at most MaxPeople.
	people []uint64
	// diverse holds, per sensitive field, its distinct values in the
	// class, at most MaxDiversity.
	diverse [][]string
}

// New returns an assessor of a view that releases fields. Quasi-identifiers
// are the fields of class quasi and id; sensitive fields are measured for
// l-diversity. A field listed twice or of an unknown class is an error.
func New(fields []Field) (*Assessor, error) {
	qis, sens, err := split(fields)
	if err != nil {
		return nil, err
	}
	a := &Assessor{classes: map[string]*class{}, qis: qis, sens: sens}
	a.values = make([]map[string]uint32, len(a.qis))
	for i := range a.values {
		a.values[i] = map[string]uint32{}
	}
	return a, nil
}

// split sorts a view's fields into its quasi-identifiers (class quasi,
// also when empty, and id) and its sensitive fields, each by name: the
// one place a field's class decides its part in a class key.
func split(fields []Field) (qis, sens []Field, err error) {
	seen := map[string]bool{}
	for _, f := range fields {
		switch {
		case f.Name == "":
			return nil, nil, fmt.Errorf("a field has no name")
		case seen[f.Name]:
			return nil, nil, fmt.Errorf("field %q is listed twice", f.Name)
		}
		seen[f.Name] = true
		switch f.Class {
		case "", Quasi:
			f.Class = Quasi
			qis = append(qis, f)
		case ID:
			qis = append(qis, f)
		case Sensitive:
			sens = append(sens, f)
		default:
			return nil, nil, fmt.Errorf("field %q: class %q is not quasi, sensitive or id", f.Name, f.Class)
		}
	}
	byName := func(x, y Field) int { return strings.Compare(x.Name, y.Name) }
	slices.SortFunc(qis, byName)
	slices.SortFunc(sens, byName)
	return qis, sens, nil
}

// Add counts one released record, a person of its own: a map of field to
// released JSON value. Members the assessor was not given are ignored; a
// given field the record lacks counts as a value of its own ("absent"),
// distinct from null.
func (a *Assessor) Add(rec map[string]json.RawMessage) {
	a.AddUnit(rec, "")
}

// AddUnit counts one released record about the person whose privacy unit
// is unit (its canonical raw value, as [UnitOf] gives it; released or
// not); an empty unit makes the record a person of its own, as Add does.
func (a *Assessor) AddUnit(rec map[string]json.RawMessage, unit string) {
	if unit == "" {
		unit = recordUnit(a.records)
	}
	a.records++
	a.key = a.key[:0]
	for i, f := range a.qis {
		v := canonical(rec[f.Name])
		id, ok := a.values[i][v]
		if !ok {
			id = uint32(len(a.values[i]))
			a.values[i][v] = id
		}
		a.key = binary.LittleEndian.AppendUint32(a.key, id)
	}
	c := a.classes[string(a.key)]
	if c == nil {
		c = &class{diverse: make([][]string, len(a.sens))}
		a.classes[string(a.key)] = c
	}
	c.size++
	c.people = addCapped(c.people, valueHash(unit), MaxPeople)
	for j, f := range a.sens {
		if len(c.diverse[j]) == MaxDiversity {
			continue
		}
		if v := canonical(rec[f.Name]); !slices.Contains(c.diverse[j], v) {
			c.diverse[j] = append(c.diverse[j], v)
		}
	}
}

// UnitOf is the form of a record's privacy unit that AddUnit and
// [Table.Add] take: its canonical value.
func UnitOf(raw json.RawMessage) string { return canonical(raw) }

// recordUnit is the unit of the n-th record added without one: a value no
// canonical form takes (those start with a, s or j).
func recordUnit(n int) string { return "r" + strconv.Itoa(n) }

// addCapped adds h to the set hs unless it holds it or max values.
func addCapped(hs []uint64, h uint64, max int) []uint64 {
	if len(hs) == max || slices.Contains(hs, h) {
		return hs
	}
	return append(hs, h)
}

// canonical is a released value as a class key: the text of a string
// (escapes resolved), the compact JSON of anything else, each tagged so
// that "1" and 1, or "null" and null, stay apart.
func canonical(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "a" // absent
	}
	if raw[0] == '"' {
		if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
			return "s" + string(raw[1:len(raw)-1])
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return "s" + s
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return "j" + b.String()
	}
	return "j" + string(raw)
}
