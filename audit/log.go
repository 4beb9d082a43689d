package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Append after Close, and by Err once Close began.
var ErrClosed = errors.New("audit: log closed")

// defaultMaxBatch bounds a group commit when Options.MaxBatch is zero.
const defaultMaxBatch = 512

// Options tune a Log. The zero value is ready to use.
type Options struct {
	// Now stamps events whose Time is zero. Defaults to time.Now.
	Now func() time.Time
	// MaxBatch caps the records written and fsync'd together in one group
	// commit. Defaults to 512.
	MaxBatch int
	// Logger receives tail repairs and write failures. It never receives
	// record contents. Defaults to slog.Default().
	Logger *slog.Logger
}

// Log is the durable, hash-chained audit trail of one gateway process. One
// writer goroutine owns the segment file; Append hands it records and waits
// for the fsync. A Log is safe for concurrent use. Only one Log may have a
// trail directory open at a time.
type Log struct {
	dir      string
	now      func() time.Time
	maxBatch int
	logger   *slog.Logger
	lock     *os.File // the locked trail directory, also used to fsync it

	mu       sync.Mutex
	wake     sync.Cond // on mu; signalled when queue grows or closed is set
	queue    []*request
	closed   bool
	err      error  // result of the last batch
	headSeq  uint64 // last durable record
	headHash string
	done     chan struct{} // closed when the writer has exited
	closeErr error         // set by the writer before done is closed

	// Owned by the writer goroutine (and by Open before it starts it).
	f     *os.File // nil after a failed batch until the next batch reopens it
	name  string   // file name of the segment being written
	size  int64    // bytes of f known to be durable
	seq   uint64   // chain head: last durable record's seq and hash
	hash  [sha256.Size]byte
	buf   []byte
	batch []*request

	syncs atomic.Uint64 // fsyncs of batches; tests observe group commit
}

// request is one Append waiting for the writer. Requests are pooled; one
// abandoned by a cancelled context is left to the garbage collector, since
// the writer may still hold it.
type request struct {
	ev   Event
	buf  bytes.Buffer
	enc  *json.Encoder
	rest []byte // ev's JSON after zeroPrefix
	seq  uint64 // set by the writer before done is sent
	prev [sha256.Size]byte
	done chan error
}

var requests = sync.Pool{New: func() any {
	r := &request{done: make(chan error, 1)}
	r.enc = json.NewEncoder(&r.buf)
	return r
}}

// encode encodes e with Seq and Prev zeroed, leaving the bytes the writer
// needs in r.rest.
func (r *request) encode(e *Event) error {
	r.ev = *e
	r.ev.Seq, r.ev.Prev = 0, ""
	r.buf.Reset()
	err := r.enc.Encode(&r.ev)
	r.ev = Event{} // keep no references to the caller's maps and slices
	if err != nil {
		return fmt.Errorf("audit: encode event: %w", err)
	}
	b := bytes.TrimSuffix(r.buf.Bytes(), []byte("\n"))
	rest, ok := bytes.CutPrefix(b, []byte(zeroPrefix))
	if !ok || !bytes.HasSuffix(rest, []byte("}")) {
		return errors.New("audit: encode event: unexpected encoding")
	}
	// The chain adds at most 20 digits of seq and 64 of prev.
	if len(b)+20+2*sha256.Size+suffixLen > maxRecord {
		return fmt.Errorf("audit: encode event: record of %d bytes exceeds %d", len(b), maxRecord)
	}
	r.rest = rest
	return nil
}

func putRequest(r *request) {
	if r.buf.Cap() > 64<<10 {
		return // do not pin a rare huge event's buffer
	}
	r.rest = nil
	requests.Put(r)
}

// Open opens the trail in dir for appending, creating dir (0700) and the
// first segment (0600) when needed, and recovers the chain head from the
// last record of the last non-empty segment. A torn final record — one
// without its newline, or a last line that is not a record at all, as a
// crash mid-write leaves — is cut off and logged. Anything else wrong at the
// tail, such as a final record whose hash does not match, is not repaired:
// Open fails, names the record and leaves the trail as it is for an auditor.
// Open reads only the tail; checking the whole trail is Verify's job. It
// refuses segments that are not regular files, and a trail another Log has
// open.
func Open(dir string, opts Options) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create %s: %w", dir, err)
	}
	l := &Log{
		dir:      dir,
		now:      opts.Now,
		maxBatch: opts.MaxBatch,
		logger:   opts.Logger,
		done:     make(chan struct{}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.maxBatch <= 0 {
		l.maxBatch = defaultMaxBatch
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	l.wake.L = &l.mu
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l.lock = lock
	if err := l.openSegment(); err != nil {
		lock.Close()
		return nil, err
	}
	l.headSeq, l.headHash = l.seq, hashString(l.seq, &l.hash)
	go l.run()
	return l, nil
}

// Append writes e to the trail and returns nil once the record is durable
// (written and fsync'd). It sets e.Seq and e.Prev, and e.Time when it was
// zero; Time is stored in UTC. Any error means the record is not known to be
// durable, and the caller must release nothing. If ctx ends first, Append
// returns ctx.Err(); the record may still be written later.
func (l *Log) Append(ctx context.Context, e *Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	r := requests.Get().(*request)
	if err := r.encode(e); err != nil {
		putRequest(r)
		return err
	}

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		putRequest(r)
		return ErrClosed
	}
	l.queue = append(l.queue, r)
	l.wake.Signal()
	l.mu.Unlock()

	select {
	case err := <-r.done:
		if err == nil {
			e.Seq, e.Prev = r.seq, hashString(r.seq-1, &r.prev)
		}
		putRequest(r)
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err returns nil while the log is healthy, the error of the last batch when
// it failed, and ErrClosed once Close began. A transient failure clears with
// the next successful batch.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.err
}

// Head returns the seq and hex hash of the last durable record, or 0 and ""
// for an empty trail.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.headSeq, l.headHash
}

// Close makes every record queued so far durable, then fsyncs and closes the
// segment. It returns an error when the last batch failed or the final sync
// or close did. Appends after Close fail with ErrClosed. Calling Close again
// returns nil.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	l.wake.Signal()
	l.mu.Unlock()
	<-l.done
	return l.closeErr
}

// run is the writer goroutine: it group-commits queued records until the
// log is closed and drained.
func (l *Log) run() {
	defer close(l.done)
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && !l.closed {
			l.wake.Wait()
		}
		if len(l.queue) == 0 {
			last := l.err
			l.mu.Unlock()
			l.closeErr = errors.Join(last, l.shutdown())
			return
		}
		n := min(len(l.queue), l.maxBatch)
		batch := append(l.batch[:0], l.queue[:n]...)
		left := copy(l.queue, l.queue[n:])
		clear(l.queue[left:])
		l.queue = l.queue[:left]
		l.mu.Unlock()

		err := l.commit(batch)
		l.mu.Lock()
		l.err = err
		if err == nil {
			l.headSeq, l.headHash = l.seq, hashString(l.seq, &l.hash)
		}
		l.mu.Unlock()
		for _, r := range batch {
			r.done <- err
		}
		clear(batch)
		l.batch = batch
	}
}

// commit chains batch onto the head, writes it with one write and makes it
// durable with one fsync. On failure it cuts the segment back to its last
// durable size and closes it, so that no record of the batch stays behind
// and the next batch starts from a re-read tail.
func (l *Log) commit(batch []*request) error {
	if l.f == nil {
		if err := l.reopen(); err != nil {
			return err
		}
	}
	seq, hash := l.seq, l.hash
	buf := l.buf[:0]
	for _, r := range batch {
		seq++
		r.seq, r.prev = seq, hash
		buf, hash = appendRecord(buf, seq, &r.prev, r.rest)
	}
	_, err := l.f.Write(buf)
	if err == nil {
		err = l.f.Sync()
		l.syncs.Add(1)
	}
	if cap(buf) <= 4<<20 {
		l.buf = buf[:0]
	} else {
		l.buf = nil
	}
	if err != nil {
		err = fmt.Errorf("audit: write %s: %w", l.name, err)
		l.logger.Error("audit: batch not durable; cutting it back", "segment", l.name, "records", len(batch), "err", err)
		l.cutBack()
		return err
	}
	l.size += int64(len(buf))
	l.seq, l.hash = seq, hash
	return nil
}

// cutBack truncates the segment to its last durable size and closes it.
func (l *Log) cutBack() {
	err := l.f.Truncate(l.size)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		// The next batch re-reads the tail and repairs or refuses it.
		l.logger.Error("audit: cannot cut back failed batch", "segment", l.name, "err", err)
	}
	l.f.Close()
	l.f = nil
}

// reopen opens the segment again after a failed batch and checks that its
// tail still ends at the head the log kept.
func (l *Log) reopen() error {
	seq, hash := l.seq, l.hash
	if err := l.openSegment(); err != nil {
		return err
	}
	switch {
	case l.seq == seq && l.hash == hash:
		return nil
	case l.seq > seq:
		// A failed batch could not be cut back but reached the disk whole:
		// its records are chained and merely over-report.
		l.logger.Warn("audit: records of a failed batch stayed in the trail", "segment", l.name, "from_seq", seq+1, "to_seq", l.seq)
		return nil
	}
	// Durable records vanished or changed under the log: writing on would
	// hide that, so keep failing until an auditor has looked.
	err := fmt.Errorf("audit: trail %s changed under the log: its tail is at seq %d, the log wrote up to seq %d", l.dir, l.seq, seq)
	l.f.Close()
	l.f = nil
	l.seq, l.hash = seq, hash
	l.logger.Error("audit: refusing to write", "err", err)
	return err
}

// shutdown fsyncs and closes the segment and releases the trail.
func (l *Log) shutdown() error {
	var err error
	if l.f != nil {
		if serr := l.f.Sync(); serr != nil {
			err = fmt.Errorf("audit: sync %s: %w", l.name, serr)
		}
		if cerr := l.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("audit: close %s: %w", l.name, cerr)
		}
		l.f = nil
	}
	l.lock.Close()
	return err
}

// openSegment opens the last segment for appending (creating the first one
// in an empty trail), repairs a torn final record, and sets the chain head
// from the trail's tail.
func (l *Log) openSegment() error {
	segs, err := listSegments(l.dir)
	if err != nil {
		return fmt.Errorf("audit: list %s: %w", l.dir, err)
	}
	for _, s := range segs {
		if !s.regular {
			return fmt.Errorf("audit: segment %s in %s is not a regular file", s.name, l.dir)
		}
	}
	if len(segs) == 0 {
		name := segmentName(1)
		f, err := os.OpenFile(filepath.Join(l.dir, name), os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
		if err != nil {
			return fmt.Errorf("audit: create segment: %w", err)
		}
		// The new name must be durable before any record in it is.
		if err := l.lock.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("audit: sync %s: %w", l.dir, err)
		}
		l.f, l.name, l.size, l.seq, l.hash = f, name, 0, 0, [sha256.Size]byte{}
		return nil
	}

	last := segs[len(segs)-1]
	f, size, err := openSegmentFile(l.dir, last.name, os.O_RDWR|os.O_APPEND)
	if err != nil {
		return err
	}
	size, rec, ok, err := readTail(f, last.name, size, true, l.logger)
	// A freshly rotated segment is empty: the head is in an earlier one.
	for i := len(segs) - 2; err == nil && !ok && i >= 0; i-- {
		rec, ok, err = earlierTail(l.dir, segs[i].name)
	}
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.name, l.size, l.seq, l.hash = f, last.name, size, rec.seq, rec.hash
	return nil
}

// openSegmentFile opens a segment, refusing anything but a regular file.
func openSegmentFile(dir, name string, flag int) (*os.File, int64, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), flag|oNoFollow, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: open segment: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("audit: stat segment: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("audit: segment %s in %s is not a regular file", name, dir)
	}
	return f, fi.Size(), nil
}

// earlierTail returns the last record of a segment before the last one,
// which must end in a complete, valid record when it is not empty.
func earlierTail(dir, name string) (record, bool, error) {
	f, size, err := openSegmentFile(dir, name, os.O_RDONLY)
	if err != nil {
		return record{}, false, err
	}
	defer f.Close()
	_, rec, ok, err := readTail(f, name, size, false, nil)
	return rec, ok, err
}

// readTail returns the last record of segment f, which is size bytes long,
// and false when the segment is empty. With repair it cuts off a torn final
// record — one without its newline, or a last line that is not a record at
// all — logs that, and returns the new size. It repairs one line only:
// whatever is wrong before that is an error naming the line, and the segment
// is left untouched for an auditor.
func readTail(f *os.File, name string, size int64, repair bool, logger *slog.Logger) (int64, record, bool, error) {
	var (
		p     parser
		rec   record
		found bool
		end   = size // where the segment will end once a torn record is cut
		cut   error  // why the bytes from end to size are cut, nil for none
	)
	for end > 0 {
		start, r, bad, err := lastLine(f, end, &p)
		if err != nil {
			return 0, record{}, false, fmt.Errorf("audit: read %s: %w", name, err)
		}
		if bad == nil {
			rec, found = r, true
			break
		}
		var torn malformedError
		if !repair || cut != nil || !errors.As(bad, &torn) {
			n, err := countLines(f, start)
			if err != nil {
				return 0, record{}, false, fmt.Errorf("audit: read %s: %w", name, err)
			}
			return 0, record{}, false, fmt.Errorf("audit: segment %s line %d: %w (only a torn final record is repaired: verify the trail)", name, n+1, bad)
		}
		end, cut = start, bad
	}
	if cut != nil {
		if err := f.Truncate(end); err != nil {
			return 0, record{}, false, fmt.Errorf("audit: cut torn record off %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			return 0, record{}, false, fmt.Errorf("audit: sync %s: %w", name, err)
		}
		logger.Warn("audit: cut off torn final record", "segment", name, "offset", end, "bytes", size-end, "reason", cut.Error())
	}
	return end, rec, found, nil
}

// lastLine parses the last line of the first end bytes of f. It returns
// where the line starts and either its record or why it is not one (bad);
// err is for I/O errors.
func lastLine(f *os.File, end int64, p *parser) (start int64, rec record, bad, err error) {
	var last [1]byte
	if _, err := f.ReadAt(last[:], end-1); err != nil {
		return 0, record{}, nil, err
	}
	if last[0] != '\n' {
		start, err := lineStart(f, end)
		return start, record{}, malformedError("no newline at the end of the segment"), err
	}
	start, err = lineStart(f, end-1)
	if err != nil {
		return 0, record{}, nil, err
	}
	if end-1-start > maxRecord {
		return start, record{}, malformedError("line too long"), nil
	}
	line := make([]byte, end-1-start)
	if _, err := f.ReadAt(line, start); err != nil {
		return 0, record{}, nil, err
	}
	rec, bad = p.parse(line)
	return start, rec, bad, nil
}

// lineStart returns the offset just after the last '\n' before end, or 0.
func lineStart(f *os.File, end int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end > 0 {
		n := min(int64(len(buf)), end)
		b := buf[:n]
		if _, err := f.ReadAt(b, end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// countLines counts the '\n' bytes before offset end.
func countLines(f *os.File, end int64) (int, error) {
	n := 0
	buf := make([]byte, 64<<10)
	r := io.NewSectionReader(f, 0, end)
	for {
		m, err := r.Read(buf)
		n += bytes.Count(buf[:m], []byte{'\n'})
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// hashString returns the hex form of hash, or "" when seq is 0: the record
// before the first one has no hash.
func hashString(seq uint64, hash *[sha256.Size]byte) string {
	if seq == 0 {
		return ""
	}
	return hex.EncodeToString(hash[:])
}
