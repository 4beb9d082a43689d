package anonymize

import (
	"bytes"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"
)

// Shape says where the records sit in an upstream body.
type Shape struct {
	// Records is the top-level member holding the array of records; empty
	// when the body is the array itself.
	Records string
	// Meta are top-level scalar members passed through after the records
	// (for example page and page_size).
	Meta []string
	// Counts are top-level scalar members passed through only when the row
	// conditions removed no record and the plan suppresses no small cells
	// (for example total): a count of records the caller may not see would
	// leak.
	Counts []string
	// Filtered, when set, is the member under which the number of records
	// the row conditions removed is written, when it is not 0.
	Filtered string
	// Watch names top-level fields of a record whose values, as the
	// upstream sent them (before any treatment, released or not), are
	// handed to Seen for each record released, in the order released.
	// The gateway learns whose records it released (the privacy unit) and
	// which (the record's id) without reading the body twice.
	Watch []string
	// Seen receives the values of Watch's fields, by position, of each
	// record released; a field the record lacks has a zero Value. The
	// values are valid only during the call.
	Seen func(vals []Value)
}

// Limits bound what a transform holds and reads.
type Limits struct {
	// MaxRecordBytes caps one record, and any other top-level member
	// (default 1 MiB).
	MaxRecordBytes int
	// MaxBodyBytes caps the whole body; 0 means no cap.
	MaxBodyBytes int64
}

// Stats describe one transform.
type Stats struct {
	Records    int   // records read from the upstream
	Released   int   // records written
	Filtered   int   // records removed by row conditions
	Suppressed int   // records removed by small-cell suppression
	Truncated  bool  // records withheld by MaxRows
	Fallbacks  int   // released values redacted because their operator could not handle them
	BytesIn    int64 // body bytes read
	BytesOut   int64 // bytes written
}

// OutputRecords is the member under which released records are written.
const OutputRecords = "items"

// transformer holds one transform's scratch space; pooled.
type transformer struct {
	plan  *Plan
	env   *Env
	in    stream
	rec   []byte
	out   []byte
	dst   io.Writer
	seen  [][]bool
	met   []bool
	large bool // the record's count passes suppression
	watch []string
	seen1 func([]Value)
	vals  []Value // the watched fields' values of the record being read
	stats Stats
	werr  error
}

var transformers = sync.Pool{New: func() any { return new(transformer) }}

// Transform reads an upstream body from r and writes to w the body the plan
// releases: {"items": [...], meta...}. Only named fields of records that
// meet every row condition are written, each through its operator. Any
// syntax error, shape error, repeated key, oversized record or read error
// fails the transform; w may then hold partial output, which the caller must
// discard.
func (p *Plan) Transform(w io.Writer, r io.Reader, shape Shape, env *Env, lim Limits) (Stats, error) {
	t := transformers.Get().(*transformer)
	defer func() {
		t.plan, t.env, t.dst, t.in.r = nil, nil, nil, nil
		t.watch, t.seen1 = nil, nil
		clear(t.vals)
		transformers.Put(t)
	}()
	if lim.MaxRecordBytes <= 0 {
		lim.MaxRecordBytes = 1 << 20
	}
	t.plan, t.env, t.dst, t.werr = p, env, w, nil
	t.watch, t.seen1 = nil, nil
	if shape.Seen != nil && len(shape.Watch) > 0 {
		t.watch, t.seen1 = shape.Watch, shape.Seen
		t.vals = slices.Grow(t.vals[:0], len(t.watch))[:len(t.watch)]
	}
	t.stats = Stats{}
	t.out = t.out[:0]
	t.in.reset(r, lim.MaxBodyBytes)
	if cap(t.met) < len(p.conds) {
		t.met = make([]bool, len(p.conds))
	}
	t.met = t.met[:len(p.conds)]
	env.start()
	defer env.finish()
	err := t.body(shape, lim)
	t.stats.BytesIn = t.in.off + int64(t.in.pos)
	if err == nil {
		t.flush()
		err = t.werr
	}
	return t.stats, err
}

func (t *transformer) body(shape Shape, lim Limits) error {
	t.out = append(t.out, `{"`+OutputRecords+`":[`...)
	if shape.Records == "" {
		if err := t.records(lim); err != nil {
			return err
		}
		t.out = append(t.out, ']')
		t.out = t.appendFiltered(t.out, shape)
		t.out = append(t.out, '}')
		return t.in.atEOF()
	}
	if c, ok := t.in.peek(); ok && c != '{' {
		return t.wrongKind("body", "an object", lim)
	}
	if _, err := t.in.expect("{", "'{' opening the body"); err != nil {
		return err
	}
	type member struct {
		name string
		raw  []byte
	}
	var meta []member
	seenRecords := false
	if c, ok := t.in.peek(); ok && c == '}' {
		t.in.pos++
	} else {
		for {
			var err error
			if t.rec, err = t.in.capture(t.rec[:0], lim.MaxRecordBytes); err != nil {
				return err
			}
			if len(t.rec) == 0 || t.rec[0] != '"' {
				return &SyntaxError{Offset: t.in.off + int64(t.in.pos), Msg: "expected a member name"}
			}
			end, _, err := scanString(t.rec, 0)
			if err != nil {
				return err
			}
			if end != len(t.rec) {
				return &SyntaxError{Offset: t.in.off + int64(t.in.pos), Msg: "malformed member name"}
			}
			name := decodeString(t.rec)
			if _, err := t.in.expect(":", "':'"); err != nil {
				return err
			}
			isMeta := contains(shape.Meta, name) || contains(shape.Counts, name)
			for _, m := range meta {
				if m.name == name {
					return shapeErr("member %q repeated", name)
				}
			}
			switch {
			case name == shape.Records:
				if seenRecords {
					return shapeErr("member %q repeated", name)
				}
				seenRecords = true
				if err := t.records(lim); err != nil {
					return err
				}
			default:
				if t.rec, err = t.in.capture(t.rec[:0], lim.MaxRecordBytes); err != nil {
					return err
				}
				end, err := scanValue(t.rec, 0, 0)
				if err != nil {
					return err
				}
				if end != len(t.rec) {
					return &SyntaxError{Offset: t.in.off + int64(t.in.pos), Msg: "malformed value"}
				}
				if isMeta {
					// Metadata passes as keep passes a scalar, so a string
					// is written as valid UTF-8 with U+2028/9 escaped;
					// objects and arrays are dropped (raw stays nil).
					m := member{name: name}
					v := Value{Raw: t.rec, Kind: kindOf(t.rec[0])}
					if v.Kind == String {
						_, v.plain, _ = scanString(t.rec, 0)
					}
					if raw, ok := (keepOp{}).Apply(nil, v, nil); ok {
						m.raw = raw
					}
					meta = append(meta, m)
				}
			}
			c, err := t.in.expect(",}", "',' or '}'")
			if err != nil {
				return err
			}
			if c == '}' {
				break
			}
		}
	}
	if err := t.in.atEOF(); err != nil {
		return err
	}
	if !seenRecords {
		return shapeErr("no %q member", shape.Records)
	}
	t.out = append(t.out, ']')
	for _, m := range meta {
		if m.raw == nil || (contains(shape.Counts, m.name) && (t.stats.Filtered > 0 || t.plan.suppress != nil)) {
			continue
		}
		t.out = append(t.out, ',')
		t.out = appendString(t.out, m.name)
		t.out = append(t.out, ':')
		t.out = append(t.out, m.raw...)
	}
	t.out = t.appendFiltered(t.out, shape)
	t.out = append(t.out, '}')
	return nil
}

// appendFiltered appends `,"<shape.Filtered>":N` when the shape asks and
// the row conditions removed N > 0 records of the body: a page that comes
// back short, or empty, says why. It tells nothing the caller could not
// count (the page size asked for, less the records received).
func (t *transformer) appendFiltered(dst []byte, shape Shape) []byte {
	if shape.Filtered == "" || t.stats.Filtered == 0 {
		return dst
	}
	dst = append(dst, ',')
	dst = appendString(dst, shape.Filtered)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, int64(t.stats.Filtered), 10)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// records transforms the records array, one record in memory at a time.
func (t *transformer) records(lim Limits) error {
	if c, ok := t.in.peek(); ok && c != '[' {
		return t.wrongKind("records", "an array", lim)
	}
	if _, err := t.in.expect("[", "'[' opening the records"); err != nil {
		return err
	}
	if c, ok := t.in.peek(); ok && c == ']' {
		t.in.pos++
		return nil
	}
	for {
		done, err := t.recordInPlace(lim)
		if err != nil {
			return err
		}
		if !done {
			if t.rec, err = t.in.capture(t.rec[:0], lim.MaxRecordBytes); err != nil {
				return err
			}
			if _, err := t.record(t.rec, true); err != nil {
				return err
			}
		}
		c, err := t.in.expect(",]", "',' or ']'")
		if err != nil {
			return err
		}
		if c == ']' {
			return nil
		}
	}
}

// wrongKind reads the value found where what, which must be want, was
// expected. Valid JSON of another kind is a shape error, as the ShapeError
// contract says; anything else is a syntax error.
func (t *transformer) wrongKind(what, want string, lim Limits) error {
	var err error
	if t.rec, err = t.in.capture(t.rec[:0], lim.MaxRecordBytes); err != nil {
		return err
	}
	end, err := scanValue(t.rec, 0, 0)
	if err != nil {
		return err
	}
	if end != len(t.rec) {
		return &SyntaxError{Offset: t.in.off + int64(t.in.pos), Msg: "malformed " + what}
	}
	return shapeErr("%s: want %s, got %s", what, want, kindOf(t.rec[0]))
}

// recordInPlace transforms the next record straight from the read buffer
// when it is an object held there whole, which spares capturing it first.
// It reports false, having changed nothing, when the record is not (or not
// yet) all in the buffer or is not well-formed: the caller then captures it
// and record reports what is wrong with it.
func (t *transformer) recordInPlace(lim Limits) (bool, error) {
	if c, ok := t.in.peek(); !ok || c != '{' {
		return false, nil
	}
	b := t.in.buf[t.in.pos:t.in.end]
	if len(b) > lim.MaxRecordBytes {
		b = b[:lim.MaxRecordBytes] // a longer record fails here, and capture refuses it
	}
	mark, stats := len(t.out), t.stats
	end, err := t.record(b, false)
	if t.werr != nil { // released, and writing it failed
		return false, t.werr
	}
	if err != nil {
		t.out, t.stats = t.out[:mark], stats
		return false, nil
	}
	t.in.pos += end
	return true, nil
}

// record validates and transforms the record at the start of rec,
// appending it to the output when it meets the row conditions and the row
// cap allows. When whole, rec must be exactly the record; otherwise the
// record may be followed by more. It returns where the record ends.
func (t *transformer) record(rec []byte, whole bool) (int, error) {
	t.stats.Records++
	if rec[0] != '{' {
		if _, err := scanValue(rec, 0, 0); err != nil {
			return 0, err
		}
		return 0, shapeErr("record %d is not an object", t.stats.Records)
	}
	for i := range t.met {
		t.met[i] = false
	}
	t.large = false
	clear(t.vals)
	mark, fallbacks := len(t.out), t.stats.Fallbacks
	if t.stats.Released > 0 {
		t.out = append(t.out, ',')
	}
	out, end, err := t.object(t.out, rec, 0, t.plan.root, 1, true)
	if err != nil {
		return 0, err
	}
	if whole && end != len(rec) {
		return 0, &SyntaxError{Offset: t.in.off + int64(t.in.pos), Msg: "malformed record"}
	}
	// A record that is not released takes its fallbacks with it: Stats
	// describe what the caller receives.
	for _, ok := range t.met {
		if !ok {
			t.out, t.stats.Fallbacks = out[:mark], fallbacks
			t.stats.Filtered++
			return end, nil
		}
	}
	if t.plan.suppress != nil && !t.large {
		t.out, t.stats.Fallbacks = out[:mark], fallbacks
		t.stats.Suppressed++
		return end, nil
	}
	if t.plan.maxRows > 0 && t.stats.Released >= t.plan.maxRows {
		t.out, t.stats.Fallbacks = out[:mark], fallbacks
		t.stats.Truncated = true
		return end, nil
	}
	t.out = out
	t.stats.Released++
	if t.seen1 != nil {
		t.seen1(t.vals)
	}
	if len(t.out) >= 32<<10 {
		t.flush()
	}
	return end, t.werr
}

func (t *transformer) flush() {
	if t.werr != nil || len(t.out) == 0 {
		return
	}
	n, err := t.dst.Write(t.out)
	t.stats.BytesOut += int64(n)
	t.werr = err
	t.out = t.out[:0]
}

// object walks the object at b[i], appending the members n names, each
// through its treatment. At the top level it also evaluates row conditions.
func (t *transformer) object(dst, b []byte, i int, n *node, depth int, top bool) ([]byte, int, error) {
	if depth > maxDepth {
		return dst, i, errDepth
	}
	for len(t.seen) <= depth {
		t.seen = append(t.seen, nil)
	}
	seen := t.seen[depth]
	if cap(seen) < len(n.children) {
		seen = make([]bool, len(n.children))
	}
	seen = seen[:len(n.children)]
	for k := range seen {
		seen[k] = false
	}
	t.seen[depth] = seen

	dst = append(dst, '{')
	first := true
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return append(dst, '}'), i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return dst, i, synErr(i, "expected a member name")
		}
		kstart := i
		kend, plain, err := scanString(b, i)
		if err != nil {
			return dst, i, err
		}
		var child *node
		if plain {
			child = n.children[string(b[i+1:kend-1])]
		} else {
			child = n.children[decodeString(b[i:kend])]
		}
		i = skipWS(b, kend)
		if i >= len(b) || b[i] != ':' {
			return dst, i, synErr(i, "expected ':'")
		}
		i = skipWS(b, i+1)
		vstart := i
		vplain := false
		if i < len(b) && b[i] == '"' {
			i, vplain, err = scanString(b, i)
		} else {
			i, err = scanValue(b, i, depth)
		}
		if err != nil {
			return dst, i, err
		}
		if top && t.watch != nil {
			if err := t.watched(b, kstart, kend, Value{Raw: b[vstart:i], Kind: kindOf(b[vstart]), plain: vplain}); err != nil {
				return dst, i, err
			}
		}
		if child != nil {
			if seen[child.pos] {
				return dst, i, shapeErr("record %d repeats %q", t.stats.Records, child.name)
			}
			seen[child.pos] = true
			v := Value{Raw: b[vstart:i], Kind: kindOf(b[vstart]), plain: vplain}
			if top {
				for _, ci := range child.conds {
					t.met[ci] = t.plan.conds[ci].match(v)
				}
				if child.count {
					t.large = countAtLeast(v, t.plan.suppress.Below)
				}
			}
			if child.op != nil || child.children != nil || child.elem != nil {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = append(dst, child.member...)
				if dst, err = t.value(dst, v, child, depth); err != nil {
					return dst, i, err
				}
			}
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return dst, i, synErr(i, "unterminated object")
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return append(dst, '}'), i + 1, nil
		default:
			return dst, i, synErr(i, "expected ',' or '}'")
		}
	}
}

// watched keeps v when the member named by b[kstart:kend] is a watched
// field of the record. A record naming a watched field twice is refused,
// as one repeating a field of the plan is: whose record it is must not
// depend on which of two values a reader takes.
func (t *transformer) watched(b []byte, kstart, kend int, v Value) error {
	name := b[kstart+1 : kend-1]
	escaped := bytes.IndexByte(name, '\\') >= 0
	var dec string
	if escaped {
		dec = decodeString(b[kstart:kend])
	}
	for k, w := range t.watch {
		if (escaped && w == dec) || (!escaped && w == string(name)) {
			if t.vals[k].Raw != nil {
				return shapeErr("record %d repeats %q", t.stats.Records, w)
			}
			t.vals[k] = v
		}
	}
	return nil
}

// value appends v released through n: its operator, or its named parts.
func (t *transformer) value(dst []byte, v Value, n *node, depth int) ([]byte, error) {
	if n.op != nil {
		out, ok := n.op.Apply(dst, v, t.env)
		if !ok {
			t.stats.Fallbacks++
			return append(dst, redactedToken...), nil
		}
		return out, nil
	}
	switch {
	case v.Kind == Object && n.children != nil:
		out, _, err := t.object(dst, v.Raw, 0, n, depth+1, false)
		return out, err
	case v.Kind == Array && n.elem != nil:
		return t.array(dst, v.Raw, n.elem, depth+1)
	}
	t.stats.Fallbacks++
	return append(dst, redactedToken...), nil
}

// array appends each element of the (validated) array b released through
// elem.
func (t *transformer) array(dst, b []byte, elem *node, depth int) ([]byte, error) {
	dst = append(dst, '[')
	i := skipWS(b, 1)
	first := true
	for i < len(b) && b[i] != ']' {
		start := i
		plain := false
		var err error
		if b[i] == '"' {
			i, plain, err = scanString(b, i)
		} else {
			i, err = scanValue(b, i, depth)
		}
		if err != nil {
			return dst, err
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		if dst, err = t.value(dst, Value{Raw: b[start:i], Kind: kindOf(b[start]), plain: plain}, elem, depth); err != nil {
			return dst, err
		}
		i = skipWS(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return append(dst, ']'), nil
}

// countAtLeast reports whether v is a finite number of at least k. Any
// other value fails, so a count the transform cannot read is suppressed.
func countAtLeast(v Value, k int) bool {
	f, ok := v.Float()
	return ok && !math.IsNaN(f) && !math.IsInf(f, 0) && f >= float64(k)
}
