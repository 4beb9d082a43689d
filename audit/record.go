package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The on-disk format. A segment holds one record per line: the encoding/json
// encoding of the Event, with its final '}' replaced by
// `,"hash":"<64 lowercase hex>"}` and a '\n'. The hash is SHA-256 over the
// event's JSON as it was before the hash was spliced in, closing brace
// included, so a verifier never re-marshals: it strips the fixed-length
// suffix, puts the brace back and hashes exactly the bytes that were written.
const (
	segmentPrefix = "trail-"
	segmentSuffix = ".jsonl"
	segmentDigits = 8

	hashField = `,"hash":"`
	// suffixLen is the length of `,"hash":"<64 hex>"}` (without the '\n').
	suffixLen = len(hashField) + 2*sha256.Size + len(`"}`)

	// zeroPrefix is how encoding/json starts an Event whose Seq and Prev are
	// zero. Seq and Prev are the first two fields and never omitted, so the
	// rest of the encoding does not depend on them: Append encodes the rest
	// in the caller's goroutine and the writer only splices in the chain.
	zeroPrefix = `{"seq":0,"prev":""`

	// maxRecord bounds one record's line, so that the verifier and the
	// tail recovery use bounded memory whatever the trail holds.
	maxRecord = 16 << 20
)

// segmentName returns the file name of segment n.
func segmentName(n int) string {
	return fmt.Sprintf("%s%0*d%s", segmentPrefix, segmentDigits, n, segmentSuffix)
}

// segmentNumber returns the number of the segment called name, or false when
// name is not a segment name.
func segmentNumber(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, segmentPrefix)
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, segmentSuffix)
	if !ok || len(digits) != segmentDigits {
		return 0, false
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n > 0
}

// segment is one segment file found in the trail directory.
type segment struct {
	name    string
	num     int
	regular bool
}

// listSegments returns the segments in dir in numeric order.
func listSegments(dir string) ([]segment, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, e := range entries {
		n, ok := segmentNumber(e.Name())
		if !ok {
			continue
		}
		segs = append(segs, segment{name: e.Name(), num: n, regular: e.Type().IsRegular()})
	}
	slices.SortFunc(segs, func(a, b segment) int { return a.num - b.num })
	return segs, nil
}

// appendRecord appends to dst the line of the record with the given seq and
// prev hash whose event encodes, after zeroPrefix, as rest (which ends with
// the event's closing '}'). It returns the extended buffer and the record's
// hash. prev is ignored for seq 1.
func appendRecord(dst []byte, seq uint64, prev *[sha256.Size]byte, rest []byte) ([]byte, [sha256.Size]byte) {
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev":"`...)
	if seq > 1 {
		dst = hex.AppendEncode(dst, prev[:])
	}
	dst = append(dst, '"')
	dst = append(dst, rest...)
	sum := sha256.Sum256(dst[start:])
	dst = dst[:len(dst)-1] // the closing '}' comes back after the hash
	dst = append(dst, hashField...)
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, '"', '}', '\n')
	return dst, sum
}

// record is what the chain needs from one valid line.
type record struct {
	seq  uint64
	prev [sha256.Size]byte
	// noPrev is set when prev is "", which only the first record may have.
	noPrev bool
	hash   [sha256.Size]byte
}

var closingBrace = []byte{'}'}

// errAltered says a line is well formed but its bytes no longer hash to the
// hash it carries.
var errAltered = errors.New("hash mismatch: record altered")

// malformedError says a line is not a record at all (a torn write, garbage).
type malformedError string

func (e malformedError) Error() string { return "malformed record: " + string(e) }

// parser checks lines; it reuses its hash between lines so that a long
// trail is checked without allocating per record.
type parser struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// parse checks that line (without its '\n') is a record whose hash matches
// its bytes and returns its seq, prev and hash. The error is errAltered or a
// malformedError.
func (p *parser) parse(line []byte) (record, error) {
	var r record
	n := len(line)
	switch {
	case n == 0:
		return r, malformedError("empty line")
	case n > maxRecord:
		return r, malformedError("line too long")
	case n < len(`{"seq":1,"prev":""`)+suffixLen:
		return r, malformedError("line too short")
	}
	s := line[n-suffixLen:]
	if string(s[:len(hashField)]) != hashField || string(s[suffixLen-2:]) != `"}` {
		return r, malformedError("no hash at the end of the line")
	}
	// Lowercase only: accepting 'A' for 'a' would let a byte of the hash
	// change without the hash changing.
	if !decodeLowerHex(r.hash[:], s[len(hashField):suffixLen-2]) {
		return r, malformedError("hash is not 64 lowercase hex digits")
	}
	if p.h == nil {
		p.h = sha256.New()
	}
	p.h.Reset()
	p.h.Write(line[:n-suffixLen])
	p.h.Write(closingBrace)
	if [sha256.Size]byte(p.h.Sum(p.sum[:0])) != r.hash {
		return r, errAltered
	}

	// The hash vouches for the rest of the bytes as much as the chain
	// vouches for the hash, so the JSON is not re-validated: seq and prev
	// are read from the fixed prefix encoding/json always writes.
	b, ok := bytes.CutPrefix(line, []byte(`{"seq":`))
	if !ok {
		return r, malformedError("no seq")
	}
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if r.seq > (1<<64-1-d)/10 {
			return r, malformedError("seq overflows")
		}
		r.seq = r.seq*10 + d
	}
	if i == 0 || b[0] == '0' {
		return r, malformedError("seq is not a positive integer")
	}
	b, ok = bytes.CutPrefix(b[i:], []byte(`,"prev":"`))
	if !ok {
		return r, malformedError("no prev")
	}
	if len(b) > 0 && b[0] == '"' {
		r.noPrev = true
		b = b[1:]
	} else {
		const h = 2 * sha256.Size
		if len(b) <= h || b[h] != '"' || !decodeLowerHex(r.prev[:], b[:h]) {
			return r, malformedError("prev is not 64 lowercase hex digits")
		}
		b = b[h+1:]
	}
	if len(b) == 0 || b[0] != ',' {
		return r, malformedError("no event after prev")
	}
	return r, nil
}

// decodeLowerHex decodes exactly 2*len(dst) lowercase hex digits from src.
func decodeLowerHex(dst, src []byte) bool {
	if len(src) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := lowerHexDigit(src[2*i])
		lo, ok2 := lowerHexDigit(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// lineReader reads the lines of a segment in bounded memory.
type lineReader struct {
	r    *bufio.Reader
	long []byte // a line longer than r's buffer
}

// next returns the next line without its '\n'; complete is false for a
// final line without one, and for a line too long to be a record (of which
// only the start is returned). It returns io.EOF at the end of the input.
// The line is valid until the next call.
func (lr *lineReader) next() (line []byte, complete bool, err error) {
	b, err := lr.r.ReadSlice('\n')
	if err == nil {
		return b[:len(b)-1], true, nil
	}
	if err != bufio.ErrBufferFull {
		if err == io.EOF && len(b) == 0 {
			return nil, false, io.EOF
		}
		if err != io.EOF {
			return nil, false, err
		}
		return b, false, nil
	}
	lr.long = append(lr.long[:0], b...)
	for len(lr.long) <= maxRecord {
		b, err = lr.r.ReadSlice('\n')
		lr.long = append(lr.long, b...)
		switch err {
		case nil:
			return lr.long[:len(lr.long)-1], true, nil
		case bufio.ErrBufferFull:
		case io.EOF:
			return lr.long, false, nil
		default:
			return nil, false, err
		}
	}
	return lr.long, false, nil
}

// recordTime reads a record's time from the fixed prefix encoding/json
// writes, {"seq":N,"prev":"...","time":"...", without decoding the rest.
func recordTime(line []byte) (time.Time, bool) {
	const key = `,"time":"`
	head := line[:min(len(line), 128)]
	i := bytes.Index(head, []byte(key))
	if i < 0 {
		return time.Time{}, false
	}
	rest := line[i+len(key):]
	j := bytes.IndexByte(rest[:min(len(rest), 40)], '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t, err == nil
}
