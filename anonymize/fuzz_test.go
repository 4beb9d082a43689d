package anonymize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// fuzzSpec is the analyst-style release the fuzzer attacks: patient_name
// dropped, phone masked, patient_id pseudonymised, district kept; every
// other field dropped by default.
var fuzzSpec = Spec{Fields: map[string]Rule{
	"patient_name": {Op: "drop"},
	"phone":        {Op: "mask", Params: Params{"keep_first": 3, "keep_last": 4}},
	"patient_id":   {Op: "pseudonymize"},
	"district":     {Op: "keep"},
}}

var fuzzShape = Shape{Records: "items", Meta: []string{"page"}, Counts: []string{"total"}}

// released are the member names the fuzz spec may write, per level.
var (
	releasedTop    = map[string]bool{"items": true, "page": true, "total": true}
	releasedRecord = map[string]bool{"patient_id": true, "phone": true, "district": true}
)

func fuzzSeeds() []string {
	deep := strings.Repeat(`{"a":[`, 30) + `"深"` + strings.Repeat(`]}`, 30)
	long := strings.Repeat("张三李四王五", 70) // 1,260 bytes: longer seeds stall the fuzzer minimising what grows from them
	return []string{
		`{"items":[{"patient_id":"110105194912310021","patient_name":"张三","phone":"13812345678","district":"朝阳区",` +
			`"hospital":"北京朝阳医院","diagnosis":"J06.9","visit_date":"2026-03-14","cost":1280}],"page":1,"total":1}`,
		`{"items":[],"page":1,"total":0}`,
		`{"total":2,"items":[{"district":"海淀区"},{"phone":13987654321,"patient_id":42}],"page":"2","extra":{"patient_name":"李四四四四四四四"}}`,
		// deep nesting, in a dropped field and in a kept one
		`{"items":[{"district":"朝阳区","notes":` + deep + `,"patient_name":"欧阳娜娜娜娜"}]}`,
		`{"items":[{"district":` + deep + `}]}`,
		// duplicate keys: unnamed (allowed), named (refused)
		`{"items":[{"diagnosis":"secret-diagnosis-1","diagnosis":"secret-diagnosis-2","district":"东城区"}]}`,
		`{"items":[{"patient_name":"张三张三张三","patient_name":"李四李四李四"}]}`,
		`{"items":[{"phone":"13812345678","ph\u006fne":"13987654321"}]}`,
		// unicode-escaped keys and values
		`{"items":[{"pati\u0065nt_name":"\u5f20\u4e09\u5f20\u4e09\u5f20\u4e09","distr\u0069ct":"\u671d\u9633\u533a","p\u0068one":"\u0031\u0033\u0038\u0031\u0032\u0033\u0034\u0035\u0036\u0037\u0038"}],"p\u0061ge":1}`,
		`{"it\u0065ms":[{"\u0070atient_id":"\ud83d\ude00\ud800x"}],"tot\u0061l":5}`,
		// huge numbers
		`{"items":[{"phone":123456789012345678901234567890,"patient_id":1e999,"district":-0.000000000000000000001,"cost":1e400}],"page":1e308}`,
		// invalid UTF-8 and separators
		"{\"items\":[{\"patient_name\":\"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\",\"district\":\"\xe6\x9c\x9d\xff\u2028\",\"phone\":\"138\xff\xff\xff\xff\xff5678\"}],\"page\":\"\xc3\"}",
		// very long strings
		`{"items":[{"phone":"` + long + `","patient_name":"` + long + `","patient_id":"` + long + `","district":"朝阳区"}]}`,
		// values of other kinds than the operators expect
		`{"items":[{"phone":{"number":"13812345678"},"patient_id":["110105194912310021"],"district":{"name":"朝阳区-secret"}}]}`,
		`{"items":[{"phone":true,"patient_id":null,"district":null,"patient_name":{"given":"娜娜娜娜娜娜","family":"欧阳欧阳欧阳"}}]}`,
		`{"items":[{"phone":"","patient_id":"","district":""}],"page":{"next":"secret-cursor"},"total":[1,2,3]}`,
		// misshapen bodies
		`[{"district":"朝阳区"}]`,
		`{"items":{"district":"朝阳区"}}`,
		`{"items":[{"district":"朝阳区"}],"items":[]}`,
		`{"items":[{"district":"朝阳区"}]} trailing`,
		`{"items":[{"district":"朝阳区","x":01}]}`,
	}
}

// FuzzTransformNeverLeaks feeds arbitrary upstream bodies through the fuzz
// spec. A transform may always fail; when it succeeds, checkRelease must
// hold. Pass -fuzzminimizetime 3s for long runs: minimising each new input
// for the default minute leaves the workers idle.
func FuzzTransformNeverLeaks(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	p := mustCompile(f, fuzzSpec)
	keys, err := NewKeys(bytes.Repeat([]byte("f"), 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var out bytes.Buffer
		env := &Env{Keys: keys, Consumer: "alice", Dataset: "health/visits"}
		st, err := p.Transform(&out, bytes.NewReader(body), fuzzShape, env, Limits{MaxRecordBytes: 256 << 10})
		if err != nil {
			return // failing closed is always allowed
		}
		checkRelease(t, body, out.Bytes(), st)
	})
}

// TestFuzzSeedsExerciseSuccessAndFailure keeps the seed corpus honest: it
// must hold bodies that release records, or the fuzzer checks little.
func TestFuzzSeedsExerciseSuccessAndFailure(t *testing.T) {
	p := mustCompile(t, fuzzSpec)
	released, failed := 0, 0
	for _, s := range fuzzSeeds() {
		st, err := p.Transform(io.Discard, strings.NewReader(s), fuzzShape, testEnv(t), Limits{})
		if err != nil {
			failed++
			continue
		}
		released += st.Released
	}
	if released < 10 || failed < 5 {
		t.Errorf("seeds released %d records and %d bodies failed; want both exercised", released, failed)
	}
}

// member is an object member in document order; duplicates are kept.
type member struct {
	key string
	val any
}

// parseOrdered decodes one JSON value, keeping objects as []member so that
// repeated keys stay visible. Numbers are json.Number.
func parseOrdered(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := []member{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			obj = append(obj, member{k.(string), v})
		}
		_, err := dec.Token()
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token()
		return arr, err
	}
	return tok, nil
}

func isScalar(v any) bool {
	switch v.(type) {
	case []member, []any:
		return false
	}
	return true
}

// text is a string's value or a number's literal, as operators read them.
func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return string(x), true
	}
	return "", false
}

// walk calls fn with every key, string and number inside v.
func walk(v any, fn func(string)) {
	switch x := v.(type) {
	case []member:
		for _, m := range x {
			fn(m.key)
			walk(m.val, fn)
		}
	case []any:
		for _, e := range x {
			walk(e, fn)
		}
	default:
		if s, ok := text(x); ok {
			fn(s)
		}
	}
}

// maskPhone is the fuzz spec's phone treatment, written independently of
// the operator.
func maskPhone(v any) any {
	s, ok := text(v)
	if !ok || s == "" {
		return redacted
	}
	r := []rune(s)
	if len(r) <= 7 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:3]) + strings.Repeat("*", len(r)-7) + string(r[len(r)-4:])
}

var pseudonymRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// pseudonymOf marks an expected value as "some pseudonym of this text".
type pseudonymOf string

// sameScalar compares decoded scalars, telling json.Number from string.
func sameScalar(a, b any) bool {
	return isScalar(a) && isScalar(b) && fmt.Sprintf("%T %#v", a, a) == fmt.Sprintf("%T %#v", b, b)
}

// minSecret is the shortest value whose appearance in the output counts as
// a leak; shorter ones turn up by chance.
const minSecret = 8

// checkRelease asserts that out is what the fuzz spec may release of body:
// valid JSON holding only named fields, each value its treatment of the
// input's, and no dropped or raw value anywhere.
func checkRelease(t *testing.T, body, out []byte, st Stats) {
	t.Helper()
	if !json.Valid(out) || !utf8.Valid(out) {
		t.Fatalf("output is not valid UTF-8 JSON: %q", out)
	}
	if !json.Valid(body) {
		t.Fatalf("released %q from a body that is not JSON", out)
	}
	in, err := parseOrdered(body)
	if err != nil {
		t.Fatalf("parse body: %v", err)
	}
	got, err := parseOrdered(out)
	if err != nil {
		t.Fatalf("parse output: %v", err)
	}

	// The input: an object with exactly one array of objects under items.
	inTop, ok := in.([]member)
	if !ok {
		t.Fatalf("released a body that is not an object: %q", out)
	}
	var inRecords []any
	inMeta := map[string]any{}
	var secrets []string
	addSecret := func(s string) {
		if len(s) >= minSecret {
			secrets = append(secrets, s)
		}
	}
	// legit holds every value the output may carry, taken from the input.
	legit := []string{redacted, "items", "page", "total", "patient_id", "phone", "district"}
	nItems := 0
	for _, m := range inTop {
		switch {
		case m.key == "items":
			nItems++
			arr, ok := m.val.([]any)
			if !ok {
				t.Fatalf("released a body whose items are not an array: %q", out)
			}
			inRecords = arr
		case (m.key == "page" || m.key == "total") && isScalar(m.val):
			if _, dup := inMeta[m.key]; dup {
				t.Fatalf("released a body with a repeated %q", m.key)
			}
			inMeta[m.key] = m.val
			if s, ok := text(m.val); ok {
				legit = append(legit, s)
			}
		default:
			addSecret(m.key)
			walk(m.val, addSecret)
		}
	}
	if nItems != 1 {
		t.Fatalf("released a body with %d items members", nItems)
	}

	// The output: items and the scalar metadata, nothing else.
	gotTop, ok := got.([]member)
	if !ok {
		t.Fatalf("output is not an object: %q", out)
	}
	var gotRecords []any
	seen := map[string]bool{}
	for _, m := range gotTop {
		if !releasedTop[m.key] || seen[m.key] {
			t.Fatalf("output has member %q (repeated: %v): %q", m.key, seen[m.key], out)
		}
		seen[m.key] = true
		if m.key == "items" {
			gotRecords, _ = m.val.([]any)
			continue
		}
		want, ok := inMeta[m.key]
		if !ok || !sameScalar(want, m.val) {
			t.Fatalf("output %s = %#v, input had %#v", m.key, m.val, want)
		}
	}
	for k := range inMeta {
		if !seen[k] {
			t.Fatalf("scalar %s dropped from %q", k, out)
		}
	}
	if len(inRecords) != len(gotRecords) || st.Records != len(inRecords) || st.Released != len(gotRecords) || st.Filtered != 0 {
		t.Fatalf("read %d records and released %d (stats %+v)", len(inRecords), len(gotRecords), st)
	}

	pseudonyms := map[string]string{} // input text → pseudonym
	owners := map[string]string{}     // pseudonym → input text
	for i, rv := range inRecords {
		inRec, ok := rv.([]member)
		if !ok {
			t.Fatalf("released a body whose record %d is not an object", i)
		}
		gotRec, ok := gotRecords[i].([]member)
		if !ok {
			t.Fatalf("output record %d is not an object: %q", i, out)
		}
		want := map[string]any{}
		var order []string
		for _, m := range inRec {
			if !releasedRecord[m.key] {
				addSecret(m.key)
				walk(m.val, addSecret)
				continue
			}
			if contains(order, m.key) {
				t.Fatalf("released record %d that repeats %q", i, m.key)
			}
			order = append(order, m.key)
			switch m.key {
			case "district":
				if isScalar(m.val) {
					want[m.key] = m.val
					if s, ok := text(m.val); ok {
						legit = append(legit, s)
					}
				} else {
					want[m.key] = redacted
					walk(m.val, addSecret)
				}
			case "phone":
				masked := maskPhone(m.val)
				want[m.key] = masked
				legit = append(legit, masked.(string))
				if s, ok := text(m.val); ok {
					addSecret(s)
					if r := []rune(s); len(r) > 7 {
						addSecret(string(r[3 : len(r)-4]))
					}
				} else {
					walk(m.val, addSecret)
				}
			case "patient_id":
				if s, ok := text(m.val); ok {
					want[m.key] = pseudonymOf(s)
					addSecret(s)
				} else {
					want[m.key] = redacted
					walk(m.val, addSecret)
				}
			}
		}
		var gotOrder []string
		for _, m := range gotRec {
			if !releasedRecord[m.key] {
				t.Fatalf("output record %d has field %q: %q", i, m.key, out)
			}
			gotOrder = append(gotOrder, m.key)
			if w, ok := want[m.key].(pseudonymOf); ok {
				p, _ := m.val.(string)
				if !pseudonymRE.MatchString(p) || p == string(w) {
					t.Fatalf("record %d patient_id %q released as %#v, want a pseudonym", i, w, m.val)
				}
				if prev, ok := pseudonyms[string(w)]; ok && prev != p {
					t.Fatalf("patient_id %q pseudonymised as both %s and %s", w, prev, p)
				}
				if prev, ok := owners[p]; ok && prev != string(w) {
					t.Fatalf("patient_ids %q and %q share pseudonym %s", prev, w, p)
				}
				pseudonyms[string(w)], owners[p] = p, string(w)
				legit = append(legit, p)
				continue
			}
			if !sameScalar(want[m.key], m.val) {
				t.Fatalf("record %d %s released as %#v, want %#v", i, m.key, m.val, want[m.key])
			}
		}
		if fmt.Sprint(order) != fmt.Sprint(gotOrder) {
			t.Fatalf("record %d releases fields %v, want %v", i, gotOrder, order)
		}
	}

	// No secret inside any key, string or number of the output unless the
	// input also gave it as a released value.
	walk(got, func(s string) {
		for _, x := range secrets {
			if !strings.Contains(s, x) {
				continue
			}
			explained := false
			for _, l := range legit {
				explained = explained || strings.Contains(l, x)
			}
			if !explained {
				t.Fatalf("output value %q leaks %q", s, x)
			}
		}
	})
}

// FuzzReadBoundariesDoNotMatter: a body transforms to the same release,
// the same stats and the same error whether it arrives whole (records are
// transformed in place, in the read buffer) or a byte at a time (each is
// captured first), and with a record limit that cuts records short.
func FuzzReadBoundariesDoNotMatter(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s), uint16(0))
	}
	p, keys := mustCompile(f, fuzzSpec), testKeys(f)
	f.Fuzz(func(t *testing.T, body []byte, limit uint16) {
		lim := Limits{MaxRecordBytes: int(limit)}
		run := func(r io.Reader) (string, Stats, string) {
			var out bytes.Buffer
			env := &Env{Keys: keys, Consumer: "alice", Dataset: "health/visits"}
			st, err := p.Transform(&out, r, fuzzShape, env, lim)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			return out.String(), st, msg
		}
		wholeOut, wholeSt, wholeErr := run(bytes.NewReader(body))
		byteOut, byteSt, byteErr := run(iotest.OneByteReader(bytes.NewReader(body)))
		if wholeErr != byteErr {
			t.Fatalf("error whole %q, byte by byte %q", wholeErr, byteErr)
		}
		if wholeErr == "" && (wholeOut != byteOut || wholeSt != byteSt) {
			t.Fatalf("whole:\n%s %+v\nbyte by byte:\n%s %+v", wholeOut, wholeSt, byteOut, byteSt)
		}
	})
}
