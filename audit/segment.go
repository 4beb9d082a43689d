package audit

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Segment files: opening the last one at Open and readying it for writing,
// the NUL padding written ahead of the records and cut off again, rotation
// to a new segment, and cutting back and reopening after a failed batch.
// openSegmentFile and recordsEnd also serve Verify and Search.

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

// zeros is what a Log writes ahead of its records (Options.Preallocate).
var zeros [64 << 10]byte

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
