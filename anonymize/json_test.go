package anonymize

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// scanValid reports whether b is one JSON value, as the transform's scanner
// judges it, with the whitespace json.Valid allows around it.
func scanValid(b []byte) (bool, error) {
	end, err := scanValue(b, skipWS(b, 0), 0)
	if err != nil {
		return false, err
	}
	return skipWS(b, end) == len(b), nil
}

// jsonGrammarCases are inputs on which the scanner and encoding/json must
// agree.
var jsonGrammarCases = []string{
	// numbers
	`0`, `-0`, `7`, `-7`, `10`, `1.5`, `-0.0`, `1e5`, `1E+10`, `1e-5`, `2.5E-3`, `123456789012345678901234567890`, `1e999`,
	`-`, `--1`, `+1`, `01`, `-01`, `00`, `1.`, `.1`, `-.1`, `1.e5`, `1e`, `1e+`, `1E-`, `1.5e`, `0x10`, `1_000`, `Infinity`,
	`-Infinity`, `NaN`, `1 2`, `1-`, `0.1.2`, `1e5e5`,
	// literals
	`true`, `false`, `null`, `tru`, `nul`, `fals`, `True`, `NULL`, `truee`, `nullx`, `true false`,
	// strings
	`""`, `"a"`, `"`, `"abc`, `"\"`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\u00"`, `"\u00g0"`, `"\ud800"`,
	`"\ud83d\ude00"`, `"\x"`, `"\'"`, `"\U00e9"`, "\"\t\"", "\"\n\"", "\"\x00\"", "\"\x1f\"", "\"\x7f\"", "\"\xff\"",
	"\"\xe2\x80\xa8\"", `"朝阳区"`, `'a'`,
	// objects
	`{}`, `{ }`, `{"a":1}`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1 "b":2}`, `{"a":1,"a":2}`, `{,}`, `{"a":1}}`,
	`{"a" : { "b" : [ ] } }`, `{1:2}`, `{"a":1,,"b":2}`, `{`, `{"a":1`, `{"a"`,
	// arrays
	`[]`, `[ ]`, `[1]`, `[1,]`, `[,1]`, `[1 2]`, `[1,,2]`, `[[[]]]`, `[}`, `{]`, `[`, `]`, `[1`, `[1,`, `[[]`,
	// whitespace and trailing data
	` 1 `, "\n[1]\t", "\r\n{}\r\n", ``, ` `, `[1]x`, `{}{}`, `[] []`, "\v1", "\f1", "\u00a01",
	// mixed
	`{"a":[1,{"b":null,"c":[true,false,"x\"y"]}],"d":-1.5e-7}`, `/* */1`, `1 // c`,
}

func TestScanValueAcceptsExactlyTheJSONGrammar(t *testing.T) {
	for _, in := range jsonGrammarCases {
		got, _ := scanValid([]byte(in))
		if want := json.Valid([]byte(in)); got != want {
			t.Errorf("scanValue(%q) valid = %v, want %v as encoding/json", in, got, want)
		}
	}
}

func TestScanValueBoundsNesting(t *testing.T) {
	tests := []struct {
		name   string
		open   string
		close  string
		levels int
		ok     bool
	}{
		{"arrays at the limit", "[", "]", maxDepth, true},
		{"arrays past the limit", "[", "]", maxDepth + 1, false},
		{"objects at the limit", `{"a":`, "}", maxDepth, true},
		{"objects past the limit", `{"a":`, "}", maxDepth + 1, false},
		{"far past the limit", "[", "]", 100000, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Repeat(tc.open, tc.levels) + "1" + strings.Repeat(tc.close, tc.levels)
			if !json.Valid([]byte(in)) && tc.levels <= 10000 {
				t.Fatalf("test input is not JSON: %.40s", in)
			}
			ok, err := scanValid([]byte(in))
			if ok != tc.ok {
				t.Errorf("%d levels: valid = %v (%v), want %v", tc.levels, ok, err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, errDepth) {
				t.Errorf("%d levels: error = %v, want %v", tc.levels, err, errDepth)
			}
		})
	}
}

func TestScanStringReportsPlainStrings(t *testing.T) {
	tests := []struct {
		in    string
		plain bool
	}{
		{`"abc 123 ~!@#"`, true},
		{`""`, true},
		{`"a\"b"`, false},
		{`"\u0061"`, false},
		{`"朝阳区"`, false},
		{"\"a\xffb\"", false},
	}
	for _, tc := range tests {
		end, plain, err := scanString([]byte(tc.in), 0)
		if err != nil || end != len(tc.in) || plain != tc.plain {
			t.Errorf("scanString(%q) = %d, %v, %v; want %d, %v, nil", tc.in, end, plain, err, len(tc.in), tc.plain)
		}
	}
}

// stringLiterals are valid JSON string literals whose decoding must match
// encoding/json's.
var stringLiterals = []string{
	`""`, `"abc"`, `"朝阳区"`, `"\u671d\u9633\u533a"`, `"\u00e9"`, `"\u00E9"`, `"a\/b"`, `"\b\f\n\r\t\"\\"`, `"\u0000"`,
	`"\ud83d\ude00"`, `"\uD83D\uDE00"`, `"\uDBFF\uDFFF"`,
	`"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`, `"\ud83d\\"`, `"\ud83d\n"`,
	`"\ud800\udc00\ud800"`, `"x\ud800"`, `"\ude00\ud83d"`,
	"\"\xff\xfe\"", "\"a\xc3\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x80\xa8\"", `"\u2028\u2029"`, `"\ufffd"`,
}

func TestDecodeStringMatchesEncodingJSON(t *testing.T) {
	for _, in := range stringLiterals {
		var want string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("test literal %q: %v", in, err)
		}
		if got := decodeString([]byte(in)); got != want {
			t.Errorf("decodeString(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendStringRoundTrips(t *testing.T) {
	for _, s := range []string{
		"", "abc", "朝阳区", `"\/`, "\b\f\n\r\t", "\x00\x01\x1f", "\x7f", "\u2028\u2029", "a\u2028b", "😀", "<>&",
		"\ufffd", "a\xffb", "\xed\xa0\x80", "\xc3", "\xf4\x90\x80\x80", "end\\",
	} {
		out := appendString(nil, s)
		want := string([]rune(s)) // each invalid byte becomes U+FFFD
		var got string
		if err := json.Unmarshal(out, &got); err != nil || got != want {
			t.Errorf("appendString(%q) = %s, decodes to %q (%v), want %q", s, out, got, err, want)
		}
		if got := decodeString(out); got != want {
			t.Errorf("decodeString(appendString(%q)) = %q, want %q", s, got, want)
		}
		if !utf8.Valid(out) {
			t.Errorf("appendString(%q) = %q is not valid UTF-8", s, out)
		}
		for _, c := range out {
			if c < 0x20 {
				t.Errorf("appendString(%q) = %q holds a raw control character", s, out)
				break
			}
		}
		if bytes.Contains(out, []byte("\u2028")) || bytes.Contains(out, []byte("\u2029")) {
			t.Errorf("appendString(%q) = %q holds a raw line or paragraph separator", s, out)
		}
	}
}

func TestAppendStringAppends(t *testing.T) {
	got := string(appendString([]byte(`{"a":`), "b"))
	if want := `{"a":"b"`; got != want {
		t.Errorf("appendString onto a prefix = %s, want %s", got, want)
	}
}

func TestValueText(t *testing.T) {
	tests := []struct {
		raw  string
		kind Kind
		want string
		ok   bool
	}{
		{`"abc"`, String, "abc", true},
		{`"\u0061\n"`, String, "a\n", true},
		{`-1.5e3`, Number, "-1.5e3", true},
		{`true`, Bool, "", false},
		{`null`, Null, "", false},
		{`{}`, Object, "", false},
		{`[]`, Array, "", false},
	}
	for _, tc := range tests {
		_, plain, _ := scanString([]byte(tc.raw), 0)
		v := Value{Raw: []byte(tc.raw), Kind: kindOf(tc.raw[0]), plain: plain && tc.raw[0] == '"'}
		if v.Kind != tc.kind {
			t.Errorf("kindOf(%s) = %v, want %v", tc.raw, v.Kind, tc.kind)
		}
		if got, ok := v.Text(); got != tc.want || ok != tc.ok {
			t.Errorf("Value(%s).Text() = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzJSONAgreesWithEncodingJSON checks the scanner, decodeString and
// appendString against encoding/json on arbitrary input.
func FuzzJSONAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range jsonGrammarCases {
		f.Add([]byte(s))
	}
	for _, s := range stringLiterals {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := scanValid(b)
		if want := json.Valid(b); got != want && !(want && errors.Is(err, errDepth)) {
			t.Fatalf("scanValue(%q) valid = %v (%v), encoding/json says %v", b, got, err, want)
		}
		if start := skipWS(b, 0); got && b[start] == '"' {
			lit, _, _ := scanString(b, start)
			var want string
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if got := decodeString(b[start:lit]); got != want {
				t.Fatalf("decodeString(%q) = %q, encoding/json decodes %q", b[start:lit], got, want)
			}
		}
		out := appendString(nil, string(b))
		var back string
		if err := json.Unmarshal(out, &back); err != nil || back != string([]rune(string(b))) || !utf8.Valid(out) {
			t.Fatalf("appendString(%q) = %q does not round-trip (%v)", b, out, err)
		}
	})
}

// TestWordAtATimeTestsMatchByteTests: the eight-bytes-at-a-time tests the
// string scanners skip with agree with testing each byte, on random words
// and on words built from the bytes that matter.
func TestWordAtATimeTestsMatchByteTests(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	special := []byte{0, 0x1f, 0x20, 0x21, '"', '\\', 0x7f, 0x80, 0x81, 0xfe, 0xff, 'a'}
	check := func(v uint64) {
		var less20, quote, back bool
		for k := range 8 {
			c := byte(v >> (8 * k))
			less20 = less20 || c < 0x20
			quote = quote || c == '"'
			back = back || c == '\\'
		}
		if hasLess(v, 0x20) != less20 || hasByte(v, '"') != quote || hasByte(v, '\\') != back {
			t.Fatalf("%016x: hasLess %v (want %v), quote %v (want %v), backslash %v (want %v)",
				v, hasLess(v, 0x20), less20, hasByte(v, '"'), quote, hasByte(v, '\\'), back)
		}
	}
	for range 1_000_000 {
		check(rng.Uint64())
		var v uint64
		for k := range 8 {
			v |= uint64(special[rng.IntN(len(special))]) << (8 * k)
		}
		check(v)
	}
	for _, s := range []string{"", "abc", `abcdefgh"`, `abcdefghijklmno\`, "朝阳区朝阳区\"", strings.Repeat("x", 64)} {
		want := strings.IndexAny(s, `"\`)
		if want < 0 {
			want = len(s)
		}
		if got := skipStringBytes([]byte(s)); got != want {
			t.Errorf("skipStringBytes(%q) = %d, want %d", s, got, want)
		}
	}
}
