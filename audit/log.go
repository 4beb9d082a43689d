package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Append after Close, and by Err once Close began.
var ErrClosed = errors.New("audit: log closed")

// Defaults for Options left zero.
const (
	defaultMaxBatch           = 512
	defaultSegmentMaxBytes    = 128 << 20
	defaultCheckpointEvery    = 1000
	defaultCheckpointInterval = time.Minute
	defaultPreallocate        = 256 << 10
)

// zeros is what a Log writes ahead of its records (Options.Preallocate).
var zeros [64 << 10]byte

// witnessTimeout bounds one call to the witness, which may be remote.
const witnessTimeout = 5 * time.Second

// probeFile is written and removed by Probe; it is not a segment name.
const probeFile = ".probe"

// probeBytes is how much Probe writes: about a large batch, so that a disk
// that still takes a few bytes but not a batch does not pass.
const probeBytes = 64 << 10

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

	// SegmentMaxBytes starts a new segment before a batch would grow the
	// current one past this size (a single batch larger than it still goes
	// into one segment). Defaults to 128 MiB; negative never rotates by
	// size.
	SegmentMaxBytes int64
	// RotateDaily starts a new segment with the first batch written on a
	// new UTC day, by Now.
	RotateDaily bool
	// Preallocate is how many bytes of zeros the Log writes ahead of the
	// records of the segment it is writing, so that a group commit
	// overwrites blocks the file already holds: its sync then flushes data
	// alone, without a filesystem journal commit, which halves the cost
	// of a commit on ext4. The segment being written therefore ends in NUL
	// padding, which every reader of the trail skips and which rotation
	// and Close cut off. Defaults to 256 KiB; negative writes none, for a
	// live segment that tools which follow a growing file can read.
	Preallocate int64

	// CheckpointKey signs checkpoints (see [Checkpoint]). Without it the
	// Log makes none.
	CheckpointKey ed25519.PrivateKey
	// CheckpointEvery makes a checkpoint once this many records were
	// written since the last one. Defaults to 1000; negative disables it.
	CheckpointEvery int
	// CheckpointInterval makes a checkpoint this often when records were
	// written since the last one. Defaults to one minute; negative
	// disables it. Checkpoints are also made before a segment is rotated
	// away and on Close.
	CheckpointInterval time.Duration
	// Witness, when set with CheckpointKey, receives every checkpoint, and
	// Open refuses a trail whose checkpoints are behind it.
	Witness Witness

	// OnCommit, when set, is called after each group commit with the
	// number of records in it, how long the write and fsync took, and the
	// error, if any. It runs on the writer: it must be quick (a metric).
	OnCommit func(records int, took time.Duration, err error)
	// OnDurable, when set, is called with each record's line (its JSON
	// and the newline, exactly as the trail holds it) once the record is
	// durable, in order. It runs on the writer before the record's Append
	// returns: it must not block (hand the line to a bounded queue). line
	// is valid only during the call.
	OnDurable func(seq uint64, line []byte)
}

// Log is the durable, hash-chained audit trail of one gateway process. One
// writer goroutine owns the segment file; Append hands it records and waits
// for the fsync. A Log is safe for concurrent use. Only one Log may have a
// trail directory open at a time.
type Log struct {
	dir       string
	now       func() time.Time
	maxBatch  int
	logger    *slog.Logger
	lock      *os.File // the locked trail directory, also used to fsync it
	maxBytes  int64    // rotate before a segment grows past this; <= 0 never
	pad       int64    // zeros written ahead of the records; <= 0 none
	daily     bool
	key       ed25519.PrivateKey // nil: no checkpoints
	every     uint64             // checkpoint after this many records; 0 never
	interval  time.Duration      // checkpoint this often; <= 0 never
	witness   Witness
	onCommit  func(records int, took time.Duration, err error)
	onDurable func(seq uint64, line []byte)

	mu    sync.Mutex
	wake  sync.Cond // on mu; signalled when queue, probes, cpDue, lazyDue or closed change
	queue []*request
	// waiting counts the queued requests someone waits for. Queued
	// records nobody waits for (Queue's) do not start a commit by
	// themselves: they ride with the next one, or go once lazyDue is set,
	// lazyDelay after the first of them found nobody waiting.
	waiting   int
	lazyDelay time.Duration
	lazyDue   bool
	lazyArmed bool
	lazyTimer *time.Timer
	probes    []chan error
	cpDue     bool // the checkpoint interval passed
	closed    bool
	err       error  // result of the last batch
	headSeq   uint64 // last durable record
	headHash  string
	lastCP    Checkpoint    // the last checkpoint made, N 0 for none
	done      chan struct{} // closed when the writer has exited
	closeErr  error         // set by the writer before done is closed

	// Owned by the writer goroutine (and by Open before it starts it).
	f         *os.File // nil after a failed batch until the next batch reopens it
	name      string   // file name of the segment being written
	num       int      // its number
	size      int64    // bytes of f known to be durable
	alloc     int64    // bytes f holds: size, then NUL padding
	day       int64    // UTC day (since the epoch) of the segment's last write
	seq       uint64   // chain head: last durable record's seq and hash
	hash      [sha256.Size]byte
	buf       []byte
	batch     []*request
	lastBatch int // records someone waited for in the last batch taken from the queue

	// The segment holding the head record, which is not the one being
	// written just after a rotation, and the span of its records' times.
	headSeg    string
	headSize   int64
	tmin, tmax time.Time

	cpf    *os.File   // checkpoints.jsonl, nil until opened or after a failure
	cpSize int64      // its durable length
	cp     Checkpoint // the last checkpoint, N 0 for none
	cpNext uint64     // make a checkpoint by count once seq reaches this

	syncs atomic.Uint64 // fsyncs of batches; tests observe group commit

	// The witness goroutine's mailbox, which holds the latest checkpoint
	// to put and which the writer closes when it exits; wdone is closed
	// once all is put.
	wnext chan Checkpoint
	wdone chan struct{}
}

// request is one Append waiting for the writer. Requests are pooled; one
// abandoned by a cancelled context is left to the garbage collector, since
// the writer may still hold it.
type request struct {
	buf  []byte
	rest []byte    // the event's JSON after zeroPrefix
	time time.Time // the event's Time, for the checkpoints' time spans
	seq  uint64    // set by the writer before done is sent
	prev [sha256.Size]byte
	done chan error
	// detached requests have no waiter: the writer recycles them instead
	// of answering on done.
	detached bool
}

var requests = sync.Pool{New: func() any { return &request{done: make(chan error, 1)} }}

// encode encodes e with Seq and Prev zeroed, leaving the bytes the writer
// needs in r.rest.
func (r *request) encode(e *Event) error {
	ev := *e
	ev.Seq, ev.Prev = 0, ""
	r.time = e.Time
	b, err := appendEvent(r.buf[:0], &ev)
	r.buf = b
	if err != nil {
		return fmt.Errorf("audit: encode event: %w", err)
	}
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
	if cap(r.buf) > 64<<10 {
		return // do not pin a rare huge event's buffer
	}
	r.rest, r.detached = nil, false
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
//
// With a checkpoint key, Open also refuses a trail that does not hold the
// record its last checkpoint signed, and one whose checkpoints are behind
// the witness's: both mean records were cut. A witness that cannot be
// reached is logged and does not stop Open.
func Open(dir string, opts Options) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create %s: %w", dir, err)
	}
	l := &Log{
		dir:       dir,
		now:       opts.Now,
		maxBatch:  opts.MaxBatch,
		logger:    opts.Logger,
		maxBytes:  opts.SegmentMaxBytes,
		pad:       opts.Preallocate,
		daily:     opts.RotateDaily,
		key:       opts.CheckpointKey,
		interval:  opts.CheckpointInterval,
		onCommit:  opts.OnCommit,
		onDurable: opts.OnDurable,
		lazyDelay: defaultLazyDelay,
		witness:   opts.Witness,
		done:      make(chan struct{}),
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
	if l.maxBytes == 0 {
		l.maxBytes = defaultSegmentMaxBytes
	}
	if l.pad == 0 {
		l.pad = defaultPreallocate
	}
	switch {
	case opts.CheckpointEvery == 0:
		l.every = defaultCheckpointEvery
	case opts.CheckpointEvery > 0:
		l.every = uint64(opts.CheckpointEvery)
	}
	if l.interval == 0 {
		l.interval = defaultCheckpointInterval
	}
	if l.key != nil && len(l.key) != ed25519.PrivateKeySize {
		return nil, errors.New("audit: checkpoint key is not an Ed25519 private key")
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
	if l.key != nil {
		if err := l.openCheckpoints(); err != nil {
			l.f.Close()
			if l.cpf != nil {
				l.cpf.Close()
			}
			lock.Close()
			return nil, err
		}
	}
	l.headSeq, l.headHash = l.seq, hashString(l.seq, &l.hash)
	l.lastCP = l.cp
	if l.witness != nil {
		l.wnext, l.wdone = make(chan Checkpoint, 1), make(chan struct{})
		go l.witnessLoop()
	}
	go l.run()
	if l.key != nil && l.interval > 0 {
		go l.tick()
	}
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
	r, err := l.enqueue(e, false)
	if err != nil {
		return err
	}
	seq, prev, err := pending{r}.wait(ctx)
	if err == nil {
		e.Seq, e.Prev = seq, hashString(seq-1, &prev)
	}
	return err
}

// Pending is a record [Log.Begin] queued: Wait returns nil once it is
// durable, the error of the batch that could not make it so, or ctx.Err()
// when ctx ends first (the record may still be written later). Call Wait
// once.
type Pending interface {
	Wait(ctx context.Context) error
}

// pending is the Log's Pending: one pointer, so that it fits an interface
// without an allocation.
type pending struct{ r *request }

// Begin queues e for the trail as Append does, but returns at once: the
// record is durable when the Pending's Wait returns nil. It encodes e
// before it returns, so the caller may change e straight away; it sets
// e.Time when it was zero, but not e.Seq and e.Prev. Records are chained
// in the order Begin and Append queue them. A Pending whose Wait is never
// called is left to the garbage collector.
func (l *Log) Begin(e *Event) (Pending, error) {
	r, err := l.enqueue(e, false)
	if err != nil {
		return nil, err
	}
	return pending{r}, nil
}

// Queue queues e for the trail and does not wait for it: nobody learns
// whether it became durable, beyond the error Log.Err reports and the log
// line a failed batch writes. It is for a record whose request has
// already been made safe by another, such as a release's outcome after
// its decision record. It encodes e before it returns.
func (l *Log) Queue(e *Event) error {
	_, err := l.enqueue(e, true)
	return err
}

func (l *Log) enqueue(e *Event, detached bool) (*request, error) {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	r := requests.Get().(*request)
	if err := r.encode(e); err != nil {
		putRequest(r)
		return nil, err
	}
	r.detached = detached

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		putRequest(r)
		return nil, ErrClosed
	}
	l.queue = append(l.queue, r)
	switch {
	case !detached:
		l.waiting++
		l.wake.Signal()
	case l.waiting == 0:
		l.armLazy()
	}
	l.mu.Unlock()
	return r, nil
}

func (p pending) Wait(ctx context.Context) error {
	_, _, err := p.wait(ctx)
	return err
}

func (p pending) wait(ctx context.Context) (uint64, [sha256.Size]byte, error) {
	r := p.r
	select {
	case err := <-r.done:
		seq, prev := r.seq, r.prev
		putRequest(r)
		return seq, prev, err
	case <-ctx.Done():
		return 0, [sha256.Size]byte{}, ctx.Err()
	}
}

// Err returns nil while the log is healthy, the error of the last batch when
// it failed, and ErrClosed once Close began. A transient failure clears with
// the next successful batch; [Log.Probe] tells whether one would succeed.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.err
}

// Probe reports whether the trail can take a write now: in the writer's
// turn, it reopens the segment if a failed batch closed it (failing as the
// next batch would on a trail that changed under the log), then writes,
// fsyncs and removes a 64 KiB probe file in the trail directory. It does
// not change Err. A readiness check can call it while Err is not nil to
// learn when the trail has recovered, without waiting for a request to
// risk it.
func (l *Log) Probe() error {
	done := make(chan error, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.probes = append(l.probes, done)
	l.wake.Signal()
	l.mu.Unlock()
	return <-done
}

// Head returns the seq and hex hash of the last durable record, or 0 and ""
// for an empty trail.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.headSeq, l.headHash
}

// LastCheckpoint returns the last checkpoint of the trail, made by this Log
// or found by Open, and false when there is none.
func (l *Log) LastCheckpoint() (Checkpoint, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastCP, l.lastCP.N > 0
}

// Close makes every record queued so far durable, makes a final checkpoint
// when records were written since the last one, then fsyncs and closes the
// segment. It returns an error when the last batch failed or the final
// sync or close did; a checkpoint that fails is logged. Appends after Close
// fail with ErrClosed. Calling Close again returns nil.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		l.waitWitness()
		return nil
	}
	l.closed = true
	l.wake.Signal()
	l.mu.Unlock()
	<-l.done
	l.waitWitness()
	return l.closeErr
}

// waitWitness returns once the witness goroutine, if any, has put the
// last checkpoint and exited; the writer must have exited.
func (l *Log) waitWitness() {
	if l.wdone != nil {
		<-l.wdone
	}
}

// tick marks a checkpoint due every interval until the writer exits.
func (l *Log) tick() {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.mu.Lock()
			l.cpDue = true
			l.wake.Signal()
			l.mu.Unlock()
		case <-l.done:
			return
		}
	}
}

// defaultLazyDelay is how long records nobody waits for may stay queued
// for want of a record someone waits for, whose commit they would share.
const defaultLazyDelay = 2 * time.Millisecond

// armLazy makes sure lazyDue will be set; l.mu is held.
func (l *Log) armLazy() {
	if l.lazyArmed || l.lazyDue {
		return
	}
	l.lazyArmed = true
	if l.lazyTimer == nil {
		l.lazyTimer = time.AfterFunc(l.lazyDelay, func() {
			l.mu.Lock()
			l.lazyArmed, l.lazyDue = false, true
			l.wake.Signal()
			l.mu.Unlock()
		})
		return
	}
	l.lazyTimer.Reset(l.lazyDelay)
}

// run is the writer goroutine: it group-commits queued records, makes
// checkpoints and answers probes until the log is closed and drained.
func (l *Log) run() {
	defer close(l.done)
	for {
		l.mu.Lock()
		for (l.waiting == 0 && !l.lazyDue) && len(l.probes) == 0 && !l.cpDue && !l.closed {
			l.wake.Wait()
		}
		probes := l.probes
		l.probes = nil
		due := l.cpDue
		l.cpDue = false
		if len(l.queue) == 0 && l.closed {
			last := l.err
			l.mu.Unlock()
			for _, p := range probes {
				p <- ErrClosed
			}
			l.closeErr = errors.Join(last, l.shutdown())
			if l.wnext != nil {
				close(l.wnext) // after the final checkpoint
			}
			return
		}
		if len(l.queue) > 0 && len(l.queue) < l.maxBatch && l.lastBatch > 1 {
			// Requests are arriving together: let those already running
			// reach Append before this batch is cut, so that one sync
			// covers them too. A sync costs the same CPU for one record as
			// for ten; under load this takes batches from 5 to 8 records.
			// Alone, Gosched returns at once. Records nobody waits for do
			// not count: they ride along whenever the batch is cut.
			l.mu.Unlock()
			runtime.Gosched()
			l.mu.Lock()
		}
		n := min(len(l.queue), l.maxBatch)
		batch := append(l.batch[:0], l.queue[:n]...)
		left := copy(l.queue, l.queue[n:])
		clear(l.queue[left:])
		l.queue = l.queue[:left]
		l.lastBatch = 0
		for _, r := range batch {
			if !r.detached {
				l.lastBatch++
			}
		}
		l.waiting -= l.lastBatch
		l.lazyDue = false
		switch {
		case l.waiting == 0 && len(l.queue) > 0:
			l.armLazy()
		case len(l.queue) == 0 && l.lazyArmed && l.lazyTimer.Stop():
			l.lazyArmed = false // what it was armed for goes now
		}
		l.mu.Unlock()

		if len(batch) > 0 {
			began := time.Now()
			err := l.commit(batch)
			if l.onCommit != nil {
				l.onCommit(len(batch), time.Since(began), err)
			}
			l.mu.Lock()
			l.err = err
			if err == nil {
				l.headSeq, l.headHash = l.seq, hashString(l.seq, &l.hash)
			}
			l.mu.Unlock()
			for _, r := range batch {
				if r.detached {
					putRequest(r)
				} else {
					r.done <- err
				}
			}
			clear(batch)
			l.batch = batch
		}
		if due || (l.every > 0 && l.seq >= l.cpNext) {
			l.checkpoint()
		}
		for _, p := range probes {
			p <- l.probe()
		}
	}
}

// commit chains batch onto the head, writes it with one write and makes it
// durable with one sync, in a new segment when the current one is full or
// from another day. On failure it cuts the segment back to its last durable
// size and closes it, so that no record of the batch stays behind and the
// next batch starts from a re-read tail.
func (l *Log) commit(batch []*request) error {
	if l.f == nil {
		if err := l.reopen(); err != nil {
			return err
		}
	}
	seq, hash := l.seq, l.hash
	buf := l.buf[:0]
	tmin, tmax := batch[0].time, batch[0].time
	for _, r := range batch {
		seq++
		r.seq, r.prev = seq, hash
		buf, hash = appendRecord(buf, seq, &r.prev, r.rest)
		tmin, tmax = minTime(tmin, r.time), maxTime(tmax, r.time)
	}
	now := l.now()
	err := l.rotateIfDue(len(buf), now)
	if err == nil {
		if err = l.reserve(int64(len(buf))); err == nil {
			_, err = l.f.WriteAt(buf, l.size)
		}
		if err == nil {
			err = datasync(l.f)
			l.syncs.Add(1)
		}
		if err != nil {
			err = fmt.Errorf("audit: write %s: %w", l.name, err)
			l.logger.Error("audit: batch not durable; cutting it back", "segment", l.name, "records", len(batch), "err", err)
			l.cutBack()
		}
	}
	if cap(buf) <= 4<<20 {
		l.buf = buf[:0]
	} else {
		l.buf = nil
	}
	if err != nil {
		return err
	}
	l.size += int64(len(buf))
	l.seq, l.hash = seq, hash
	l.day = utcDay(now)
	if l.headSeg != l.name {
		l.headSeg, l.tmin, l.tmax = l.name, tmin, tmax
	} else {
		l.tmin, l.tmax = minTime(l.tmin, tmin), maxTime(l.tmax, tmax)
	}
	l.headSize = l.size
	if l.onDurable != nil {
		for i, line := 0, buf; i < len(batch); i++ {
			n := bytes.IndexByte(line, '\n') + 1
			l.onDurable(batch[i].seq, line[:n])
			line = line[n:]
		}
	}
	return nil
}

// reserve makes room for n bytes after the records in the segment's
// padding, writing zeros ahead when there is too little. The zeros become
// durable with the batch's sync, which then also commits the file's new
// size; the batches after it overwrite blocks the file already holds.
func (l *Log) reserve(n int64) error {
	if l.pad <= 0 || l.size+n <= l.alloc {
		return nil
	}
	end := l.size + n + l.pad
	if l.maxBytes > 0 {
		end = max(l.size+n, min(end, l.maxBytes)) // rotation cuts the rest off
	}
	for off := max(l.alloc, l.size); off < end; {
		k := min(int64(len(zeros)), end-off)
		if _, err := l.f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off += k
	}
	l.alloc = end
	return nil
}

// unpad cuts the segment's padding off, leaving its records alone, and
// makes that durable: a segment the Log no longer writes ends with its last
// record.
func (l *Log) unpad() error {
	if l.alloc == l.size {
		return nil
	}
	if err := l.f.Truncate(l.size); err != nil {
		return err
	}
	l.alloc = l.size
	return l.f.Sync()
}

// rotateIfDue starts a new segment when writing n more bytes would grow a
// non-empty segment past the limit, or when it was last written on another
// UTC day than now. A checkpoint seals the old segment first, so that its
// record times are known without reading it.
func (l *Log) rotateIfDue(n int, now time.Time) error {
	if l.size == 0 {
		return nil
	}
	bySize := l.maxBytes > 0 && l.size+int64(n) > l.maxBytes
	byDay := l.daily && utcDay(now) != l.day
	if !bySize && !byDay {
		return nil
	}
	l.checkpoint()
	if err := l.unpad(); err != nil {
		return fmt.Errorf("audit: rotate: cut the padding off %s: %w", l.name, err)
	}
	name := segmentName(l.num + 1)
	path := filepath.Join(l.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if err != nil {
		return fmt.Errorf("audit: rotate to a new segment: %w", err)
	}
	// The new name must be durable before any record in it is.
	if err := l.lock.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("audit: rotate: sync %s: %w", l.dir, err)
	}
	// The old segment's records were all fsync'd with their batches.
	if err := l.f.Close(); err != nil {
		l.logger.Warn("audit: close rotated segment", "segment", l.name, "err", err)
	}
	l.f, l.name, l.num, l.size, l.alloc = f, name, l.num+1, 0, 0
	return nil
}

// cutBack truncates the segment to its last durable size, padding
// included, and closes it.
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
	l.f, l.alloc = nil, l.size
}

// reopen opens the segment again after a failed batch and checks that its
// tail still ends at the head the log kept.
func (l *Log) reopen() error {
	seq, hash := l.seq, l.hash
	headSeg, headSize, tmin, tmax := l.headSeg, l.headSize, l.tmin, l.tmax
	if err := l.openSegment(); err != nil {
		return err
	}
	switch {
	case l.seq == seq && l.hash == hash:
		l.tmin, l.tmax = tmin, tmax
		return nil
	case l.seq > seq:
		// A failed batch could not be cut back but reached the disk whole:
		// its records are chained and merely over-report.
		l.logger.Warn("audit: records of a failed batch stayed in the trail", "segment", l.name, "from_seq", seq+1, "to_seq", l.seq)
		if l.key != nil {
			return l.recoverTimes()
		}
		return nil
	}
	// Durable records vanished or changed under the log: writing on would
	// hide that, so keep failing until an auditor has looked.
	err := fmt.Errorf("audit: trail %s changed under the log: its tail is at seq %d, the log wrote up to seq %d", l.dir, l.seq, seq)
	l.f.Close()
	l.f = nil
	l.seq, l.hash = seq, hash
	l.headSeg, l.headSize, l.tmin, l.tmax = headSeg, headSize, tmin, tmax
	l.logger.Error("audit: refusing to write", "err", err)
	return err
}

// probe is Probe in the writer goroutine.
func (l *Log) probe() error {
	if l.f == nil {
		if err := l.reopen(); err != nil {
			return err
		}
	}
	path := filepath.Join(l.dir, probeFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|oNoFollow, 0o600)
	if err != nil {
		return fmt.Errorf("audit: probe: %w", err)
	}
	_, err = f.Write(make([]byte, probeBytes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(path); err == nil {
		err = rerr
	}
	if err == nil {
		err = l.lock.Sync()
	}
	if err != nil {
		return fmt.Errorf("audit: probe: %w", err)
	}
	return nil
}

// shutdown makes the final checkpoint, fsyncs and closes the segment and
// releases the trail.
func (l *Log) shutdown() error {
	l.checkpoint()
	var err error
	if l.f != nil {
		if perr := l.unpad(); perr != nil {
			err = fmt.Errorf("audit: cut the padding off %s: %w", l.name, perr)
		}
		if serr := l.f.Sync(); serr != nil && err == nil {
			err = fmt.Errorf("audit: sync %s: %w", l.name, serr)
		}
		if cerr := l.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("audit: close %s: %w", l.name, cerr)
		}
		l.f = nil
	}
	if l.cpf != nil {
		l.cpf.Close()
		l.cpf = nil
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
	l.day = utcDay(l.now())
	if len(segs) == 0 {
		name := segmentName(1)
		f, err := os.OpenFile(filepath.Join(l.dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
		if err != nil {
			return fmt.Errorf("audit: create segment: %w", err)
		}
		// The new name must be durable before any record in it is.
		if err := l.lock.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("audit: sync %s: %w", l.dir, err)
		}
		l.f, l.name, l.num, l.size, l.alloc, l.seq, l.hash = f, name, 1, 0, 0, 0, [sha256.Size]byte{}
		l.headSeg, l.headSize = "", 0
		return nil
	}

	last := segs[len(segs)-1]
	f, size, err := openSegmentFile(l.dir, last.name, os.O_RDWR)
	if err != nil {
		return err
	}
	size, err = l.cutPadding(f, last.name, size)
	var rec record
	var ok bool
	if err == nil {
		size, rec, ok, err = readTail(f, last.name, size, true, l.logger)
	}
	headSeg, headSize := last.name, size
	// A freshly rotated segment is empty: the head is in an earlier one.
	for i := len(segs) - 2; err == nil && !ok && i >= 0; i-- {
		headSeg = segs[i].name
		headSize, rec, ok, err = earlierTail(l.dir, segs[i].name)
	}
	if err == nil && size > 0 {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil {
			l.day = utcDay(fi.ModTime())
		}
	}
	if err != nil {
		f.Close()
		return err
	}
	if !ok {
		headSeg, headSize = "", 0
	}
	l.f, l.name, l.num, l.size, l.alloc, l.seq, l.hash = f, last.name, last.num, size, size, rec.seq, rec.hash
	l.headSeg, l.headSize = headSeg, headSize
	return nil
}

// cutPadding readies the last segment, whose records end at end, for
// writing. When it ends in padding, the Log that wrote it stopped without
// Close, and a batch it never made durable may have left parts of its
// records in the padding, in any order the disk kept them. The durable
// records end at the segment's first NUL byte, since every batch before it
// was synced whole and records hold no NUL. cutPadding cuts everything from
// there off and returns where the records end. Bytes other than padding
// are first set aside in a file beside the segment and logged: they are
// most likely that batch, but a NUL where no crash put one would be damage,
// and what follows it is kept for an auditor.
func (l *Log) cutPadding(f *os.File, name string, end int64) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("audit: stat %s: %w", name, err)
	}
	if fi.Size() == end {
		return end, nil
	}
	nul, err := firstNUL(f, end)
	if err != nil {
		return 0, fmt.Errorf("audit: read %s: %w", name, err)
	}
	if nul < end {
		aside, err := l.setAside(f, name, nul, end)
		if err != nil {
			return 0, fmt.Errorf("audit: set aside the end of %s: %w", name, err)
		}
		l.logger.Warn("audit: set aside the bytes after the first NUL of the last segment, most likely a batch that was never durable",
			"segment", name, "offset", nul, "bytes", end-nul, "file", aside)
	}
	if err := f.Truncate(nul); err != nil {
		return 0, fmt.Errorf("audit: cut the padding off %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("audit: sync %s: %w", name, err)
	}
	return nul, nil
}

// setAside copies bytes from to to of segment f, called name, into a new
// file beside it, which is not a segment, and returns the file's name.
func (l *Log) setAside(f *os.File, name string, from, to int64) (string, error) {
	aside := fmt.Sprintf("%s.unfinished-%d", name, l.now().UnixNano())
	path := filepath.Join(l.dir, aside)
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, io.NewSectionReader(f, from, to-from))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.lock.Sync() // its name, before the segment is cut
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return aside, nil
}

// firstNUL returns the offset of the first NUL byte among the first end
// bytes of f, or end when there is none.
func firstNUL(f *os.File, end int64) (int64, error) {
	buf := make([]byte, 1<<20)
	r := io.NewSectionReader(f, 0, end)
	for off := int64(0); ; {
		n, err := io.ReadFull(r, buf)
		if i := bytes.IndexByte(buf[:n], 0); i >= 0 {
			return off + int64(i), nil
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return end, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// openSegmentFile opens a segment, refusing anything but a regular file,
// and returns where its records end: before the padding of a segment a Log
// is writing (or was, when it stopped without Close).
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
	end, err := recordsEnd(f)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("audit: read segment %s: %w", name, err)
	}
	return f, end, nil
}

// recordsEnd returns where the records of segment f end: before the NUL
// bytes that pad it (Options.Preallocate). A Log cuts the padding off when
// it rotates or closes, so f may shrink under it: then it reads again, a
// few times at most.
func recordsEnd(f *os.File) (int64, error) {
	buf := make([]byte, 4<<10) // a closed segment ends in its last record
	for try := 0; ; try++ {
		fi, err := f.Stat()
		if err != nil {
			return 0, err
		}
		end, err := trimPadding(f, fi.Size(), &buf)
		if err != io.EOF || try == 3 {
			return end, err
		}
	}
}

func trimPadding(f *os.File, size int64, buf *[]byte) (int64, error) {
	for size > 0 {
		b := (*buf)[:min(int64(len(*buf)), size)]
		if _, err := f.ReadAt(b, size-int64(len(b))); err != nil {
			return 0, err
		}
		if t := bytes.TrimRight(b, "\x00"); len(t) > 0 {
			return size - int64(len(b)) + int64(len(t)), nil
		}
		size -= int64(len(b))
		if len(*buf) < 64<<10 {
			*buf = make([]byte, 64<<10)
		}
	}
	return 0, nil
}

// earlierTail returns the size and last record of a segment before the
// last one, which must end in a complete, valid record when it is not
// empty.
func earlierTail(dir, name string) (int64, record, bool, error) {
	f, size, err := openSegmentFile(dir, name, os.O_RDONLY)
	if err != nil {
		return 0, record{}, false, err
	}
	defer f.Close()
	_, rec, ok, err := readTail(f, name, size, false, nil)
	return size, rec, ok, err
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
