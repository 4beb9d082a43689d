package gateway

// Whose records a record release held, and which of them are disputed.
// The transform hands every released record's privacy unit and id, as
// the department sent them, to a releaseTap (anonymize.Shape.Watch); the
// tap keeps their keyed hashes for the outcome record (audit.Released),
// which the usage index is built from, and marks the records under an
// open objection, which the answer lists beside its items.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
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
	// byUnit and byRecord find a value's position among them. Once the
	// tap spills they are a cache, emptied when it holds maxHeld.
	units, records   []string
	byUnit, byRecord map[string]int32
	// recs are the released records, in order: the positions of their
	// unit and record hashes (-1 for none); empty once the tap spills.
	recs []tappedRecord
	// marked are the released records under objection, in order.
	marked []markedRecord
	// seen counts the released records; unnamed those without a privacy
	// unit.
	seen, unnamed int

	// A release of more than maxHeld records spills: every record's
	// names go, fixed-width, to spill (in memory up to spillLimit bytes,
	// then an unlinked file), so that what the tap holds is bounded
	// however many records the release holds (invariant 6).
	maxHeld    int
	spill      *spool
	spillW     *bufio.Writer // spill's writes, 64 KiB at a time
	spillLimit int
	spillDir   string
	err        error // a failed spill write

	// buf holds the value being looked at, entry the spill entry written.
	buf, entry []byte
}

type tappedRecord struct{ unit, record int32 }

// markedRecord is a released record under objection: its position among
// the records the transform released, its marks and its id.
type markedRecord struct {
	pos   int
	marks []disputeRef
	id    string
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
	// Held, a release's names go into its outcome record whole: at most
	// two per record.
	t.maxHeld = min(maxHeldRecords, audit.MaxNames/2)
	t.spillLimit, t.spillDir = int(s.cfg.Limits.SpoolMemoryBytes), s.cfg.Limits.SpoolDir
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
	x.shape.Watch, x.shape.Seen = watch, t.see
	return t
}

// taps are release taps whose maps and slices a release may reuse.
var taps = sync.Pool{New: func() any {
	return &releaseTap{byUnit: map[string]int32{}, byRecord: map[string]int32{}}
}}

// maxHeldRecords is the most records a tap holds the names of in memory;
// a release of more spills them. It is also the most a tap may have seen
// and still be kept for another release.
const maxHeldRecords = 4096

// recycle frees t's spill and returns t to the pool once its result was
// taken.
func (t *releaseTap) recycle() {
	if t.spill != nil {
		t.spill.Close()
		return // a rare huge release: left to the collector
	}
	clear(t.byUnit)
	clear(t.byRecord)
	clear(t.units)
	clear(t.records)
	clear(t.marked)
	*t = releaseTap{byUnit: t.byUnit, byRecord: t.byRecord, units: t.units[:0], records: t.records[:0],
		recs: t.recs[:0], marked: t.marked[:0], buf: t.buf[:0], entry: t.entry[:0]}
	taps.Put(t)
}

// see takes one released record's watched values.
func (t *releaseTap) see(vals []anonymize.Value) {
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
				t.marked = append(t.marked, markedRecord{pos: t.seen, marks: marks, id: string(t.buf)})
			}
		}
	}
	t.seen++
	if t.spill == nil {
		if t.recs = append(t.recs, rec); len(t.recs) > t.maxHeld {
			t.startSpill()
		}
		return
	}
	t.spillRecord(rec)
	// The hashes are a cache now: bounded.
	if len(t.units) >= t.maxHeld || len(t.records) >= t.maxHeld {
		t.units, t.records = t.units[:0], t.records[:0]
		clear(t.byUnit)
		clear(t.byRecord)
	}
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

// Spill entries: a byte saying which names follow, then each name's
// shortHash bytes.
const (
	shortHash     = 22 // the length of audit.Hasher's short hashes
	spilledUnit   = 1
	spilledRecord = 2
	spillEntry    = 1 + 2*shortHash
)

// startSpill moves the names of the records held so far to the spill.
func (t *releaseTap) startSpill() {
	t.spill = newSpool(t.spillLimit, t.spillDir)
	// An entry a write would be a system call each once the spill is a
	// file: a quarter of a large release's time.
	t.spillW = bufio.NewWriterSize(t.spill, 64<<10)
	for _, rec := range t.recs {
		t.spillRecord(rec)
	}
	t.recs = nil
	t.units, t.records = t.units[:0], t.records[:0]
	clear(t.byUnit)
	clear(t.byRecord)
}

// spillRecord writes rec's names to the spill.
func (t *releaseTap) spillRecord(rec tappedRecord) {
	if t.err != nil {
		return
	}
	e := append(t.entry[:0], 0)
	for _, n := range [...]struct {
		pos  int32
		list []string
		flag byte
	}{{rec.unit, t.units, spilledUnit}, {rec.record, t.records, spilledRecord}} {
		if n.pos < 0 {
			e = append(e, make([]byte, shortHash)...)
			continue
		}
		if h := n.list[n.pos]; len(h) == shortHash {
			e[0] |= n.flag
			e = append(e, h...)
		} else {
			t.err = fmt.Errorf("release tap: a hash of %d bytes, want %d", len(h), shortHash)
			return
		}
	}
	t.entry = e
	if _, err := t.spillW.Write(e); err != nil {
		t.err = fmt.Errorf("release tap: spilling names: %w", err)
	}
}

// result is what the release held, of the records kept says were
// released in the end (nil: all of them, in the order seen): the hashes
// for the audit record, and the marks for the answer. A release naming
// more than audit.MaxNames people and records hands all but the last of
// them to names, audit.MaxNames at a time, in names records' Released
// (numbered from 1); the result counts them in Parts.
func (t *releaseTap) result(kept []bool, names func(*audit.Released) error) (*audit.Released, []disputedMark, error) {
	switch {
	case t.unnamed > 0:
		// Whose record it is cannot be told, so no one could learn of
		// its release: it is not released.
		return nil, nil, errUpstreamInvalid(fmt.Errorf("%d released record(s) without their privacy unit", t.unnamed))
	case kept != nil && len(kept) != t.seen:
		// The filter after the transform saw other records than the
		// transform released: fail rather than misattribute.
		return nil, nil, fmt.Errorf("release tap: %d records kept or not, %d released", len(kept), t.seen)
	case t.err != nil:
		return nil, nil, t.err
	}
	rel := &audit.Released{}
	// item is the position among the released records of the record at
	// pos, when it was kept; marks are the answer's.
	var marks []disputedMark
	next := t.marked
	item := 0
	mark := func(pos int) {
		if len(next) == 0 || next[0].pos != pos {
			return
		}
		m := next[0]
		next = next[1:]
		rel.Disputed++
		for _, ref := range m.marks {
			dm := disputedMark{Item: item, Field: ref.field, Objection: ref.objection}
			if t.idInClear {
				dm.RecordID = m.id
			}
			marks = append(marks, dm)
		}
	}
	if t.spill == nil {
		usedUnit := make([]bool, len(t.units))
		usedRecord := make([]bool, len(t.records))
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
			mark(i)
			item++
		}
	} else if err := t.spilled(kept, rel, names, func(pos int) { mark(pos); item++ }); err != nil {
		return nil, nil, err
	}
	if len(rel.Units) == 0 && len(rel.Records) == 0 && rel.Disputed == 0 && rel.Parts == 0 {
		return nil, nil, nil
	}
	return rel, marks, nil
}

// spilled reads the spill into rel, each name once, and hands rel to
// names, as a names record's, whenever it holds audit.MaxNames; released
// is told of each kept record's position.
func (t *releaseTap) spilled(kept []bool, rel *audit.Released, names func(*audit.Released) error, released func(int)) error {
	if err := t.spillW.Flush(); err != nil {
		return fmt.Errorf("release tap: spilling names: %w", err)
	}
	if err := t.spill.rewind(); err != nil {
		return err
	}
	r := bufio.NewReaderSize(t.spill, 64<<10)
	// The names in rel, each once.
	units, records := map[string]struct{}{}, map[string]struct{}{}
	add := func(list *[]string, in map[string]struct{}, h []byte) {
		if _, ok := in[string(h)]; !ok {
			s := string(h)
			in[s] = struct{}{}
			*list = append(*list, s)
		}
	}
	e := make([]byte, spillEntry)
	for pos := range t.seen {
		if _, err := io.ReadFull(r, e); err != nil {
			return fmt.Errorf("release tap: reading spilled names: %w", err)
		}
		if kept != nil && !kept[pos] {
			continue
		}
		if e[0]&spilledUnit != 0 {
			add(&rel.Units, units, e[1:1+shortHash])
		}
		if e[0]&spilledRecord != 0 {
			add(&rel.Records, records, e[1+shortHash:])
		}
		released(pos)
		if len(rel.Units)+len(rel.Records) >= audit.MaxNames {
			part := &audit.Released{Units: rel.Units, Records: rel.Records, Part: rel.Parts + 1}
			if err := names(part); err != nil {
				return err
			}
			rel.Units, rel.Records, rel.Parts = nil, nil, part.Part
			clear(units)
			clear(records)
		}
	}
	return nil
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
