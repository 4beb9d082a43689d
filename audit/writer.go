package audit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// The writer goroutine, which alone writes the trail: the requests Append,
// Begin and Queue hand it, the group commit that chains them onto the head
// and makes them durable, and the probes, timers and shutdown it serves.

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

// probeFile is written and removed by Probe; it is not a segment name.
const probeFile = ".probe"

// probeBytes is how much Probe writes: about a large batch, so that a disk
// that still takes a few bytes but not a batch does not pass.
const probeBytes = 64 << 10

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
