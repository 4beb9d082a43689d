package audit

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/internal/jsonstr"
)

// appendEvent appends the JSON encoding of e to dst, byte for byte what
// json.Marshal(e) produces (HTML escaping on, no trailing newline; what the
// Log's json.Encoder writes less its newline), without reflection and
// without allocating beyond growing dst. Exceptions: a map with more than
// mapKeysOnStack entries costs one allocation to sort them, and the error
// paths use reflect to build the error values encoding/json returns.
//
// It fails where json.Marshal fails, with an error whose message is the same:
// a Time whose year is outside [0,9999] or whose zone offset is 24 hours or
// more, and a NaN or infinite float that is encoded (one that omitempty
// leaves out is never looked at, as in encoding/json). On error it returns
// dst as it was given, with nothing appended.
//
// It must be kept in step with the fields and tags of Event, Obligations,
// ShadowDiff and Released; TestAppendEventCoversEveryField fails when a field is added that
// it does not encode.
func appendEvent(dst []byte, e *Event) ([]byte, error) {
	n0 := len(dst)
	var err error
	// str appends a field holding a string; opt one left out when empty
	// (omitempty).
	str := func(key, v string) {
		dst = append(dst, key...)
		dst = jsonstr.Append(dst, v)
	}
	opt := func(key, v string) {
		if v != "" {
			str(key, v)
		}
	}

	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	str(`,"prev":`, e.Prev)
	dst = append(dst, `,"time":`...)
	if dst, err = appendJSONTime(dst, e.Time); err != nil {
		return dst[:n0], err
	}
	str(`,"request_id":`, e.RequestID)
	opt(`,"subject":`, e.Subject)
	if len(e.Roles) != 0 {
		dst = append(dst, `,"roles":`...)
		dst = appendJSONStrings(dst, e.Roles)
	}
	opt(`,"purpose":`, e.Purpose)
	opt(`,"client":`, e.Client)
	opt(`,"org":`, e.Org)
	str(`,"action":`, e.Action)
	opt(`,"phase":`, e.Phase)
	opt(`,"source":`, e.Source)
	opt(`,"dataset":`, e.Dataset)
	opt(`,"grant":`, e.Grant)
	opt(`,"object":`, e.Object)
	str(`,"method":`, e.Method)
	str(`,"path":`, e.Path)
	if len(e.Query) != 0 {
		dst = append(dst, `,"query":`...)
		dst = appendJSONMap(dst, e.Query, appendJSONStrings)
	}
	str(`,"decision":`, e.Decision)
	opt(`,"reason":`, e.Reason)
	opt(`,"stage":`, e.Stage)
	if c := e.Change; c != nil {
		str(`,"change":{"from":`, c.From)
		str(`,"to":`, c.To)
		dst = append(dst, '}')
	}
	if e.Obligations != nil {
		dst = append(dst, `,"obligations":`...)
		if dst, err = appendJSONObligations(dst, e.Obligations); err != nil {
			return dst[:n0], err
		}
	}
	dst = append(dst, `,"rows":`...)
	dst = strconv.AppendInt(dst, int64(e.Rows), 10)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	opt(`,"code":`, e.Code)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, e.Bytes, 10)
	dst = append(dst, `,"duration_ms":`...)
	if dst, err = appendJSONFloat(dst, e.DurationMS); err != nil {
		return dst[:n0], err
	}
	opt(`,"policy_revision":`, e.PolicyRevision)
	if e.EpsilonRequested != 0 {
		dst = append(dst, `,"epsilon_requested":`...)
		if dst, err = appendJSONFloat(dst, e.EpsilonRequested); err != nil {
			return dst[:n0], err
		}
	}
	if len(e.Flags) != 0 {
		dst = append(dst, `,"flags":`...)
		dst = appendJSONStrings(dst, e.Flags)
	}
	if e.Shadow != nil {
		str(`,"shadow":{"revision":`, e.Shadow.Revision)
		dst = append(dst, `,"differences":`...)
		dst = appendJSONStrings(dst, e.Shadow.Differences)
		dst = append(dst, '}')
	}
	if r := e.Released; r != nil {
		dst = append(dst, `,"released":{`...)
		comma := false
		if len(r.Units) != 0 {
			dst = append(dst, `"units":`...)
			dst = appendJSONStrings(dst, r.Units)
			comma = true
		}
		if len(r.Records) != 0 {
			if comma {
				dst = append(dst, ',')
			}
			dst = append(dst, `"records":`...)
			dst = appendJSONStrings(dst, r.Records)
			comma = true
		}
		for _, n := range [...]struct {
			name  string
			value int
		}{{`"disputed":`, r.Disputed}, {`"part":`, r.Part}, {`"parts":`, r.Parts}} {
			if n.value != 0 {
				if comma {
					dst = append(dst, ',')
				}
				dst = append(dst, n.name...)
				dst = strconv.AppendInt(dst, int64(n.value), 10)
				comma = true
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, '}'), nil
}

// appendJSONObligations appends o as encoding/json does; every field of
// Obligations is omitempty, so an Obligations with none set is {}.
func appendJSONObligations(dst []byte, o *Obligations) ([]byte, error) {
	// name appends the next field's name, after '{' for the first field
	// and ',' for the others.
	sep := byte('{')
	name := func(key string) {
		dst = append(dst, sep)
		dst = append(dst, key...)
		sep = ','
	}
	if len(o.Fields) != 0 {
		name(`"fields":`)
		dst = appendJSONMap(dst, o.Fields, jsonstr.Append)
	}
	for _, f := range [...]struct {
		key string
		v   []string
	}{{`"dropped":`, o.Dropped}, {`"rows":`, o.Rows}, {`"params":`, o.Params}} {
		if len(f.v) != 0 {
			name(f.key)
			dst = appendJSONStrings(dst, f.v)
		}
	}
	for _, f := range [...]struct {
		key string
		v   int
	}{{`"max_rows":`, o.MaxRows}, {`"fallbacks":`, o.Fallbacks}, {`"suppressed":`, o.Suppressed},
		{`"min_k":`, o.MinK}, {`"min_l":`, o.MinL}} {
		if f.v != 0 {
			name(f.key)
			dst = strconv.AppendInt(dst, int64(f.v), 10)
		}
	}
	for _, f := range [...]struct {
		key string
		v   string
	}{{`"population":`, o.Population}, {`"allocation":`, o.Allocation}, {`"period":`, o.Period}, {`"accounting":`, o.Accounting}} {
		if f.v != "" {
			name(f.key)
			dst = jsonstr.Append(dst, f.v)
		}
	}
	var err error
	for _, f := range [...]struct {
		key string
		v   float64
	}{
		{`"epsilon_spent":`, o.EpsilonSpent},
		{`"rho_spent":`, o.RhoSpent},
		{`"delta_spent":`, o.DeltaSpent},
		{`"consumer_budget":`, o.ConsumerBudget},
		{`"org_budget":`, o.OrgBudget},
	} {
		if f.v == 0 { // omitempty: true for -0 too
			continue
		}
		name(f.key)
		if dst, err = appendJSONFloat(dst, f.v); err != nil {
			return dst, err
		}
	}
	if sep == '{' {
		return append(dst, '{', '}'), nil
	}
	return append(dst, '}'), nil
}

// appendJSONStrings appends ss as a JSON array, null when ss is nil.
func appendJSONStrings(dst []byte, ss []string) []byte {
	if ss == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonstr.Append(dst, s)
	}
	return append(dst, ']')
}

// mapKeysOnStack is how many entries a map may have for them to be sorted
// without allocating.
const mapKeysOnStack = 32

// mapEntry is a map entry, gathered to be sorted by key.
type mapEntry[V any] struct {
	k string
	v V
}

// appendJSONMap appends m as a JSON object with its keys sorted bytewise,
// as encoding/json sorts them, each value appended by value; m must not be
// nil.
func appendJSONMap[V any](dst []byte, m map[string]V, value func([]byte, V) []byte) []byte {
	var buf [mapKeysOnStack]mapEntry[V]
	es := buf[:0]
	for k, v := range m {
		es = append(es, mapEntry[V]{k, v})
	}
	// The keys are distinct. Insertion sort is quickest for the few
	// entries a record usually has.
	if len(es) > 12 {
		slices.SortFunc(es, func(a, b mapEntry[V]) int { return strings.Compare(a.k, b.k) })
	} else {
		for i := 1; i < len(es); i++ {
			for j := i; j > 0 && es[j].k < es[j-1].k; j-- {
				es[j], es[j-1] = es[j-1], es[j]
			}
		}
	}
	dst = append(dst, '{')
	for i := range es {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonstr.Append(dst, es[i].k)
		dst = append(dst, ':')
		dst = value(dst, es[i].v)
	}
	return append(dst, '}')
}

var timeType = reflect.TypeFor[time.Time]()

// appendJSONTime appends t as time.Time.MarshalJSON does, failing where it
// fails, with the error json.Marshal wraps it in.
func appendJSONTime(dst []byte, t time.Time) ([]byte, error) {
	n0 := len(dst)
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	// The checks of time.Time.appendStrictRFC3339: not every Time has an
	// RFC 3339 form.
	b := dst[n0+1:]
	bad := false
	switch {
	case b[len("9999")] != '-': // year must be exactly 4 digits wide
		bad = true
	case b[len(b)-1] != 'Z':
		c := b[len(b)-len("Z07:00")]
		h := b[len(b)-len("07:00"):]
		bad = '0' <= c && c <= '9' || 10*(h[0]-'0')+(h[1]-'0') >= 24
	}
	if bad {
		// Rare: let MarshalJSON say what is wrong, in its words.
		_, err := t.MarshalJSON()
		if err == nil {
			err = errors.New("Time.MarshalJSON: no RFC 3339 form")
		}
		return dst[:n0], &json.MarshalerError{Type: timeType, Err: err}
	}
	return append(dst, '"'), nil
}

// appendJSONFloat appends f as encoding/json encodes a float64: like
// JavaScript's Number.prototype.toString, 'f' format unless the magnitude
// is below 1e-6 or at least 1e21, then 'e' with the exponent unpadded.
// Adapted from floatEncoder.encode in Go's encoding/json (BSD licence).
func appendJSONFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, &json.UnsupportedValueError{Value: reflect.ValueOf(f), Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9. An 'e' float is at least 5 bytes long.
		n := len(dst)
		if dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}
