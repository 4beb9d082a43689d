package anonymize

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGeneralizeToQuarter(t *testing.T) {
	quarter := Rule{Op: "generalize", Params: Params{"to": "quarter"}}
	runOpCases(t, []opCase{
		{name: "Q1", rule: quarter, in: `"2026-03-31"`, want: "2026-Q1"},
		{name: "Q2", rule: quarter, in: `"2026-04-01"`, want: "2026-Q2"},
		{name: "Q3", rule: quarter, in: `"2026-09-30"`, want: "2026-Q3"},
		{name: "Q4", rule: quarter, in: `"2026-12-31T23:59:59+08:00"`, want: "2026-Q4"},
		{name: "early year", rule: quarter, in: `"0099-01-01"`, want: "0099-Q1"},
		{name: "not a date", rule: quarter, in: `"2026-Q1"`, want: redacted, fallback: true},
		{name: "number", rule: quarter, in: `2026`, want: redacted, fallback: true},
	})
}

// ageEnv is an Env whose clock stands at now.
func ageEnv(t *testing.T, now time.Time) *Env {
	env := testEnv(t)
	env.Now = func() time.Time { return now }
	return env
}

func TestGeneralizeBirthDatesToAgeBands(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	tens := Rule{Op: "generalize", Params: Params{"to": "age"}}
	fives := Rule{Op: "generalize", Params: Params{"to": "age", "band": json.Number("5")}}
	years := Rule{Op: "generalize", Params: Params{"to": "age", "band": 1}}
	tests := []struct {
		name     string
		rule     Rule
		in       string
		want     any
		fallback bool
	}{
		{"default band of ten", tens, `"1990-05-17"`, "30-39", false},
		{"birthday today", tens, `"1996-11-26"`, "30-39", false},
		{"birthday tomorrow", tens, `"1996-11-27"`, "20-29", false},
		{"born today", tens, `"2026-11-26"`, "0-9", false},
		{"leap day", years, `"2000-02-29"`, "26", false},
		{"band of five", fives, `"1990-05-17"`, "35-39", false},
		{"band of one is the age", years, `"1990-05-17"`, "36", false},
		{"timestamp birth", tens, `"1950-01-01T08:00:00+08:00"`, "70-79", false},
		{"very old", tens, `"1900-01-01"`, "120-129", false},
		{"born tomorrow", tens, `"2026-11-27"`, redacted, true},
		{"not a date", tens, `"1990-13-01"`, redacted, true},
		{"number", tens, `36`, redacted, true},
		{"null", tens, `null`, redacted, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, fallbacks := releaseOne(t, tc.rule, tc.in, ageEnv(t, now))
			if diff := cmp.Diff(tc.want, got); diff != "" || fallbacks != btoi(tc.fallback) {
				t.Errorf("age of %s: %v with %d fallbacks, want %v (-want +got):\n%s", tc.in, got, fallbacks, tc.want, diff)
			}
		})
	}
}

// The clock is read once per transform: a release that runs across
// midnight ages every record on the same day.
func TestAgeIsComputedOnTheDayTheTransformStarts(t *testing.T) {
	day := time.Date(2026, 11, 26, 23, 59, 59, 0, time.UTC)
	calls := 0
	env := testEnv(t)
	env.Now = func() time.Time {
		calls++
		return day.Add(time.Duration(calls) * time.Hour)
	}
	p := mustCompile(t, Spec{Fields: map[string]Rule{"born": {Op: "generalize", Params: Params{"to": "age", "band": 1}}}})
	var out strings.Builder
	body := `{"items":[{"born":"1996-11-27"},{"born":"1996-11-27"},{"born":"1996-11-27"}]}`
	if _, err := p.Transform(&out, strings.NewReader(body), itemsShape, env, Limits{}); err != nil {
		t.Fatal(err)
	}
	assertJSON(t, []byte(out.String()), `{"items":[{"born":"30"},{"born":"30"},{"born":"30"}]}`)
	if calls != 1 {
		t.Errorf("clock read %d times, want once per transform", calls)
	}
}

func TestGeneralizeNumbersToBuckets(t *testing.T) {
	thousands := Rule{Op: "generalize", Params: Params{"to": "bucket", "width": 1000}}
	tens := Rule{Op: "generalize", Params: Params{"to": "bucket", "width": json.Number("10")}}
	ones := Rule{Op: "generalize", Params: Params{"to": "bucket", "width": 1}}
	runOpCases(t, []opCase{
		{name: "cost", rule: thousands, in: `1280`, want: "1000-1999"},
		{name: "lower edge", rule: thousands, in: `1000`, want: "1000-1999"},
		{name: "upper edge", rule: thousands, in: `1999`, want: "1000-1999"},
		{name: "zero", rule: tens, in: `0`, want: "0-9"},
		{name: "fraction goes by its floor", rule: tens, in: `29.7`, want: "20-29"},
		{name: "exponent form", rule: tens, in: `2.5e1`, want: "20-29"},
		{name: "negative", rule: tens, in: `-5`, want: "-10--1"},
		{name: "negative edge", rule: tens, in: `-10`, want: "-10--1"},
		{name: "width one is the floor", rule: ones, in: `29.7`, want: "29"},
		{name: "large but exact", rule: tens, in: `9007199254740991`, want: "9007199254740990-9007199254740999"},
		{name: "beyond 2^53", rule: tens, in: `9007199254740992`, want: redacted, fallback: true},
		{name: "huge", rule: tens, in: `1e400`, want: redacted, fallback: true},
		{name: "number as a string", rule: tens, in: `"25"`, want: redacted, fallback: true},
		{name: "bool", rule: tens, in: `true`, want: redacted, fallback: true},
		{name: "object", rule: tens, in: `{"n":25}`, want: redacted, fallback: true},
	})
}

func TestGeneralizeCodesToPrefixes(t *testing.T) {
	icd := Rule{Op: "generalize", Params: Params{"to": "prefix", "length": 3}}
	runOpCases(t, []opCase{
		{name: "ICD-10", rule: icd, in: `"J06.9"`, want: "J06"},
		{name: "postcode", rule: icd, in: `"100020"`, want: "100"},
		{name: "characters, not bytes", rule: icd, in: `"北京市朝阳区"`, want: "北京市"},
		{name: "exactly the length", rule: icd, in: `"I10"`, want: "I10"},
		{name: "shorter than the length", rule: icd, in: `"A0"`, want: "A0"},
		{name: "empty", rule: icd, in: `""`, want: ""},
		{name: "number", rule: icd, in: `100020`, want: redacted, fallback: true},
		{name: "array", rule: icd, in: `["J06.9"]`, want: redacted, fallback: true},
	})
}

func TestTruncateKeepsTheFirstCharacters(t *testing.T) {
	four := Rule{Op: "truncate", Params: Params{"length": 4}}
	runOpCases(t, []opCase{
		{name: "chinese text", rule: four, in: `"胸痛三天，伴气短"`, want: "胸痛三天"},
		{name: "ascii", rule: four, in: `"abcdefgh"`, want: "abcd"},
		{name: "short string whole", rule: four, in: `"abc"`, want: "abc"},
		{name: "empty", rule: four, in: `""`, want: ""},
		{name: "escapes decoded first", rule: four, in: `"\u80f8\u75db\u4e09\u5929\u4f34"`, want: "胸痛三天"},
		{name: "invalid UTF-8 replaced", rule: four, in: "\"a\xffbcd\"", want: "a\ufffdbc"},
		{name: "number", rule: four, in: `123456`, want: redacted, fallback: true},
		{name: "object", rule: four, in: `{"text":"abcdef"}`, want: redacted, fallback: true},
	})
}

func TestRoundRoundsNumbers(t *testing.T) {
	whole := Rule{Op: "round"}
	one := Rule{Op: "round", Params: Params{"digits": 1}}
	hundred := Rule{Op: "round", Params: Params{"nearest": json.Number("100")}}
	half := Rule{Op: "round", Params: Params{"nearest": 0.5}}
	tenth := Rule{Op: "round", Params: Params{"nearest": 0.1}}
	runOpCases(t, []opCase{
		{name: "default whole number", rule: whole, in: `2.4`, want: json.Number("2")},
		{name: "half away from zero", rule: whole, in: `2.5`, want: json.Number("3")},
		{name: "negative half away from zero", rule: whole, in: `-2.5`, want: json.Number("-3")},
		{name: "no negative zero", rule: whole, in: `-0.4`, want: json.Number("0")},
		{name: "one digit", rule: one, in: `3.14159`, want: json.Number("3.1")},
		{name: "trailing zeros dropped", rule: one, in: `3.04`, want: json.Number("3")},
		{name: "integer unchanged", rule: one, in: `42`, want: json.Number("42")},
		{name: "nearest hundred", rule: hundred, in: `1280`, want: json.Number("1300")},
		{name: "nearest hundred down", rule: hundred, in: `1249.9`, want: json.Number("1200")},
		{name: "nearest hundred of a small number", rule: hundred, in: `49`, want: json.Number("0")},
		{name: "nearest half", rule: half, in: `2.26`, want: json.Number("2.5")},
		{name: "nearest tenth prints exactly", rule: tenth, in: `0.29`, want: json.Number("0.3")},
		{name: "exponent form", rule: hundred, in: `1.28e3`, want: json.Number("1300")},
		{name: "beyond 2^53", rule: whole, in: `1e20`, want: redacted, fallback: true},
		{name: "huge", rule: whole, in: `1e400`, want: redacted, fallback: true},
		{name: "string", rule: whole, in: `"2.5"`, want: redacted, fallback: true},
		{name: "null", rule: whole, in: `null`, want: redacted, fallback: true},
		{name: "array", rule: whole, in: `[2.5]`, want: redacted, fallback: true},
	})
}

func TestCompileRejectsBadParametersOfEveryOperator(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
	}{
		{"null with a parameter", Rule{Op: "null", Params: Params{"value": 1}}},
		{"replace without value", Rule{Op: "replace"}},
		{"replace with an object", Rule{Op: "replace", Params: Params{"value": map[string]any{"a": 1}}}},
		{"replace with an array", Rule{Op: "replace", Params: Params{"value": []any{"a"}}}},
		{"replace with a bad number", Rule{Op: "replace", Params: Params{"value": json.Number("1.")}}},
		{"replace with an empty number", Rule{Op: "replace", Params: Params{"value": json.Number("")}}},
		{"replace with an unknown parameter", Rule{Op: "replace", Params: Params{"value": "x", "with": "y"}}},
		{"mask_id_cn with an unknown parameter", Rule{Op: "mask_id_cn", Params: Params{"keep_middle": 1}}},
		{"mask_id_cn keeping everything", Rule{Op: "mask_id_cn", Params: Params{"keep_first": 11, "keep_last": 4}}},
		{"mask_id_cn keeping all of a 15-digit ID", Rule{Op: "mask_id_cn", Params: Params{"keep_first": 12}}},
		{"mask_id_cn with a negative keep_last", Rule{Op: "mask_id_cn", Params: Params{"keep_last": -1}}},
		{"mask_phone_cn keeping all 11 digits", Rule{Op: "mask_phone_cn", Params: Params{"keep_first": 7, "keep_last": 4}}},
		{"mask_email with keep_domain", Rule{Op: "mask_email", Params: Params{"keep_domain": false}}},
		{"mask_bank_card with keep_last", Rule{Op: "mask_bank_card", Params: Params{"keep_last": 4}}},
		{"mask_address with level", Rule{Op: "mask_address", Params: Params{"level": "city"}}},
		{"generalize to week", Rule{Op: "generalize", Params: Params{"to": "week"}}},
		{"generalize to a number", Rule{Op: "generalize", Params: Params{"to": 1}}},
		{"generalize to month with a band", Rule{Op: "generalize", Params: Params{"to": "month", "band": 10}}},
		{"generalize to age with a width", Rule{Op: "generalize", Params: Params{"to": "age", "width": 10}}},
		{"generalize to age with band zero", Rule{Op: "generalize", Params: Params{"to": "age", "band": 0}}},
		{"generalize to age with a fractional band", Rule{Op: "generalize", Params: Params{"to": "age", "band": 2.5}}},
		{"generalize to bucket without width", Rule{Op: "generalize", Params: Params{"to": "bucket"}}},
		{"generalize to bucket with width zero", Rule{Op: "generalize", Params: Params{"to": "bucket", "width": 0}}},
		{"generalize to bucket with a string width", Rule{Op: "generalize", Params: Params{"to": "bucket", "width": "10"}}},
		{"generalize to bucket with a length", Rule{Op: "generalize", Params: Params{"to": "bucket", "width": 10, "length": 3}}},
		{"generalize to prefix without length", Rule{Op: "generalize", Params: Params{"to": "prefix"}}},
		{"generalize to prefix with length zero", Rule{Op: "generalize", Params: Params{"to": "prefix", "length": 0}}},
		{"truncate without length", Rule{Op: "truncate"}},
		{"truncate with length zero", Rule{Op: "truncate", Params: Params{"length": 0}}},
		{"truncate with an unknown parameter", Rule{Op: "truncate", Params: Params{"length": 3, "suffix": "…"}}},
		{"round with digits and nearest", Rule{Op: "round", Params: Params{"digits": 1, "nearest": 10}}},
		{"round with negative digits", Rule{Op: "round", Params: Params{"digits": -1}}},
		{"round with too many digits", Rule{Op: "round", Params: Params{"digits": 16}}},
		{"round to nearest zero", Rule{Op: "round", Params: Params{"nearest": 0}}},
		{"round to a negative nearest", Rule{Op: "round", Params: Params{"nearest": -10}}},
		{"round to an infinite nearest", Rule{Op: "round", Params: Params{"nearest": json.Number("1e400")}}},
		{"round to a string nearest", Rule{Op: "round", Params: Params{"nearest": "10"}}},
		{"round with an unknown parameter", Rule{Op: "round", Params: Params{"to": 10}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Compile(Spec{Fields: map[string]Rule{"f": tc.rule}}); err == nil {
				t.Errorf("Compile(%+v) succeeded, want an error", tc.rule)
			}
		})
	}
}

// An unknown parameter is named in the error, so an officer can find the
// typo.
func TestCompileErrorsNameTheUnknownParameter(t *testing.T) {
	for _, op := range Operators() {
		_, err := Compile(Spec{Fields: map[string]Rule{"f": {Op: op, Params: Params{"kep_first": 1}}}})
		if err == nil || !strings.Contains(err.Error(), `"kep_first"`) || !strings.Contains(err.Error(), "fields.f: "+op) {
			t.Errorf("%s with an unknown parameter: error %v, want one naming fields.f, %s and \"kep_first\"", op, err, op)
		}
	}
}

// TestCalendarDatesParseAsTimeParseDoes: the fast calendar-date parser
// accepts exactly what time.Parse(time.DateOnly) accepts among ten-byte
// strings, with the same result.
func TestCalendarDatesParseAsTimeParseDoes(t *testing.T) {
	cases := []string{"2025-01-01", "2024-02-29", "2025-02-29", "2025-02-28", "2025-04-31", "2025-12-31",
		"2025-13-01", "2025-00-10", "2025-01-00", "0000-01-01", "9999-12-31", "2025/01/01", "2025-1-011",
		"20a5-01-01", "2025-01-0x", "+025-01-01", "2025-01-32", "1900-02-29", "2000-02-29"}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		cases = append(cases, fmt.Sprintf("%04d-%02d-%02d", rng.IntN(10000), rng.IntN(14), rng.IntN(33)))
	}
	for _, s := range cases {
		want, err := time.Parse(time.DateOnly, s)
		got, ok := parseCalendarDate(s)
		if ok != (err == nil) || (ok && !got.Equal(want)) {
			t.Errorf("%q: fast parse %v %v, time.Parse %v %v", s, got, ok, want, err)
		}
		if gotB, okB := parseCalendarDate([]byte(s)); okB != ok || !gotB.Equal(got) {
			t.Errorf("%q: the []byte form disagrees", s)
		}
	}
}
