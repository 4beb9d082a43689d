package gateway

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
)

// spool holds a transformed response until its audit record is durable.
// It keeps up to limit bytes in memory and spills the rest to an unlinked
// temporary file, so a response of any size costs bounded memory and
// nothing is released before it is complete.
type spool struct {
	mem   *bytes.Buffer
	limit int
	dir   string
	file  *os.File
	n     int64
}

var spoolBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func newSpool(limit int, dir string) *spool {
	b := spoolBuffers.Get().(*bytes.Buffer)
	b.Reset()
	return &spool{mem: b, limit: limit, dir: dir}
}

func (s *spool) Write(p []byte) (int, error) {
	if s.file == nil && s.mem.Len()+len(p) > s.limit {
		f, err := os.CreateTemp(s.dir, "sluice-spool-*")
		if err != nil {
			return 0, err
		}
		// Unlinked at once: the data lives only as long as the descriptor.
		os.Remove(f.Name())
		s.file = f
		if _, err := f.Write(s.mem.Bytes()); err != nil {
			return 0, err
		}
		// The buffer, grown to the limit, is not held while the rest
		// of a large answer passes: another answer may use it.
		s.freeMem()
	}
	var n int
	var err error
	if s.file != nil {
		n, err = s.file.Write(p)
	} else {
		n, err = s.mem.Write(p)
	}
	s.n += int64(n)
	return n, err
}

// Len is the number of bytes spooled.
func (s *spool) Len() int64 { return s.n }

// WriteTo releases the spooled bytes.
func (s *spool) WriteTo(w io.Writer) (int64, error) {
	if s.file == nil {
		return s.mem.WriteTo(w)
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return io.Copy(w, s.file)
}

// Read lets the spool serve as a response body.
func (s *spool) Read(p []byte) (int, error) {
	if s.file == nil {
		return s.mem.Read(p)
	}
	return s.file.Read(p)
}

// rewind prepares Read to start from the first byte.
func (s *spool) rewind() error {
	if s.file != nil {
		_, err := s.file.Seek(0, io.SeekStart)
		return err
	}
	return nil
}

// reopenObject removes the closing brace of the JSON object spooled, and
// any whitespace after it, so that members can be written after the
// object's last.
func (s *spool) reopenObject() error {
	if s.file == nil {
		n := trimmedClose(s.mem.Bytes())
		if n < 0 {
			return errors.New("spool: the body does not end an object")
		}
		s.mem.Truncate(n)
		s.n = int64(n)
		return nil
	}
	tail := make([]byte, min(s.n, 64))
	off := s.n - int64(len(tail))
	if _, err := s.file.ReadAt(tail, off); err != nil {
		return err
	}
	n := trimmedClose(tail)
	if n < 0 {
		return errors.New("spool: the body does not end an object")
	}
	end := off + int64(n)
	if err := s.file.Truncate(end); err != nil {
		return err
	}
	if _, err := s.file.Seek(end, io.SeekStart); err != nil {
		return err
	}
	s.n = end
	return nil
}

// Close frees the spool.
func (s *spool) Close() error {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	s.freeMem()
	return nil
}

// freeMem gives the memory buffer back to the pool, unless it grew too
// large to keep.
func (s *spool) freeMem() {
	if s.mem != nil {
		if s.mem.Cap() <= 4*s.limit {
			spoolBuffers.Put(s.mem)
		}
		s.mem = nil
	}
}
