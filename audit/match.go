package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicegw/sluice/internal/jsonscan"
)

// Searching a trail of millions of records cannot afford to decode each
// one. A matcher first looks for the query's values as they are encoded in
// a matching record (`"subject":"alice"`): bytes.Contains rejects most lines
// at memory speed, and a line that lacks one of them cannot match. A line
// that has them all is then read field by field at its top level, without
// decoding, to rule out the same bytes elsewhere (in a map of obligations,
// say). Only records that match are decoded.

// matcher decides whether a record line matches a Query.
type matcher struct {
	needles      [][]byte // every one is in a matching line
	subject      []byte   // wanted values, JSON-encoded without quotes; nil: any
	source       []byte
	dataset      []byte
	action       []byte
	decision     []byte
	requestID    []byte
	object       []byte // matches the record's object or grant
	status       []byte
	since, until time.Time
	exact        bool // some field must be compared exactly
	tf           topFields
}

// Decisions are the values Event.Decision takes.
var decisions = map[string]bool{"allow": true, "deny": true, "error": true}

// ErrBadQuery wraps the reasons a Query is refused.
var ErrBadQuery = errors.New("audit: bad query")

func newMatcher(q *Query) (*matcher, error) {
	bad := func(format string, args ...any) (*matcher, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadQuery, fmt.Sprintf(format, args...))
	}
	if q.Decision != "" && !decisions[q.Decision] {
		return bad("decision %q is not allow, deny or error", q.Decision)
	}
	if q.Status != 0 && (q.Status < 100 || q.Status > 599) {
		return bad("status %d is not an HTTP status", q.Status)
	}
	if q.Dataset != "" && q.Source == "" {
		return bad("a dataset needs its source")
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return bad("since %s is not before until %s", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	if q.Limit < 0 {
		return bad("limit %d is negative", q.Limit)
	}
	m := &matcher{since: q.Since, until: q.Until}
	field := func(key, value string) []byte {
		if value == "" {
			return nil
		}
		enc, _ := json.Marshal(value) // escaped as the Log's encoder escapes
		// Without the key's opening quote: bytes.Index scans for a needle's
		// first byte, and a quote is the commonest byte of a JSON line.
		m.needles = append(m.needles, append([]byte(key+`":`), enc...))
		m.exact = true
		return enc[1 : len(enc)-1]
	}
	// The rarest values first: the first needle missing ends the test.
	m.requestID = field("request_id", q.RequestID)
	if q.Object != "" {
		// The object or the grant: the value, quoted, is in the line.
		enc, _ := json.Marshal(q.Object)
		m.needles = append(m.needles, enc)
		m.object, m.exact = enc[1:len(enc)-1], true
	}
	m.subject = field("subject", q.Subject)
	m.dataset = field("dataset", q.Dataset)
	m.source = field("source", q.Source)
	if q.Status != 0 {
		m.status = strconv.AppendInt(nil, int64(q.Status), 10)
		// Status is never the last member, so its number ends at a comma.
		m.needles = append(m.needles, []byte(`status":`+string(m.status)+`,`))
		m.exact = true
	}
	m.action = field("action", q.Action)
	m.decision = field("decision", q.Decision)
	return m, nil
}

// inTime reports whether t is in [since, until).
func (m *matcher) inTime(t time.Time) bool {
	return (m.since.IsZero() || !t.Before(m.since)) && (m.until.IsZero() || t.Before(m.until))
}

// match reports whether line, a complete record line, matches.
func (m *matcher) match(line []byte) bool {
	for _, n := range m.needles {
		if !bytes.Contains(line, n) {
			return false
		}
	}
	if !m.since.IsZero() || !m.until.IsZero() {
		t, ok := recordTime(line)
		if !ok || !m.inTime(t) {
			return false
		}
	}
	if !m.exact {
		return true
	}
	if !m.tf.scan(line, m.status != nil) {
		return m.matchDecoded(line)
	}
	t := &m.tf
	return eqOpt(m.requestID, t.requestID) && (eqOpt(m.object, t.object) || eqOpt(m.object, t.grant)) && eqOpt(m.subject, t.subject) &&
		eqOpt(m.source, t.source) && eqOpt(m.dataset, t.dataset) &&
		eqOpt(m.status, t.status) && eqOpt(m.action, t.action) && eqOpt(m.decision, t.decision)
}

// matchDecoded matches a line the top-level reader could not follow, such
// as one with whitespace encoding/json never writes.
func (m *matcher) matchDecoded(line []byte) bool {
	var e Event
	if json.Unmarshal(line, &e) != nil {
		return false
	}
	enc := func(s string) []byte {
		b, _ := json.Marshal(s)
		return b[1 : len(b)-1]
	}
	return eqOpt(m.requestID, enc(e.RequestID)) && (eqOpt(m.object, enc(e.Object)) || eqOpt(m.object, enc(e.Grant))) &&
		eqOpt(m.subject, enc(e.Subject)) &&
		eqOpt(m.source, enc(e.Source)) && eqOpt(m.dataset, enc(e.Dataset)) &&
		eqOpt(m.status, strconv.AppendInt(nil, int64(e.Status), 10)) &&
		eqOpt(m.action, enc(e.Action)) && eqOpt(m.decision, enc(e.Decision))
}

// eqOpt reports whether got is want, or want is nil (any).
func eqOpt(want, got []byte) bool {
	return want == nil || bytes.Equal(want, got)
}

// topFields are the top-level members of a record line that searches and
// summaries read, as raw bytes: strings without their quotes, still
// escaped. A member that is absent is nil.
type topFields struct {
	requestID, subject, source, dataset []byte
	grant, object                       []byte
	action, phase, decision, status     []byte
}

// scan reads the top-level members of line, a JSON object as encoding/json
// writes it (no whitespace), without decoding it. It returns false when the
// line is not such an object. Unless all is set it stops after "decision":
// the Event encodes every member it reads but status before it, so the
// obligations need not be skipped.
func (t *topFields) scan(b []byte, all bool) bool {
	*t = topFields{}
	if len(b) < 2 || b[0] != '{' {
		return false
	}
	i := 1
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		// The Event's keys need no escaping, so a key ends at the next quote.
		j := bytes.IndexByte(b[i+1:], '"')
		if j < 0 {
			return false
		}
		key := b[i+1 : i+1+j]
		i += j + 2
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i++
		end, ok := jsonscan.SkipValue(b, i)
		if !ok {
			return false
		}
		val := b[i:end]
		if len(val) >= 2 && val[0] == '"' {
			val = val[1 : len(val)-1]
		}
		switch string(key) {
		case "request_id":
			t.requestID = val
		case "subject":
			t.subject = val
		case "source":
			t.source = val
		case "dataset":
			t.dataset = val
		case "grant":
			t.grant = val
		case "object":
			t.object = val
		case "action":
			t.action = val
		case "phase":
			t.phase = val
		case "decision":
			t.decision = val
			if !all {
				return true
			}
		case "status":
			t.status = val
		}
		i = end
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '}':
			return i == len(b)-1
		case ',':
			i++
		default:
			return false
		}
	}
}

// jsonString decodes a raw string member read by topFields.
func jsonString(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var s string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	if json.Unmarshal(q, &s) != nil {
		return string(raw)
	}
	return s
}
