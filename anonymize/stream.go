package anonymize

import (
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is returned when a record, or the whole body, exceeds its
// limit.
var ErrTooLarge = errors.New("upstream body too large")

// ShapeError reports a body that is valid JSON but not the shape the dataset
// declares, or that is ambiguous (a repeated key).
type ShapeError struct{ Msg string }

func (e *ShapeError) Error() string { return "unexpected upstream body: " + e.Msg }

func shapeErr(format string, args ...any) error {
	return &ShapeError{Msg: fmt.Sprintf(format, args...)}
}

// stream reads an upstream body and cuts it into values small enough to
// hold: the transform never holds more than one record.
type stream struct {
	r        io.Reader
	buf      []byte
	pos, end int
	off      int64 // body offset of buf[0]
	err      error
	limit    int64 // 0: none
}

func (s *stream) reset(r io.Reader, limit int64) {
	s.r, s.pos, s.end, s.off, s.err, s.limit = r, 0, 0, 0, nil, limit
	if s.buf == nil {
		s.buf = make([]byte, 64<<10)
	}
}

// fill reads more of the body; false when there is no more.
func (s *stream) fill() bool {
	if s.err != nil {
		return false
	}
	if s.pos > 0 {
		n := copy(s.buf, s.buf[s.pos:s.end])
		s.off += int64(s.pos)
		s.pos, s.end = 0, n
	}
	for s.end < len(s.buf) {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if s.limit > 0 && s.off+int64(s.end) > s.limit {
			s.err = ErrTooLarge
			return false
		}
		if err != nil {
			s.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	return true
}

// fail returns the error for an unexpected end of the body: the read error
// when there was one, else a syntax error.
func (s *stream) fail(what string) error {
	if s.err != nil && s.err != io.EOF {
		return s.err
	}
	return &SyntaxError{Offset: s.off + int64(s.pos), Msg: "unexpected end of body: " + what}
}

// peek returns the next byte that is not whitespace without consuming it.
func (s *stream) peek() (byte, bool) {
	for {
		for s.pos < s.end {
			if c := s.buf[s.pos]; !isWS(c) {
				return c, true
			}
			s.pos++
		}
		if !s.fill() {
			return 0, false
		}
	}
}

// expect consumes the next non-whitespace byte, which must be one of set.
func (s *stream) expect(set string, what string) (byte, error) {
	c, ok := s.peek()
	if !ok {
		return 0, s.fail(what)
	}
	for i := 0; i < len(set); i++ {
		if c == set[i] {
			s.pos++
			return c, nil
		}
	}
	return 0, &SyntaxError{Offset: s.off + int64(s.pos), Msg: fmt.Sprintf("expected %s, found %q", what, c)}
}

// atEOF reports whether only whitespace remains.
func (s *stream) atEOF() error {
	if _, ok := s.peek(); ok {
		return &SyntaxError{Offset: s.off + int64(s.pos), Msg: "data after the top-level value"}
	}
	if s.err != nil && s.err != io.EOF {
		return s.err
	}
	return nil
}

// capture appends the bytes of the next value to dst without validating
// them (the caller validates in memory): it only finds where the value ends,
// minding strings and nesting. It fails when the value exceeds max bytes.
func (s *stream) capture(dst []byte, max int) ([]byte, error) {
	c, ok := s.peek()
	if !ok {
		return dst, s.fail("value")
	}
	start := len(dst)
	depth, inStr, esc := 0, false, false
	scalar := c != '{' && c != '[' && c != '"'
	first := true
	for {
		i := s.pos
		done := false
		for ; i < s.end; i++ {
			c := s.buf[i]
			if first {
				first = false
				if c == '"' {
					inStr = true
				} else if c == '{' || c == '[' {
					depth++
				}
				continue
			}
			if inStr {
				if !esc {
					// Most of a record is string bytes: skip eight at a
					// time to the next quote or backslash.
					i += skipStringBytes(s.buf[i:s.end])
					if i == s.end {
						break
					}
					c = s.buf[i]
				}
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inStr = false
					if depth == 0 {
						done = true
					}
				}
				if done {
					i++
					break
				}
				continue
			}
			if scalar {
				if c == ',' || c == '}' || c == ']' || isWS(c) {
					done = true
					break
				}
				continue
			}
			switch c {
			case '"':
				inStr = true
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					done = true
				}
			}
			if done {
				i++
				break
			}
		}
		if len(dst)-start+(i-s.pos) > max {
			return dst, ErrTooLarge
		}
		dst = append(dst, s.buf[s.pos:i]...)
		s.pos = i
		if done {
			return dst, nil
		}
		if !s.fill() {
			if scalar && (s.err == nil || s.err == io.EOF) {
				return dst, nil // a scalar may end the body; the caller decides
			}
			return dst, s.fail("value")
		}
	}
}
