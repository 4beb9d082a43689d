package risk

import (
	"crypto/sha256"
	"encoding/json"

	"github.com/sluicegw/sluice/internal/jsonscan"
)

// ReleasesJSON is Releases of a record given as its JSON object, read in
// place: each member's value is sliced out of rec, not decoded, and only
// the quasi-identifiers are looked at (a class's diversity is the
// table's). A record that is not a JSON object is not released.
func (t *Table) ReleasesJSON(rec []byte) bool {
	var stack [8]json.RawMessage
	vals := stack[:0]
	if len(t.qis) > len(stack) {
		vals = make([]json.RawMessage, 0, len(t.qis))
	}
	vals = vals[:len(t.qis)]
	ok := jsonscan.Members(rec, func(name string, raw []byte) {
		for i, f := range t.qis {
			if f.Name == name {
				vals[i] = raw
				return
			}
		}
	})
	if !ok {
		return false
	}
	var buf [256]byte
	key := buf[:0]
	for _, v := range vals {
		key = appendQI(key, v)
	}
	sum := sha256.Sum256(key)
	return t.releasesClass(ClassKey(sum[:16]))
}
