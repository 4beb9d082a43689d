package risk

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
)

// ClassKey is a fixed-size hash of a record's released quasi-identifiers:
// two records share an equivalence class exactly when their keys are
// equal (up to a collision of 128-bit hashes). A [Table] stores keys, not
// the values they hash, so its memory is bounded by the number of classes
// and not by how long the values are.
type ClassKey [16]byte

// Table is the equivalence classes of one view, kept to enforce
// k-anonymity (and l-diversity) at release rather than to report on it:
// for each class, up to k of its distinct people and, when l is set, up
// to l distinct values of each sensitive field (both as 64-bit hashes:
// two hashing alike count once, which errs towards suppressing). Classes
// are formed on the quasi-identifiers exactly as an [Assessor] forms them,
// and like it the table counts people, not records.
//
// Add is not safe for concurrent use; once built, Releases is.
type Table struct {
	qis, sens []Field
	k, l      int
	// people holds, per class, up to k distinct privacy-unit hashes.
	people map[ClassKey][]uint64
	// diverse holds, per class, sensitive field j's distinct value hashes
	// at [j*l, (j+1)*l); 0 marks an empty slot.
	diverse map[ClassKey][]uint64
	records int
	buf     []byte
}

// NewTable returns an empty table of a view that releases fields, to
// release records of classes of at least k people (k ≥ 1) and, when l >
// 0, of at least l distinct values of each sensitive field. Fields are
// classed as by [New].
func NewTable(fields []Field, k, l int) (*Table, error) {
	if k < 1 {
		return nil, fmt.Errorf("k is %d: want at least 1", k)
	}
	qis, sens, err := split(fields)
	if err != nil {
		return nil, err
	}
	t := &Table{qis: qis, sens: sens, k: k, l: l, people: map[ClassKey][]uint64{}}
	if l > 0 && len(sens) > 0 {
		t.diverse = map[ClassKey][]uint64{}
	}
	return t, nil
}

// Key is rec's class key: a hash of the canonical form of each
// quasi-identifier, in name order, each prefixed by its length.
func (t *Table) Key(rec map[string]json.RawMessage) ClassKey {
	k, _ := t.key(nil, rec)
	return k
}

// key hashes rec's quasi-identifiers, building their text in buf, which
// it returns for reuse.
func (t *Table) key(buf []byte, rec map[string]json.RawMessage) (ClassKey, []byte) {
	for _, f := range t.qis {
		buf = appendQI(buf, rec[f.Name])
	}
	sum := sha256.Sum256(buf)
	return ClassKey(sum[:16]), buf
}

// appendQI appends one quasi-identifier's part of a class key: the
// canonical form of its released value, length-prefixed.
func appendQI(buf []byte, raw json.RawMessage) []byte {
	v := canonical(raw)
	buf = binary.AppendUvarint(buf, uint64(len(v)))
	return append(buf, v...)
}

// Add counts one released record of the view, about the person whose
// privacy unit is unit ([UnitOf]); an empty unit makes the record a
// person of its own.
func (t *Table) Add(rec map[string]json.RawMessage, unit string) {
	if unit == "" {
		unit = recordUnit(t.records)
	}
	t.records++
	var k ClassKey
	k, t.buf = t.key(t.buf[:0], rec)
	t.people[k] = addCapped(t.people[k], valueHash(unit), t.k)
	if t.diverse == nil {
		return
	}
	vals := t.diverse[k]
	if vals == nil {
		vals = make([]uint64, len(t.sens)*t.l)
		t.diverse[k] = vals
	}
	for j, f := range t.sens {
		slots := vals[j*t.l : (j+1)*t.l]
		if slots[t.l-1] != 0 {
			continue // l values seen: enough
		}
		h := valueHash(canonical(rec[f.Name]))
		for i, s := range slots {
			if s == h {
				break
			}
			if s == 0 {
				slots[i] = h
				break
			}
		}
	}
}

func valueHash(v string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(v))
	return h.Sum64() | 1 // never 0, the empty slot
}

// Records is the number of records added.
func (t *Table) Records() int { return t.records }

// Classes is the number of equivalence classes.
func (t *Table) Classes() int { return len(t.people) }

// Releases reports whether rec may be released: its class holds at least
// k people and, when the table tracks l, at least l distinct values of
// every sensitive field. A record of no class in the table (its released
// values changed since the table was built) is not released.
func (t *Table) Releases(rec map[string]json.RawMessage) bool {
	key, _ := t.key(make([]byte, 0, 64), rec)
	return t.releasesClass(key)
}

// releasesClass reports whether the class key names holds at least k
// people and, when the table tracks l, l values of every sensitive field.
func (t *Table) releasesClass(key ClassKey) bool {
	if len(t.people[key]) < t.k {
		return false
	}
	if t.diverse == nil {
		return true
	}
	vals := t.diverse[key]
	for j := range t.sens {
		if vals[(j+1)*t.l-1] == 0 {
			return false
		}
	}
	return true
}
