package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// Tail recovery: reading the last record of a segment at Open, cutting off
// a torn final record and refusing any other damage. lastLine, lineStart
// and countLines also serve checkpoints and Search.

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
