package audit

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

// Report is the outcome of verifying a trail.
type Report struct {
	// Records counts the records verified, up to the first bad one.
	Records uint64 `json:"records"`
	// Segments counts the segment files found.
	Segments int `json:"segments"`
	// Head is the hex hash of the last good record, "" when there is none.
	Head string `json:"head"`
	// OK is true when the whole trail verified.
	OK bool `json:"ok"`
	// Bad describes the first bad record when OK is false.
	Bad *Problem `json:"bad,omitempty"`
}

// Problem names the first place where a trail stops verifying.
type Problem struct {
	// Segment is the segment's file name; for a missing segment, the name
	// it should have.
	Segment string `json:"segment"`
	// Line is the 1-based line within the segment, 0 when the problem is
	// the segment itself (missing, not a regular file).
	Line int `json:"line"`
	// Seq is the seq the verifier expected at that position.
	Seq uint64 `json:"seq"`
	// Reason says what is wrong, e.g. "hash mismatch: record altered".
	Reason string `json:"reason"`
}

// Verify checks the trail in dir and reports the first record that is
// altered, removed, inserted, duplicated, reordered or not a record at all,
// and the first missing segment. Records must form one chain: seq contiguous
// from 1 across segments in numeric order, each record's prev equal to the
// previous record's hash, and each record's hash equal to the SHA-256 of its
// own bytes. Verify streams the trail in constant memory. Its error is only
// for I/O problems; tampering is reported in the Report. On a trail a Log is
// writing, the record being written may show as an incomplete final line.
//
// Records cut off the end of the trail leave a shorter, valid chain; only a
// checkpoint of the head kept elsewhere reveals them.
func Verify(dir string) (*Report, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: verify %s: %w", dir, err)
	}
	v := &verifier{r: bufio.NewReaderSize(nil, 1<<20)}
	rep := &Report{Segments: len(segs)}
	for i, s := range segs {
		var bad *Problem
		switch {
		case s.num != i+1:
			bad = &Problem{Segment: segmentName(i + 1), Reason: "segment missing (records removed)"}
		case !s.regular:
			bad = &Problem{Segment: s.name, Reason: "segment is not a regular file"}
		default:
			bad, err = v.segment(dir, s.name)
			if err != nil {
				return nil, err
			}
		}
		if bad != nil {
			bad.Seq = v.seq + 1
			rep.Bad = bad
			break
		}
	}
	rep.Records = v.seq
	rep.Head = hashString(v.seq, &v.hash)
	rep.OK = rep.Bad == nil
	return rep, nil
}

// verifier carries the chain from one segment to the next.
type verifier struct {
	r    *bufio.Reader
	p    parser
	long []byte // a line longer than r's buffer
	seq  uint64 // last good record
	hash [sha256.Size]byte
}

// segment verifies one segment, returning the first problem in it.
func (v *verifier) segment(dir, name string) (*Problem, error) {
	f, _, err := openSegmentFile(dir, name, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v.r.Reset(f)
	for n := 1; ; n++ {
		line, complete, err := v.line()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit: read %s: %w", name, err)
		}
		if reason := v.check(line, complete); reason != "" {
			return &Problem{Segment: name, Line: n, Reason: reason}, nil
		}
	}
}

// line returns the next line without its '\n'; complete is false for a
// final line without one, and for a line too long to be a record (of which
// only the start is returned). It returns io.EOF at the end of the segment.
func (v *verifier) line() (line []byte, complete bool, err error) {
	b, err := v.r.ReadSlice('\n')
	if err == nil {
		return b[:len(b)-1], true, nil
	}
	if err != bufio.ErrBufferFull {
		if err == io.EOF && len(b) == 0 {
			return nil, false, io.EOF
		}
		return b, false, nil
	}
	v.long = append(v.long[:0], b...)
	for len(v.long) <= maxRecord {
		b, err = v.r.ReadSlice('\n')
		v.long = append(v.long, b...)
		switch err {
		case nil:
			return v.long[:len(v.long)-1], true, nil
		case bufio.ErrBufferFull:
		case io.EOF:
			return v.long, false, nil
		default:
			return nil, false, err
		}
	}
	return v.long, false, nil
}

// check verifies one line against the chain so far and advances the chain,
// or returns why the line breaks it.
func (v *verifier) check(line []byte, complete bool) string {
	if !complete {
		if len(line) > maxRecord {
			return malformedError("line too long").Error()
		}
		return malformedError("incomplete final line (torn write)").Error()
	}
	rec, err := v.p.parse(line)
	if err != nil {
		return err.Error()
	}
	want := v.seq + 1
	switch {
	case rec.seq > want:
		return fmt.Sprintf("sequence gap: expected %d, found %d (records removed or reordered)", want, rec.seq)
	case rec.seq < want:
		return fmt.Sprintf("sequence out of order: expected %d, found %d (record duplicated, inserted or reordered)", want, rec.seq)
	case want == 1 && !rec.noPrev:
		return "prev of the first record is not empty (records before it removed)"
	case want > 1 && (rec.noPrev || rec.prev != v.hash):
		return "prev does not match the previous record's hash (records reordered or removed)"
	}
	v.seq, v.hash = rec.seq, rec.hash
	return ""
}

// String renders a problem for people: segment, line, expected seq, reason.
func (p *Problem) String() string {
	if p.Line == 0 {
		return fmt.Sprintf("%s (expected seq %d): %s", p.Segment, p.Seq, p.Reason)
	}
	return fmt.Sprintf("%s line %d (expected seq %d): %s", p.Segment, p.Line, p.Seq, p.Reason)
}
