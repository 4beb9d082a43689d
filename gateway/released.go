package gateway

// Whose records a record release held, and which of them are disputed.
// The transform hands every released record's privacy unit and id, as
// the department sent them, to a releaseTap (anonymize.Shape.Watch); the
// tap keeps their keyed hashes for the outcome record (audit.Released),
// which the usage index is built from, and marks the records under an
// open objection, which the answer lists beside its items.

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/internal/jsonstr"
)

// releaseTap is one record release's view of whose records it released.
type releaseTap struct {
	hasher  *audit.Hasher
	dataset string // "source/dataset"
	// unit and id are the positions of the privacy unit and the record id
	// among the watched values; -1 when the dataset names none.
	unit, id int
	// hashRecords: the record id is not the privacy unit, so records are
	// named by a hash of their own.
	hashRecords bool
	// disputed are the dataset's records under an open objection, by id;
	// idInClear: the caller receives the id as it is, so a mark may name it.
	disputed  map[string][]disputeRef
	idInClear bool

	// units and records are the distinct hashes, in the order first seen;
	// byUnit and byRecord find a value's position among them.
	units, records   []string
	byUnit, byRecord map[string]int32
	// recs are the released records, in order: the positions of their
	// unit and record hashes (-1 for none) and their marks.
	recs []tappedRecord
	// unnamed counts released records without a privacy unit.
	unnamed int
	// buf holds the value being looked at.
	buf []byte
}

type tappedRecord struct {
	unit, record int32
	marks        []disputeRef
	id           string // the record's id when it is marked
}

// disputeRef is an open objection to a record.
type disputeRef struct {
	objection, field string
}

// disputedMark is one entry of an answer's "disputed": the released
// record under objection, by its position in items, and by its id when the
// caller receives the id in clear.
type disputedMark struct {
	Item      int    `json:"item"`
	RecordID  string `json:"record_id,omitempty"`
	Field     string `json:"field,omitempty"`
	Objection string `json:"objection"`
}

// newReleaseTap returns the tap of a release of ds under x's decision, and
// watches shape's records for it; nil when the dataset names neither a
// privacy unit nor an id field (there is nothing to learn).
func (s *Server) newReleaseTap(x *exchange, ds *dataset) *releaseTap {
	cfg := ds.cfg
	if cfg.PrivacyUnit == "" && cfg.IDField == "" {
		return nil
	}
	t := taps.Get().(*releaseTap)
	t.hasher, t.dataset, t.unit, t.id = s.hasher, ds.src.cfg.Name+"/"+cfg.Name, -1, -1
	var watch []string
	if cfg.PrivacyUnit != "" {
		t.unit, watch = len(watch), append(watch, cfg.PrivacyUnit)
	}
	if cfg.IDField != "" {
		if cfg.IDField == cfg.PrivacyUnit {
			t.id = t.unit
		} else {
			t.id, watch = len(watch), append(watch, cfg.IDField)
			t.hashRecords = true
		}
		t.disputed = s.grants.disputedIn(t.dataset)
		t.idInClear = x.decision.Plan.Releases(cfg.IDField)
	}
	x.shape.Watch, x.shape.Seen = watch, t.seen
	return t
}

// taps are release taps whose maps and slices a release may reuse.
var taps = sync.Pool{New: func() any {
	return &releaseTap{byUnit: map[string]int32{}, byRecord: map[string]int32{}}
}}

// maxPooledTap is the most records a tap may have seen and still be
// kept for another release: a rare huge one is left to the collector.
const maxPooledTap = 4096

// recycle returns t to the pool once its result was taken.
func (t *releaseTap) recycle() {
	if len(t.recs) > maxPooledTap {
		return
	}
	clear(t.byUnit)
	clear(t.byRecord)
	clear(t.units)
	clear(t.records)
	*t = releaseTap{byUnit: t.byUnit, byRecord: t.byRecord, units: t.units[:0], records: t.records[:0],
		recs: t.recs[:0], buf: t.buf[:0]}
	taps.Put(t)
}

// seen takes one released record's watched values.
func (t *releaseTap) seen(vals []anonymize.Value) {
	rec := tappedRecord{unit: -1, record: -1}
	var ok bool
	if t.unit >= 0 {
		if t.buf, ok = vals[t.unit].AppendText(t.buf[:0]); ok && len(t.buf) > 0 {
			rec.unit = t.intern(t.buf, &t.units, t.byUnit, t.hasher.Unit)
		} else {
			t.unnamed++
		}
	}
	if t.id >= 0 {
		if t.buf, ok = vals[t.id].AppendText(t.buf[:0]); ok && len(t.buf) > 0 {
			if t.hashRecords {
				rec.record = t.intern(t.buf, &t.records, t.byRecord, t.recordHash)
			}
			if marks := t.disputed[string(t.buf)]; len(marks) > 0 {
				rec.marks, rec.id = marks, string(t.buf)
			}
		}
	}
	t.recs = append(t.recs, rec)
}

func (t *releaseTap) recordHash(id string) string { return t.hasher.Record(t.dataset, id) }

// intern returns the position of value's hash in list, hashing it the
// first time it is seen.
func (t *releaseTap) intern(value []byte, list *[]string, pos map[string]int32, hash func(string) string) int32 {
	if i, ok := pos[string(value)]; ok {
		return i
	}
	key := string(value)
	i := int32(len(*list))
	*list = append(*list, hash(key))
	pos[key] = i
	return i
}

// result is what the release held, of the records kept says were
// released in the end (nil: all of them, in the order seen): the hashes
// for the audit record, and the marks for the answer.
func (t *releaseTap) result(kept []bool) (*audit.Released, []disputedMark, error) {
	if t.unnamed > 0 {
		// Whose record it is cannot be told, so no one could learn of
		// its release: it is not released.
		return nil, nil, errUpstreamInvalid(fmt.Errorf("%d released record(s) without their privacy unit", t.unnamed))
	}
	if kept != nil && len(kept) != len(t.recs) {
		// The filter after the transform saw other records than the
		// transform released: fail rather than misattribute.
		return nil, nil, fmt.Errorf("release tap: %d records kept or not, %d released", len(kept), len(t.recs))
	}
	rel := &audit.Released{}
	var marks []disputedMark
	usedUnit := make([]bool, len(t.units))
	usedRecord := make([]bool, len(t.records))
	item := 0
	for i, rec := range t.recs {
		if kept != nil && !kept[i] {
			continue
		}
		if rec.unit >= 0 && !usedUnit[rec.unit] {
			usedUnit[rec.unit] = true
			rel.Units = append(rel.Units, t.units[rec.unit])
		}
		if rec.record >= 0 && !usedRecord[rec.record] {
			usedRecord[rec.record] = true
			rel.Records = append(rel.Records, t.records[rec.record])
		}
		if len(rec.marks) > 0 {
			rel.Disputed++
			for _, m := range rec.marks {
				dm := disputedMark{Item: item, Field: m.field, Objection: m.objection}
				if t.idInClear {
					dm.RecordID = rec.id
				}
				marks = append(marks, dm)
			}
		}
		item++
	}
	if len(rel.Units) == 0 && len(rel.Records) == 0 && rel.Disputed == 0 {
		return nil, nil, nil
	}
	return rel, marks, nil
}

// appendDisputed appends the answer's "disputed" member, as the last
// member of the body's object.
func appendDisputed(dst []byte, marks []disputedMark) []byte {
	dst = append(dst, `,"disputed":[`...)
	for i, m := range marks {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"item":`...)
		dst = strconv.AppendInt(dst, int64(m.Item), 10)
		if m.RecordID != "" {
			dst = append(dst, `,"record_id":`...)
			dst = jsonstr.Append(dst, m.RecordID)
		}
		if m.Field != "" {
			dst = append(dst, `,"field":`...)
			dst = jsonstr.Append(dst, m.Field)
		}
		dst = append(dst, `,"objection":`...)
		dst = jsonstr.Append(dst, m.Objection)
		dst = append(dst, '}')
	}
	return append(dst, ']', '}')
}

// markDisputed writes marks into the spooled answer as its last member.
func markDisputed(sp *spool, marks []disputedMark) error {
	if len(marks) == 0 {
		return nil
	}
	if err := sp.reopenObject(); err != nil {
		return err
	}
	_, err := sp.Write(appendDisputed(nil, marks))
	return err
}

// trimmedClose is the length of b without the object's closing brace and
// any whitespace after it; -1 when b does not end an object.
func trimmedClose(b []byte) int {
	b = bytes.TrimRight(b, " \t\r\n")
	if len(b) == 0 || b[len(b)-1] != '}' {
		return -1
	}
	return len(b) - 1
}
