package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Report is the outcome of verifying a trail.
type Report struct {
	// Records counts the records verified, up to the first bad one.
	Records uint64 `json:"records"`
	// Segments counts the segment files found.
	Segments int `json:"segments"`
	// Head is the hex hash of the last good record, "" when there is none.
	Head string `json:"head"`
	// Checkpoints counts the checkpoints verified: well formed, chained,
	// signed (when keys were given) and matching the record they cover.
	Checkpoints int `json:"checkpoints"`
	// SignaturesChecked is true when checkpoint signatures were checked
	// against trusted keys.
	SignaturesChecked bool `json:"signatures_checked"`
	// Covered is the last seq a verified checkpoint (or the witness's)
	// covers: records up to it cannot have been cut or rewritten unseen.
	Covered uint64 `json:"covered"`
	// LastCheckpoint is the last verified checkpoint.
	LastCheckpoint *Checkpoint `json:"last_checkpoint,omitempty"`
	// Witness is the checkpoint the witness holds, when one was asked.
	Witness *Checkpoint `json:"witness,omitempty"`
	// Warnings say what this verification could not vouch for, such as
	// records after the last checkpoint or unchecked signatures.
	Warnings []string `json:"warnings,omitempty"`
	// OK is true when the whole trail verified.
	OK bool `json:"ok"`
	// Bad describes the first problem when OK is false.
	Bad *Problem `json:"bad,omitempty"`
}

// Problem names the first place where a trail stops verifying.
type Problem struct {
	// Segment is the segment's file name; for a missing segment, the name
	// it should have. For a problem with a checkpoint it is
	// "checkpoints.jsonl", or "witness" for the witness's checkpoint.
	Segment string `json:"segment"`
	// Line is the 1-based line within the segment (or checkpoints.jsonl),
	// 0 when the problem is the file itself (missing, not a regular file).
	Line int `json:"line"`
	// Seq is the seq the verifier expected at that position; for a problem
	// with a checkpoint, the seq it covers.
	Seq uint64 `json:"seq"`
	// Reason says what is wrong, e.g. "hash mismatch: record altered".
	Reason string `json:"reason"`
	// Checkpoint is the number of the checkpoint involved, if any.
	Checkpoint uint64 `json:"checkpoint,omitempty"`
}

// VerifyOptions say what Verify checks besides the records themselves.
type VerifyOptions struct {
	// Keys are the trusted checkpoint keys (more than one across a key
	// rotation). Without keys, checkpoint signatures are not checked and
	// the report says so; everything else about checkpoints still is.
	Keys []ed25519.PublicKey
	// Witness, when set, is asked for its checkpoint, which must be signed,
	// be in checkpoints.jsonl and be covered by the trail.
	Witness Witness
}

// Verify checks the trail in dir and reports the first problem: a record
// that is altered, removed, inserted, duplicated, reordered or not a record
// at all; a missing segment; and, with checkpoints, a checkpoint that is
// malformed, unsigned by a trusted key, out of chain, or that signed a head
// the trail no longer holds — which reveals a chain recomputed after an
// edit, and records or segments cut off the end. With a witness, it also
// reveals checkpoints cut off together with the records they covered.
//
// Records must form one chain: seq contiguous from 1 across segments in
// numeric order, each record's prev equal to the previous record's hash,
// and each record's hash equal to the SHA-256 of its own bytes. Verify
// streams the trail in constant memory. Its error is only for I/O problems
// (and an unreachable witness); tampering is reported in the Report.
//
// Verify reads the witness first, then notes the length of
// checkpoints.jsonl, then reads the records: a Log makes each durable
// before the one that vouches for it, so a trail being written verifies.
// An incomplete final line is reread for a moment before it is reported,
// as it is usually a batch being written.
//
// Records after the last checkpoint are verified as a chain, but nothing
// shows that more of them were cut off; the report warns how many there
// are.
func Verify(ctx context.Context, dir string, opts VerifyOptions) (*Report, error) {
	v := &verifier{rep: &Report{}}
	if len(opts.Keys) > 0 {
		v.keys = map[string]ed25519.PublicKey{}
		for _, k := range opts.Keys {
			v.keys[KeyID(k)] = k
		}
		v.rep.SignaturesChecked = true
	}
	if opts.Witness != nil {
		c, ok, err := opts.Witness.Latest(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit: verify %s: witness: %w", dir, err)
		}
		if ok {
			v.wit = &c
			v.rep.Witness = &c
		}
	}
	cps, err := openCheckpointReader(dir, v.keys)
	if err != nil {
		return nil, fmt.Errorf("audit: verify %s: %w", dir, err)
	}
	if cps != nil {
		defer cps.f.Close()
	}
	v.cps = cps
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: verify %s: %w", dir, err)
	}
	v.rep.Segments = len(segs)

	bad, err := v.run(ctx, dir, segs)
	if err != nil {
		return nil, err
	}
	rep := v.rep
	rep.Records = v.seq
	rep.Head = hashString(v.seq, &v.hash)
	rep.Bad = bad
	rep.OK = bad == nil
	if rep.OK {
		v.warn()
	}
	return rep, nil
}

// verifier carries the chain from one segment to the next, and the
// checkpoints still to be matched with the records they cover.
type verifier struct {
	lineReader
	p    parser
	seq  uint64 // last good record
	hash [sha256.Size]byte
	rep  *Report
	keys map[string]ed25519.PublicKey

	seg     string // segment being read, and its lines and bytes so far
	lines   int
	off     int64
	retries int // rereads of an incomplete final line

	cps     *checkpointReader // nil when the trail has no checkpoints.jsonl
	pending *Checkpoint       // next checkpoint, not yet matched with its record
	last    *Checkpoint       // last checkpoint matched
	cpBad   *Problem          // a bad checkpoint, reported once the records before it verified
	wit     *Checkpoint       // the witness's checkpoint
	witSeen bool              // it was matched with its record
}

func (v *verifier) run(ctx context.Context, dir string, segs []segment) (*Problem, error) {
	if v.wit != nil {
		if err := v.wit.checkForm(); err != nil {
			return &Problem{Segment: "witness", Seq: v.wit.Seq, Checkpoint: v.wit.N, Reason: "witness checkpoint: " + err.Error()}, nil
		}
		if v.keys != nil {
			if err := v.wit.verifySig(v.keys); err != nil {
				return &Problem{Segment: "witness", Seq: v.wit.Seq, Checkpoint: v.wit.N, Reason: "witness checkpoint: " + err.Error()}, nil
			}
		}
	}
	if bad, err := v.advance(); bad != nil || err != nil {
		return bad, err
	}
	for i, s := range segs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var bad *Problem
		var err error
		switch {
		case s.num != i+1:
			bad = &Problem{Segment: segmentName(i + 1), Reason: "segment missing (records removed)"}
		case !s.regular:
			bad = &Problem{Segment: s.name, Reason: "segment is not a regular file"}
		default:
			bad, err = v.segment(ctx, dir, s.name, i == len(segs)-1)
			if err != nil {
				return nil, err
			}
		}
		if bad != nil {
			if bad.Seq == 0 {
				bad.Seq = v.seq + 1
			}
			return bad, nil
		}
	}
	return v.finish(dir), nil
}

// tornRetries bounds how often Verify rereads an incomplete final line of
// the last segment, and tornWait is how long it waits before each reread:
// on a trail a Log is writing, the line is usually a batch being written,
// complete a moment later. Only a line that stays incomplete, as a crash
// leaves it, is reported.
const (
	tornRetries = 40
	tornWait    = 5 * time.Millisecond
)

// segment verifies one segment, returning the first problem in it. last
// says it is the trail's last segment, which a Log may be writing.
func (v *verifier) segment(ctx context.Context, dir, name string, last bool) (*Problem, error) {
	f, size, err := openSegmentFile(dir, name, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The reader stops where the records end: a segment a Log is writing
	// ends in padding.
	r := io.NewSectionReader(f, 0, size)
	// A buffer no larger than the segment: verifying many small trails
	// should not allocate a large buffer each time.
	if want := int(min(max(size+1, 4<<10), 256<<10)); v.r == nil || v.r.Size() < want {
		v.r = bufio.NewReaderSize(r, want)
	} else {
		v.r.Reset(r)
	}
	v.seg, v.lines, v.off = name, 0, 0
	for {
		line, complete, err := v.next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit: read %s: %w", name, err)
		}
		if !complete && last && len(line) <= maxRecord && v.retries < tornRetries {
			v.retries++
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(tornWait):
			}
			if size, err = recordsEnd(f); err != nil {
				return nil, fmt.Errorf("audit: read %s: %w", name, err)
			}
			v.r.Reset(io.NewSectionReader(f, v.off, max(size-v.off, 0)))
			continue
		}
		v.lines++
		if reason := v.check(line, complete); reason != "" {
			return &Problem{Segment: name, Line: v.lines, Reason: reason}, nil
		}
		v.off += int64(len(line)) + 1
		if bad, err := v.vouch(); bad != nil || err != nil {
			return bad, err
		}
	}
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

// vouch matches the record just verified with the checkpoints (and the
// witness's) that cover it.
func (v *verifier) vouch() (*Problem, error) {
	for v.pending != nil && v.pending.Seq == v.seq {
		c := v.pending
		if bad := v.matches(c, "checkpoint"); bad != nil {
			return bad, nil
		}
		v.last, v.rep.LastCheckpoint = c, c
		v.rep.Checkpoints++
		v.rep.Covered = c.Seq
		if bad, err := v.advance(); bad != nil || err != nil {
			return bad, err
		}
	}
	if v.wit != nil && v.wit.Seq == v.seq {
		if bad := v.matches(v.wit, "the witness's checkpoint"); bad != nil {
			return bad, nil
		}
		v.witSeen = true
		v.rep.Covered = max(v.rep.Covered, v.wit.Seq)
	}
	if v.cpBad != nil && v.seq >= v.cpBad.Seq {
		return v.cpBad, nil
	}
	return nil, nil
}

// matches checks that the record just verified is the one c signed, where
// c says it is.
func (v *verifier) matches(c *Checkpoint, what string) *Problem {
	if hex.EncodeToString(v.hash[:]) != c.Head {
		from := uint64(1)
		if v.last != nil && v.last != c {
			from = v.last.Seq + 1
		}
		return &Problem{Segment: v.seg, Line: v.lines, Seq: v.seq, Checkpoint: c.N, Reason: fmt.Sprintf(
			"chain rewritten: record %d is not the head %s %d signed (a record in seq %d..%d was altered, removed or inserted and the chain recomputed)",
			v.seq, what, c.N, from, v.seq)}
	}
	if c.Segment != v.seg || c.Size != v.off {
		return &Problem{Segment: v.seg, Line: v.lines, Seq: v.seq, Checkpoint: c.N, Reason: fmt.Sprintf(
			"%s %d places record %d at byte %d of %s, found at byte %d of %s (segments merged, split or renamed)",
			what, c.N, v.seq, c.Size, c.Segment, v.off, v.seg)}
	}
	return nil
}

// advance reads the next checkpoint, checks it against the witness's, and
// holds back a bad one until the records before it have verified.
func (v *verifier) advance() (*Problem, error) {
	v.pending = nil
	if v.cps == nil || v.cpBad != nil {
		return nil, nil
	}
	c, bad, err := v.cps.next()
	if err != nil || c == nil && bad == nil {
		return nil, err
	}
	if bad == nil && v.wit != nil && v.wit.N == c.N && v.wit.Hash() != c.Hash() {
		bad = &Problem{Segment: checkpointFile, Line: v.cps.line, Seq: c.Seq, Checkpoint: c.N,
			Reason: fmt.Sprintf("checkpoint %d differs from the witness's checkpoint %d (checkpoints rewritten)", c.N, c.N)}
	}
	if bad != nil {
		if bad.Seq == 0 || bad.Seq <= v.seq {
			return bad, nil
		}
		v.cpBad = bad
		return nil, nil
	}
	v.pending = c
	return nil, nil
}

// finish runs after the last record: whatever a checkpoint or the witness
// covers beyond it was cut off.
func (v *verifier) finish(dir string) *Problem {
	if v.cpBad != nil {
		return v.cpBad
	}
	if c := v.pending; c != nil {
		return v.cut(dir, c, "checkpoint")
	}
	// Every record passed vouch, so a witness not seen is beyond the end.
	if v.wit != nil && !v.witSeen {
		return v.cut(dir, v.wit, "the witness's checkpoint")
	}
	if v.wit != nil && (v.last == nil || v.wit.N > v.last.N) {
		line := 0
		if v.cps != nil {
			line = v.cps.line + 1
		}
		have := uint64(0)
		if v.last != nil {
			have = v.last.N
		}
		return &Problem{Segment: checkpointFile, Line: line, Seq: v.wit.Seq, Checkpoint: v.wit.N, Reason: fmt.Sprintf(
			"checkpoints cut: the witness holds checkpoint %d (seq %d) but %s ends at checkpoint %d", v.wit.N, v.wit.Seq, checkpointFile, have)}
	}
	return nil
}

// cut names the first record missing from a trail that ends before c's
// seq.
func (v *verifier) cut(dir string, c *Checkpoint, what string) *Problem {
	p := &Problem{Segment: v.seg, Line: v.lines + 1, Seq: v.seq + 1, Checkpoint: c.N}
	if p.Segment == "" {
		p.Segment, p.Line = segmentName(1), 1
	}
	reason := fmt.Sprintf("trail cut: %s %d covers records up to seq %d in %s, the trail ends at seq %d", what, c.N, c.Seq, c.Segment, v.seq)
	if c.Segment != v.seg {
		if _, err := os.Lstat(filepath.Join(dir, c.Segment)); errors.Is(err, fs.ErrNotExist) {
			n, _ := segmentNumber(v.seg)
			p.Segment, p.Line = segmentName(n+1), 0
			reason = fmt.Sprintf("segment missing (trail cut): %s %d covers records up to seq %d in %s, the trail ends at seq %d", what, c.N, c.Seq, c.Segment, v.seq)
		}
	}
	p.Reason = reason
	return p
}

// warn notes what an intact trail's verification could not vouch for.
func (v *verifier) warn() {
	r := v.rep
	switch {
	case v.cps == nil && v.seq > 0:
		r.Warnings = append(r.Warnings, "the trail has no checkpoints: records cut off its end would go unnoticed")
	case v.seq > r.Covered:
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d record(s) after seq %d are not covered by a checkpoint yet: records cut off after them would go unnoticed", v.seq-r.Covered, r.Covered))
	}
	if v.cps != nil && !r.SignaturesChecked && r.Checkpoints > 0 {
		r.Warnings = append(r.Warnings, "checkpoint signatures were not checked: no public key given")
	}
	if v.cps != nil && v.cps.torn {
		r.Warnings = append(r.Warnings, "incomplete final line in "+checkpointFile+" ignored (a checkpoint being written, or a crash)")
	}
	if v.wit != nil && v.last != nil && v.wit.N < v.last.N {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the witness holds checkpoint %d, behind the trail's %d", v.wit.N, v.last.N))
	}
}

// checkpointReader reads checkpoints.jsonl as it was when verification
// began, checking each checkpoint's form, signature and place in the chain.
type checkpointReader struct {
	lineReader
	f    *os.File
	keys map[string]ed25519.PublicKey
	line int         // lines read
	prev *Checkpoint // the last good checkpoint
	torn bool        // the file ended in an incomplete line
}

// openCheckpointReader opens checkpoints.jsonl, or returns nil when the
// trail has none.
func openCheckpointReader(dir string, keys map[string]ed25519.PublicKey) (*checkpointReader, error) {
	f, err := os.OpenFile(filepath.Join(dir, checkpointFile), os.O_RDONLY|oNoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", checkpointFile)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	r := &checkpointReader{f: f, keys: keys}
	r.r = bufio.NewReaderSize(io.NewSectionReader(f, 0, fi.Size()), 64<<10)
	return r, nil
}

// next returns the next checkpoint, or why it is bad, or neither at the
// end.
func (r *checkpointReader) next() (*Checkpoint, *Problem, error) {
	line, complete, err := r.lineReader.next()
	if err == io.EOF {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("audit: read %s: %w", checkpointFile, err)
	}
	r.line++
	want := uint64(1)
	if r.prev != nil {
		want = r.prev.N + 1
	}
	bad := func(seq uint64, format string, args ...any) (*Checkpoint, *Problem, error) {
		return nil, &Problem{Segment: checkpointFile, Line: r.line, Seq: seq, Checkpoint: want, Reason: fmt.Sprintf(format, args...)}, nil
	}
	if !complete {
		if len(line) <= maxCheckpoint {
			// Open cuts a torn final checkpoint off; it vouches for nothing.
			r.torn = true
			return nil, nil, nil
		}
		return bad(0, "malformed checkpoint: line too long")
	}
	if len(line) > maxCheckpoint {
		return bad(0, "malformed checkpoint: line too long")
	}
	c, err := parseCheckpoint(line)
	if err != nil {
		return bad(0, "%v", err)
	}
	switch {
	case c.N != want:
		return bad(c.Seq, "checkpoint number %d, expected %d (checkpoints removed, duplicated or reordered)", c.N, want)
	case r.prev != nil && c.Prev != r.prev.Hash():
		return bad(c.Seq, "prev does not match checkpoint %d's hash (checkpoints removed, reordered or rewritten)", r.prev.N)
	case r.prev != nil && c.Seq <= r.prev.Seq:
		return bad(c.Seq, "seq %d does not advance past checkpoint %d's seq %d", c.Seq, r.prev.N, r.prev.Seq)
	}
	if r.keys != nil {
		if err := c.verifySig(r.keys); err != nil {
			return bad(c.Seq, "checkpoint %d: %v", c.N, err)
		}
	}
	r.prev = &c
	return &c, nil, nil
}

// String renders a problem for people: segment, line, expected seq, reason.
func (p *Problem) String() string {
	if p.Line == 0 {
		return fmt.Sprintf("%s (expected seq %d): %s", p.Segment, p.Seq, p.Reason)
	}
	return fmt.Sprintf("%s line %d (expected seq %d): %s", p.Segment, p.Line, p.Seq, p.Reason)
}
