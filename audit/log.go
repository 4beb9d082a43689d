package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// The Log's API: its Options, Open, and the calls that queue records for
// the writer goroutine (writer.go) and wait for them, or ask it about the
// trail. Segment files are in segment.go, the recovery of a torn tail at
// Open in tail.go, and checkpoints in log_checkpoint.go.

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

// WaitSeq is Wait, and returns the record's seq once it is durable: a
// caller that indexes the record (the gateway's usage index) learns where
// it is without waiting twice.
func (p pending) WaitSeq(ctx context.Context) (uint64, error) {
	seq, _, err := p.wait(ctx)
	return seq, err
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

// hashString returns the hex form of hash, or "" when seq is 0: the record
// before the first one has no hash.
func hashString(seq uint64, hash *[sha256.Size]byte) string {
	if seq == 0 {
		return ""
	}
	return hex.EncodeToString(hash[:])
}
