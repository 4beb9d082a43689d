package anonymize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// generalizeOp coarsens a value to the level the decision names with "to":
//
//	{"to": "year"}                   "2026-03-14" → "2026"
//	{"to": "quarter"}                "2026-03-14" → "2026-Q1"
//	{"to": "month"}                  "2026-03-14" → "2026-03"
//	{"to": "age", "band": 10}        "1990-05-17" → "30-39" (on 2026-11-26)
//	{"to": "bucket", "width": 1000}  1280 → "1000-1999"
//	{"to": "prefix", "length": 3}    "J06.9" → "J06"
//
// Dates are YYYY-MM-DD or RFC 3339 timestamps, generalised in their own
// calendar (an offset is not converted to UTC). An age is the whole years
// from a birth date to the date of Env.Now (in Now's location) at the start
// of the transform; band (default 10) is the width of the age band, and a
// band of 1 releases the age itself ("36"). A bucket is the integers lo to
// lo+width-1 holding the number's floor, lo a multiple of width: 29.7 →
// "20-29", -5 → "-10--1"; a width of 1 releases the floor ("29"). A prefix
// is the first length characters of a string; a string no longer than that
// is released whole, being no finer than the level asked.
//
// Anything else falls back to redact: a date that is not a real date, a
// birth date after Now, a number given as a string, a number beyond ±2^53
// (where the bucket of a float is no longer exact), a string given to
// bucket, a number given to a date level or to prefix.
type generalizeOp struct {
	to     string
	band   int
	width  int
	length int
}

func newGeneralize(p Params) (Operator, error) {
	if err := p.check("to", "band", "width", "length"); err != nil {
		return nil, err
	}
	to, err := p.String("to", "")
	if err != nil {
		return nil, err
	}
	o := generalizeOp{to: to}
	// check names a parameter that belongs to another level.
	check := func(allowed ...string) error {
		if err := p.check(allowed...); err != nil {
			return fmt.Errorf("%w with to %q", err, to)
		}
		return nil
	}
	switch to {
	case "year", "quarter", "month":
		err = check("to")
	case "age":
		if err = check("to", "band"); err == nil {
			o.band, err = p.Int("band", 10)
			if err == nil && o.band < 1 {
				err = fmt.Errorf("band: want at least 1 year")
			}
		}
	case "bucket":
		if err = check("to", "width"); err == nil {
			o.width, err = p.Int("width", 0)
			if err == nil && o.width < 1 {
				err = fmt.Errorf("width: required, a positive integer")
			}
		}
	case "prefix":
		if err = check("to", "length"); err == nil {
			o.length, err = p.Int("length", 0)
			if err == nil && o.length < 1 {
				err = fmt.Errorf("length: required, a positive integer")
			}
		}
	default:
		return nil, fmt.Errorf("to: want year, quarter, month, age, bucket or prefix, got %q", to)
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

func (o generalizeOp) Apply(dst []byte, v Value, env *Env) ([]byte, bool) {
	switch o.to {
	case "bucket":
		lo, ok := floorTo(v, float64(o.width))
		if !ok {
			return dst, false
		}
		return appendString(dst, band(int64(lo), int64(o.width))), true
	case "prefix":
		if v.Kind != String {
			return dst, false
		}
		s, _ := v.Text()
		return appendString(dst, firstRunes(s, o.length)), true
	}
	if v.Kind != String {
		return dst, false
	}
	t, ok := time.Time{}, false
	if v.plain { // the common case, a calendar date, without a copy
		t, ok = parseCalendarDate(v.Raw[1 : len(v.Raw)-1])
	}
	if !ok {
		s, _ := v.Text()
		if t, ok = parseDate(s); !ok {
			return dst, false
		}
	}
	var out string
	switch o.to {
	case "year", "month":
		// Digits and a dash: nothing to escape.
		layout := "2006"
		if o.to == "month" {
			layout = "2006-01"
		}
		dst = append(dst, '"')
		dst = t.AppendFormat(dst, layout)
		return append(dst, '"'), true
	case "quarter":
		out = fmt.Sprintf("%04d-Q%d", t.Year(), (int(t.Month())+2)/3)
	case "age":
		age, ok := ageOn(t, env.now())
		if !ok {
			return dst, false
		}
		out = band(int64(age/o.band*o.band), int64(o.band))
	}
	return appendString(dst, out), true
}

// band names the integers lo to lo+width-1: "30-39", or "36" for a width
// of 1.
func band(lo, width int64) string {
	if width == 1 {
		return strconv.FormatInt(lo, 10)
	}
	return strconv.FormatInt(lo, 10) + "-" + strconv.FormatInt(lo+width-1, 10)
}

// maxExact is the magnitude beyond which float64 no longer holds every
// integer, so buckets and rounding would be guesses.
const maxExact = 1 << 53

// floorTo returns the multiple of width at or below the number v, false
// when v is not a number or is beyond ±2^53.
func floorTo(v Value, width float64) (float64, bool) {
	f, ok := v.Float()
	if !ok || math.IsNaN(f) || math.Abs(f) >= maxExact {
		return 0, false
	}
	return math.Floor(math.Floor(f)/width) * width, true
}

// ageOn returns the age in whole years on the date of now of someone born
// on the date of birth, false when birth is after now.
func ageOn(birth, now time.Time) (int, bool) {
	by, bm, bd := birth.Date()
	ny, nm, nd := now.Date()
	age := ny - by
	if nm < bm || (nm == bm && nd < bd) {
		age--
	}
	return age, age >= 0
}

// firstRunes returns the first n characters of s.
func firstRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// parseDate accepts a calendar date or an RFC 3339 timestamp.
func parseDate(s string) (time.Time, bool) {
	if t, ok := parseCalendarDate(s); ok {
		return t, true
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// truncateOp keeps the first length characters of a string and drops the
// rest: {"length": 4}: "胸痛三天，伴气短" → "胸痛三天". A string no longer than
// length is released whole, so truncate suits free text whose length is
// the risk, not identifiers (mask or generalize to prefix those). Anything
// but a string falls back to redact.
type truncateOp struct{ length int }

func newTruncate(p Params) (Operator, error) {
	if err := p.check("length"); err != nil {
		return nil, err
	}
	n, err := p.Int("length", 0)
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("length: required, a positive integer")
	}
	return truncateOp{length: n}, nil
}

func (o truncateOp) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	if v.Kind != String {
		return dst, false
	}
	s, _ := v.Text()
	return appendString(dst, firstRunes(s, o.length)), true
}

// roundOp rounds a number, half away from zero, to a number of decimal
// places or to the nearest multiple of a step:
//
//	{"digits": 1}      3.14159 → 3.1
//	{"digits": 0}      2.5 → 3 (the default)
//	{"nearest": 100}   1280 → 1300
//	{"nearest": 0.5}   2.26 → 2.5
//
// It releases a JSON number. Anything but a number, and numbers beyond
// ±2^53, fall back to redact.
type roundOp struct {
	digits  int
	nearest float64
	places  int // decimal places of nearest, to print its multiples exactly
}

func newRound(p Params) (Operator, error) {
	if err := p.check("digits", "nearest"); err != nil {
		return nil, err
	}
	_, hasDigits := p["digits"]
	_, hasNearest := p["nearest"]
	if hasDigits && hasNearest {
		return nil, fmt.Errorf("digits and nearest: give one")
	}
	var o roundOp
	var err error
	if hasNearest {
		if o.nearest, err = p.Number("nearest", 0); err != nil {
			return nil, err
		}
		if o.nearest <= 0 || o.nearest >= maxExact {
			return nil, fmt.Errorf("nearest: want a positive number below 2^53, got %v", o.nearest)
		}
		s := strconv.FormatFloat(o.nearest, 'f', -1, 64)
		if _, frac, ok := strings.Cut(s, "."); ok {
			o.places = len(frac)
		}
		if o.places > 15 {
			return nil, fmt.Errorf("nearest: %v has more than 15 decimal places", o.nearest)
		}
		return o, nil
	}
	if o.digits, err = p.Int("digits", 0); err != nil {
		return nil, err
	}
	if o.digits > 15 {
		return nil, fmt.Errorf("digits: %d is more than 15", o.digits)
	}
	return o, nil
}

func (o roundOp) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	f, ok := v.Float()
	if !ok || math.IsNaN(f) || math.Abs(f) >= maxExact {
		return dst, false
	}
	var r float64
	places := o.digits
	if o.nearest > 0 {
		r, places = math.Round(f/o.nearest)*o.nearest, o.places
	} else {
		scale := math.Pow10(o.digits)
		r = math.Round(f*scale) / scale
	}
	if r == 0 {
		r = 0 // no "-0"
	}
	s := strconv.FormatFloat(r, 'f', places, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return append(dst, s...), true
}

// parseCalendarDate is time.Parse(time.DateOnly, s) for the strings it
// accepts that are exactly YYYY-MM-DD, without its cost; false means "not
// in this form", and parseDate then asks time.Parse.
func parseCalendarDate[S string | []byte](s S) (time.Time, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	num := func(b S) (int, bool) {
		n := 0
		for i := 0; i < len(b); i++ {
			if b[i] < '0' || b[i] > '9' {
				return 0, false
			}
			n = n*10 + int(b[i]-'0')
		}
		return n, true
	}
	y, ok1 := num(s[:4])
	m, ok2 := num(s[5:7])
	d, ok3 := num(s[8:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d { // past the month's end: time.Date normalised it
		return time.Time{}, false
	}
	return t, true
}
