package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Query selects audit records. Every condition set must hold; the zero
// Query selects every record. String values are compared exactly with what
// the trail holds: Subject is the caller's subject id as the token gave it
// (the trail keeps it in clear, being who asked, not whom the data is
// about); query values and identifiers in paths are keyed hashes and are not
// searchable here.
type Query struct {
	// Subject is the caller's subject id.
	Subject string
	// Source is the department; Dataset, which needs Source, the dataset.
	Source  string
	Dataset string
	// Action is read, stats, catalog, ...
	Action string
	// Decision is allow, deny or error.
	Decision string
	// Status is the HTTP status answered; 0 for any.
	Status int
	// RequestID is the X-Request-Id of one request.
	RequestID string
	// Object is a hub object's id: the records of actions on it (a
	// request's transitions, a grant's) and of releases made under it
	// (a grant's).
	Object string
	// Since and Until bound the event time: Since <= Time < Until. Either
	// may be zero.
	Since, Until time.Time
	// Newest returns the newest records first; the default is trail order,
	// oldest first.
	Newest bool
	// Limit caps the records returned: for Search, a page (default
	// DefaultPageSize, at most MaxPageSize); for Scan, all of them (0 for
	// no cap).
	Limit int
	// Cursor continues a search where the Page with this Next ended. It is
	// opaque, and valid for the same Newest.
	Cursor string
}

// Page sizes for Search.
const (
	DefaultPageSize = 100
	MaxPageSize     = 10000
)

// Record is one audit record as stored: the event and the record's hash.
// It encodes to JSON as the trail's line does.
type Record struct {
	Event
	// Hash is the record's SHA-256 hash, the next record's Prev.
	Hash string `json:"hash"`
}

// Page is one page of search results.
type Page struct {
	// Records are the matching records, in the query's order.
	Records []Record `json:"records"`
	// Next continues the search after the last record, as Query.Cursor;
	// "" when the trail was searched to its end. A full page always has a
	// Next, which may lead to an empty page.
	Next string `json:"next,omitempty"`
}

// ErrBadCursor says a Query.Cursor is not one Search returned for this
// trail and order.
var ErrBadCursor = errors.New("audit: bad cursor")

// Search returns one page of the records in the trail in dir that match q.
// It streams segments, skips those whose checkpointed time span lies
// outside q's time range, and decodes only the records that match. It reads
// a trail being written as far as it is durable, and does not verify it:
// that is Verify's job.
func Search(ctx context.Context, dir string, q Query) (*Page, error) {
	switch {
	case q.Limit == 0:
		q.Limit = DefaultPageSize
	case q.Limit > MaxPageSize:
		q.Limit = MaxPageSize
	}
	page := &Page{Records: []Record{}}
	var last position
	_, err := scanTrail(ctx, dir, &q, func(line []byte, pos position) (bool, error) {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return false, fmt.Errorf("audit: decode record at %s byte %d: %w", segmentName(pos.seg), pos.start, err)
		}
		page.Records = append(page.Records, r)
		last = pos
		return len(page.Records) < q.Limit, nil
	})
	if err != nil {
		return nil, err
	}
	if len(page.Records) == q.Limit {
		page.Next = last.cursor(q.Newest)
	}
	return page, nil
}

// Scan yields the records in the trail in dir that match q, in q's order,
// up to q.Limit when it is not 0, decoding each as it goes; see Search. An
// error ends the sequence.
func Scan(ctx context.Context, dir string, q Query) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		n := 0
		_, err := scanTrail(ctx, dir, &q, func(line []byte, pos position) (bool, error) {
			var r Record
			if err := json.Unmarshal(line, &r); err != nil {
				return false, fmt.Errorf("audit: decode record at %s byte %d: %w", segmentName(pos.seg), pos.start, err)
			}
			n++
			if !yield(&r, nil) {
				return false, errStop
			}
			return q.Limit == 0 || n < q.Limit, nil
		})
		if err != nil && err != errStop {
			yield(nil, err)
		}
	}
}

// ScanRaw is Scan without decoding: it yields each matching record's line
// as stored, without its newline — the JSON a Record encodes to. The slice
// is valid only until the next iteration. It is the fast way to export
// records: decoding costs far more than finding them.
func ScanRaw(ctx context.Context, dir string, q Query) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		n := 0
		_, err := scanTrail(ctx, dir, &q, func(line []byte, pos position) (bool, error) {
			n++
			if !yield(line, nil) {
				return false, errStop
			}
			return q.Limit == 0 || n < q.Limit, nil
		})
		if err != nil && err != errStop {
			yield(nil, err)
		}
	}
}

// errStop ends a scan whose consumer stopped.
var errStop = errors.New("stop")

// position is where a record line is in the trail.
type position struct {
	seg        int   // segment number
	start, end int64 // the line's bytes, '\n' included
	seq        uint64
}

// cursor encodes where a search continues after pos: forward from its end,
// or backward from its start.
func (p position) cursor(newest bool) string {
	if newest {
		return fmt.Sprintf("n%d.%d.%d", p.seg, p.start, p.seq)
	}
	return fmt.Sprintf("o%d.%d.%d", p.seg, p.end, p.seq)
}

// parseCursor decodes a cursor made for the given order.
func parseCursor(s string, newest bool) (position, error) {
	var p position
	want := byte('o')
	if newest {
		want = 'n'
	}
	if len(s) < 2 || s[0] != want {
		return p, ErrBadCursor
	}
	parts := strings.Split(s[1:], ".")
	if len(parts) != 3 {
		return p, ErrBadCursor
	}
	seg, err1 := strconv.Atoi(parts[0])
	off, err2 := strconv.ParseInt(parts[1], 10, 64)
	seq, err3 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || seg <= 0 || off < 0 {
		return p, ErrBadCursor
	}
	p.seg, p.seq = seg, seq
	if newest {
		p.start = off
	} else {
		p.end = off
	}
	return p, nil
}

// scanTrail calls fn with each complete record line that matches q, and
// its position, in q's order, until fn returns false or an error. The line
// is valid only during the call. It returns how many lines it read.
func scanTrail(ctx context.Context, dir string, q *Query, fn func(line []byte, pos position) (bool, error)) (int, error) {
	m, err := newMatcher(q)
	if err != nil {
		return 0, err
	}
	segs, err := listSegments(dir)
	if err != nil {
		return 0, fmt.Errorf("audit: search %s: %w", dir, err)
	}
	var from *position
	if q.Cursor != "" {
		p, err := parseCursor(q.Cursor, q.Newest)
		if err != nil {
			return 0, err
		}
		from = &p
	}
	var spans map[string]segmentSpan
	if !q.Since.IsZero() || !q.Until.IsZero() {
		spans = readSpans(dir)
	}
	s := &trailScanner{ctx: ctx, dir: dir, m: m, fn: fn, spans: spans}
	if q.Newest {
		for i := len(segs) - 1; i >= 0; i-- {
			if from != nil && segs[i].num > from.seg {
				continue
			}
			more, err := s.backward(segs[i], from)
			if !more || err != nil {
				return s.lines, err
			}
			from = nil
		}
		return s.lines, nil
	}
	s.r = bufio.NewReaderSize(nil, 1<<20)
	for _, seg := range segs {
		if from != nil && seg.num < from.seg {
			continue
		}
		more, err := s.forward(seg, from)
		if !more || err != nil {
			return s.lines, err
		}
		from = nil
	}
	return s.lines, nil
}

// trailScanner reads segments for scanTrail.
type trailScanner struct {
	ctx   context.Context
	dir   string
	m     *matcher
	fn    func([]byte, position) (bool, error)
	spans map[string]segmentSpan
	r     *bufio.Reader
	lines int
}

// open opens a segment, or returns nil when it can be skipped: its
// checkpointed time span is outside the query's.
func (s *trailScanner) open(seg segment) (*os.File, int64, error) {
	if !seg.regular {
		return nil, 0, fmt.Errorf("audit: search: segment %s is not a regular file", seg.name)
	}
	f, size, err := openSegmentFile(s.dir, seg.name, os.O_RDONLY)
	if err != nil {
		return nil, 0, err
	}
	if sp, ok := s.spans[seg.name]; ok && sp.size == size {
		if (!s.m.since.IsZero() && sp.max.Before(s.m.since)) || (!s.m.until.IsZero() && !sp.min.Before(s.m.until)) {
			f.Close()
			return nil, 0, nil
		}
	}
	return f, size, nil
}

// forward scans one segment in order, from the cursor when it is in it.
func (s *trailScanner) forward(seg segment, from *position) (bool, error) {
	f, size, err := s.open(seg)
	if f == nil || err != nil {
		return true, err
	}
	defer f.Close()
	var off int64
	var after uint64
	if from != nil && from.seg == seg.num {
		if off, err = checkBoundary(f, size, from.end); err != nil {
			return false, err
		}
		after = from.seq
	}
	s.r.Reset(io.NewSectionReader(f, off, size-off))
	lr := lineReader{r: s.r}
	for {
		line, complete, err := lr.next()
		if err == io.EOF || (err == nil && !complete) {
			// An incomplete final line is a record being written.
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("audit: read %s: %w", seg.name, err)
		}
		pos := position{seg: seg.num, start: off, end: off + int64(len(line)) + 1}
		off = pos.end
		if more, err := s.visit(line, pos, after, false); !more || err != nil {
			return more, err
		}
	}
}

// backward scans one segment newest first, from the cursor when it is in
// it.
func (s *trailScanner) backward(seg segment, from *position) (bool, error) {
	f, size, err := s.open(seg)
	if f == nil || err != nil {
		return true, err
	}
	defer f.Close()
	end := size
	before := uint64(0)
	if from != nil && from.seg == seg.num {
		if end, err = checkBoundary(f, size, from.start); err != nil {
			return false, err
		}
		before = from.seq
	}
	br, err := newBackReader(f, end)
	if err != nil {
		return false, fmt.Errorf("audit: read %s: %w", seg.name, err)
	}
	for {
		line, start, err := br.prev()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("audit: read %s: %w", seg.name, err)
		}
		pos := position{seg: seg.num, start: start, end: start + int64(len(line)) + 1}
		if more, err := s.visit(line, pos, before, true); !more || err != nil {
			return more, err
		}
	}
}

// visit hands a matching line to fn. A record on the cursor's side of
// bound (seq <= bound forward, >= backward) was returned already.
func (s *trailScanner) visit(line []byte, pos position, bound uint64, newest bool) (bool, error) {
	s.lines++
	if s.lines%4096 == 0 {
		if err := s.ctx.Err(); err != nil {
			return false, err
		}
	}
	if !s.m.match(line) {
		return true, nil
	}
	pos.seq = lineSeq(line)
	if bound != 0 && (!newest && pos.seq <= bound || newest && pos.seq >= bound) {
		return true, nil
	}
	return s.fn(line, pos)
}

// checkBoundary checks that off is a line boundary of f.
func checkBoundary(f *os.File, size, off int64) (int64, error) {
	if off > size {
		return 0, ErrBadCursor
	}
	if off > 0 {
		var b [1]byte
		if _, err := f.ReadAt(b[:], off-1); err != nil || b[0] != '\n' {
			return 0, ErrBadCursor
		}
	}
	return off, nil
}

// lineSeq reads a record's seq from its fixed prefix, 0 if there is none.
func lineSeq(line []byte) uint64 {
	b, ok := bytes.CutPrefix(line, []byte(`{"seq":`))
	if !ok {
		return 0
	}
	var n uint64
	for i := 0; i < len(b) && i < 20 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + uint64(b[i]-'0')
	}
	return n
}

// backReader reads a file's lines from the end.
type backReader struct {
	f   *os.File
	pos int64  // file offset of buf[0]
	buf []byte // unread bytes: at most one partial line, then whole lines
}

// newBackReader reads the lines that end before end, dropping an incomplete
// line at the very end (a record being written).
func newBackReader(f *os.File, end int64) (*backReader, error) {
	if end > 0 {
		var b [1]byte
		if _, err := f.ReadAt(b[:], end-1); err != nil {
			return nil, err
		}
		if b[0] != '\n' {
			start, err := lineStart(f, end)
			if err != nil {
				return nil, err
			}
			end = start
		}
	}
	return &backReader{f: f, pos: end}, nil
}

// prev returns the line before those returned so far, without its '\n',
// and where it starts; io.EOF at the start of the file.
func (b *backReader) prev() ([]byte, int64, error) {
	const chunk = 256 << 10
	for {
		if len(b.buf) > 0 {
			if i := bytes.LastIndexByte(b.buf[:len(b.buf)-1], '\n'); i >= 0 {
				line := b.buf[i+1 : len(b.buf)-1]
				b.buf = b.buf[:i+1]
				return line, b.pos + int64(i) + 1, nil
			}
			if b.pos == 0 {
				line := b.buf[:len(b.buf)-1]
				b.buf = b.buf[:0]
				return line, 0, nil
			}
		} else if b.pos == 0 {
			return nil, 0, io.EOF
		}
		if len(b.buf) > maxRecord+chunk {
			return nil, 0, errors.New("line too long")
		}
		n := min(chunk, b.pos)
		nb := make([]byte, int(n)+len(b.buf))
		if _, err := b.f.ReadAt(nb[:n], b.pos-n); err != nil {
			return nil, 0, err
		}
		copy(nb[n:], b.buf)
		b.buf, b.pos = nb, b.pos-n
	}
}

// segmentSpan is what the last checkpoint in a segment says of it.
type segmentSpan struct {
	size     int64
	min, max time.Time
}

// readSpans reads, from checkpoints.jsonl, the time span of each segment's
// records as of its last checkpoint. It is an index, not evidence: a
// segment whose size differs from its last checkpoint's is read whole, and
// a checkpoints.jsonl that cannot be read just means no segment is skipped.
func readSpans(dir string) map[string]segmentSpan {
	f, err := os.OpenFile(filepath.Join(dir, checkpointFile), os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	spans := map[string]segmentSpan{}
	lr := lineReader{r: bufio.NewReaderSize(f, 64<<10)}
	for {
		line, complete, err := lr.next()
		if err != nil || !complete {
			return spans
		}
		c, err := parseCheckpoint(line)
		if err != nil || c.MinTime.IsZero() {
			continue
		}
		spans[c.Segment] = segmentSpan{size: c.Size, min: c.MinTime, max: c.MaxTime}
	}
}
