package audit

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The Log's side of checkpoints: opening checkpoints.jsonl, checking the
// trail against its last checkpoint and the witness, and making new ones.
// All of it runs in Open or in the writer goroutine.

// openCheckpoints opens checkpoints.jsonl (creating it), cuts a torn final
// line off it, and checks the trail against its last checkpoint and against
// the witness.
func (l *Log) openCheckpoints() error {
	if err := l.openCheckpointFile(); err != nil {
		return err
	}
	if l.cp.N > 0 {
		if err := l.checkTrailHolds(&l.cp, "its last checkpoint"); err != nil {
			return err
		}
	}
	if err := l.checkWitness(); err != nil {
		return err
	}
	l.cpNext = l.cp.Seq + l.every
	return l.recoverTimes()
}

// openCheckpointFile opens checkpoints.jsonl for appending and reads its
// last checkpoint into l.cp.
func (l *Log) openCheckpointFile() error {
	path := filepath.Join(l.dir, checkpointFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|oNoFollow, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", checkpointFile, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s in %s is not a regular file", checkpointFile, l.dir)
	}
	if err == nil {
		// The name must be durable before a checkpoint in it is.
		err = l.lock.Sync()
	}
	var (
		c    Checkpoint
		size int64
	)
	if err == nil {
		c, size, err = lastCheckpoint(f, fi.Size(), l)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: %w", err)
	}
	if c.N < l.cp.N {
		f.Close()
		return fmt.Errorf("audit: %s lost checkpoints under the log: it ends at checkpoint %d, the log wrote up to %d", checkpointFile, c.N, l.cp.N)
	}
	l.cpf, l.cpSize, l.cp = f, size, c
	return nil
}

// lastCheckpoint returns the last checkpoint in f, which is size bytes
// long, and the file's length once a torn final line (one without its
// newline, as a crash mid-write leaves) is cut off. N is 0 when there is
// none. A complete last line that is not a checkpoint is an error.
func lastCheckpoint(f *os.File, size int64, l *Log) (Checkpoint, int64, error) {
	if size == 0 {
		return Checkpoint{}, 0, nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return Checkpoint{}, 0, err
	}
	if last[0] != '\n' {
		start, err := lineStart(f, size)
		if err == nil {
			err = f.Truncate(start)
		}
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			return Checkpoint{}, 0, fmt.Errorf("cut torn checkpoint off %s: %w", checkpointFile, err)
		}
		l.logger.Warn("audit: cut off torn final checkpoint", "file", checkpointFile, "offset", start, "bytes", size-start)
		size = start
		if size == 0 {
			return Checkpoint{}, 0, nil
		}
	}
	start, err := lineStart(f, size-1)
	if err != nil {
		return Checkpoint{}, 0, err
	}
	if size-1-start > maxCheckpoint {
		return Checkpoint{}, 0, fmt.Errorf("%s: last line too long (verify the trail)", checkpointFile)
	}
	line := make([]byte, size-1-start)
	if _, err := f.ReadAt(line, start); err != nil {
		return Checkpoint{}, 0, err
	}
	c, err := parseCheckpoint(line)
	if err != nil {
		n, _ := countLines(f, start)
		return Checkpoint{}, 0, fmt.Errorf("%s line %d: %w (verify the trail)", checkpointFile, n+1, err)
	}
	return c, size, nil
}

// checkTrailHolds checks that the trail still holds the record c signed,
// where c says it is: anything else means records were cut or rewritten.
func (l *Log) checkTrailHolds(c *Checkpoint, what string) error {
	cut := func(why string) error {
		return fmt.Errorf("audit: trail %s does not hold the record %s signed (seq %d in %s): %s; records were cut or rewritten (verify the trail)",
			l.dir, what, c.Seq, c.Segment, why)
	}
	if c.Seq > l.seq {
		return cut(fmt.Sprintf("the trail ends at seq %d", l.seq))
	}
	f, size, err := openSegmentFile(l.dir, c.Segment, os.O_RDONLY)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return cut("the segment is missing")
		}
		return err
	}
	defer f.Close()
	if size < c.Size {
		return cut(fmt.Sprintf("the segment is %d bytes, shorter than %d", size, c.Size))
	}
	var p parser
	_, rec, bad, err := lastLine(f, c.Size, &p)
	switch {
	case err != nil:
		return fmt.Errorf("audit: read %s: %w", c.Segment, err)
	case bad != nil:
		return cut(bad.Error())
	case rec.seq != c.Seq || hex.EncodeToString(rec.hash[:]) != c.Head:
		return cut(fmt.Sprintf("the record there is seq %d with another hash", rec.seq))
	}
	return nil
}

// witnessTimeout bounds one call to the witness, which may be remote.
const witnessTimeout = 5 * time.Second

// checkWitness refuses a trail whose checkpoints are behind the witness's
// or differ from it, and brings a witness that is behind up to date.
func (l *Log) checkWitness() error {
	if l.witness == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), witnessTimeout)
	w, ok, err := l.witness.Latest(ctx)
	cancel()
	if err != nil {
		l.logger.Warn("audit: witness unreachable; the trail was not checked against it", "err", err)
		return nil
	}
	if ok {
		switch {
		case w.N > l.cp.N:
			return fmt.Errorf("audit: the witness holds checkpoint %d (seq %d) but %s in %s ends at checkpoint %d: the trail or its checkpoints were cut (verify the trail)",
				w.N, w.Seq, checkpointFile, l.dir, l.cp.N)
		case w.N == l.cp.N && w.Hash() != l.cp.Hash():
			return fmt.Errorf("audit: checkpoint %d in %s differs from the witness's: checkpoints were rewritten (verify the trail)", w.N, l.dir)
		case w.N == l.cp.N:
			return nil
		}
	}
	if l.cp.N > 0 {
		l.putWitness(l.cp)
	}
	return nil
}

// recoverTimes sets the time span of the head segment's records: from the
// last checkpoint when it covers part of that segment, and by reading the
// records after it.
func (l *Log) recoverTimes() error {
	l.tmin, l.tmax = time.Time{}, time.Time{}
	if l.headSeg == "" {
		return nil
	}
	var from int64
	if l.cp.N > 0 && l.cp.Segment == l.headSeg && l.cp.Size <= l.headSize {
		from, l.tmin, l.tmax = l.cp.Size, l.cp.MinTime, l.cp.MaxTime
	}
	f, _, err := openSegmentFile(l.dir, l.headSeg, os.O_RDONLY)
	if err != nil {
		return err
	}
	defer f.Close()
	lr := lineReader{r: bufio.NewReaderSize(io.NewSectionReader(f, from, l.headSize-from), 64<<10)}
	for {
		line, complete, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: read %s: %w", l.headSeg, err)
		}
		if t, ok := recordTime(line); ok && complete {
			if l.tmin.IsZero() {
				l.tmin, l.tmax = t, t
			}
			l.tmin, l.tmax = minTime(l.tmin, t), maxTime(l.tmax, t)
		}
	}
}

// checkpoint signs the head, appends it to checkpoints.jsonl and hands it
// to the witness, when records were written since the last checkpoint. A
// failure is logged and retried at the next occasion: the records
// themselves are durable whatever happens here.
func (l *Log) checkpoint() {
	if l.key == nil || l.seq == l.cp.Seq || l.headSeg == "" {
		return
	}
	c := Checkpoint{
		N:       l.cp.N + 1,
		Segment: l.headSeg,
		Size:    l.headSize,
		Seq:     l.seq,
		Head:    hex.EncodeToString(l.hash[:]),
		Time:    l.now().UTC(),
		MinTime: l.tmin.UTC(),
		MaxTime: l.tmax.UTC(),
	}
	if l.cp.N > 0 {
		c.Prev = l.cp.Hash()
	}
	c.sign(l.key)
	if err := l.writeCheckpoint(&c); err != nil {
		l.cpNext = l.seq + l.every
		l.logger.Error("audit: checkpoint not made", "seq", c.Seq, "err", err)
		return
	}
	l.cp = c
	l.cpNext = c.Seq + l.every
	l.mu.Lock()
	l.lastCP = c
	l.mu.Unlock()
	l.handWitness(c)
}

// writeCheckpoint appends c to checkpoints.jsonl and fsyncs it; on failure
// it cuts the file back and closes it.
func (l *Log) writeCheckpoint(c *Checkpoint) error {
	if l.cpf == nil {
		if err := l.openCheckpointFile(); err != nil {
			return err
		}
		if l.cp.N+1 != c.N {
			// A checkpoint that failed could not be cut back but reached
			// the disk: the next one must follow it.
			return fmt.Errorf("audit: %s ends at checkpoint %d; retrying from there", checkpointFile, l.cp.N)
		}
	}
	b := c.line()
	_, err := l.cpf.Write(b)
	if err == nil {
		err = l.cpf.Sync()
	}
	if err != nil {
		if terr := l.cpf.Truncate(l.cpSize); terr == nil {
			l.cpf.Sync()
		}
		l.cpf.Close()
		l.cpf = nil
		return fmt.Errorf("audit: write %s: %w", checkpointFile, err)
	}
	l.cpSize += int64(len(b))
	return nil
}

// handWitness gives c to the witness goroutine, which puts the latest
// checkpoint it was given: the witness's write (a file replaced and its
// directory synced, or a round trip to Redis) does not hold up the writer
// and the requests waiting for it. A witness that falls behind skips to
// the newest checkpoint, which extends the one it holds all the same.
// Only the writer goroutine calls it, so the send below never blocks.
func (l *Log) handWitness(c Checkpoint) {
	if l.witness == nil {
		return
	}
	select {
	case <-l.wnext: // not yet taken: c supersedes it
	default:
	}
	l.wnext <- c
}

// witnessLoop puts each checkpoint handWitness gives it until the writer
// closes the mailbox.
func (l *Log) witnessLoop() {
	defer close(l.wdone)
	for c := range l.wnext {
		l.putWitness(c)
	}
}

// putWitness hands c to the witness; a failure is logged, and the next
// checkpoint tries again.
func (l *Log) putWitness(c Checkpoint) {
	if l.witness == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), witnessTimeout)
	defer cancel()
	if err := l.witness.Put(ctx, c); err != nil {
		l.logger.Error("audit: witness did not take the checkpoint", "n", c.N, "seq", c.Seq, "err", err)
	}
}

// utcDay numbers t's day in UTC.
func utcDay(t time.Time) int64 {
	return t.Unix() / 86400
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
