package anonymize

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// opCase is one value released through one treatment. want is the released
// value as encoding/json decodes it (numbers as json.Number); fallback says
// the operator could not handle the value and it was redacted instead.
type opCase struct {
	name     string
	rule     Rule
	in       string // the upstream value, as JSON
	want     any
	fallback bool
}

// redacted is what every fallback releases.
const redacted = "[REDACTED]"

func runOpCases(t *testing.T, cases []opCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, fallbacks := releaseOne(t, tc.rule, tc.in, testEnv(t))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s(%s) mismatch (-want +got):\n%s", tc.rule.Op, tc.in, diff)
			}
			if wantFB := btoi(tc.fallback); fallbacks != wantFB {
				t.Errorf("Stats.Fallbacks = %d, want %d", fallbacks, wantFB)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// releaseOne transforms a one-record body {"f": in} under {"f": rule} and
// returns the released value of f and the number of fallbacks.
func releaseOne(t *testing.T, rule Rule, in string, env *Env) (any, int) {
	t.Helper()
	p := mustCompile(t, Spec{Fields: map[string]Rule{"f": rule}})
	var out bytes.Buffer
	st, err := p.Transform(&out, strings.NewReader(`{"items":[{"f":`+in+`}]}`), itemsShape, env, Limits{})
	if err != nil {
		t.Fatalf("Transform: %v", err)
	}
	if !json.Valid(out.Bytes()) {
		t.Fatalf("output is not valid JSON: %s", out.Bytes())
	}
	var got struct{ Items []map[string]any }
	dec := json.NewDecoder(&out)
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode output: %v", err)
	}
	if len(got.Items) != 1 {
		t.Fatalf("released %d records, want 1", len(got.Items))
	}
	v, ok := got.Items[0]["f"]
	if !ok {
		t.Fatalf("field f missing from the output %s", out.Bytes())
	}
	return v, st.Fallbacks
}

func TestKeepReleasesScalarsUnchanged(t *testing.T) {
	keep := Rule{Op: "keep"}
	runOpCases(t, []opCase{
		{name: "ascii string", rule: keep, in: `"abc"`, want: "abc"},
		{name: "chinese string", rule: keep, in: `"朝阳区"`, want: "朝阳区"},
		{name: "empty string", rule: keep, in: `""`, want: ""},
		{name: "escaped string", rule: keep, in: `"\u671d\u9633\u533a \"q\" \\ \n"`, want: "朝阳区 \"q\" \\ \n"},
		{name: "integer", rule: keep, in: `42`, want: json.Number("42")},
		{name: "number keeps its literal form", rule: keep, in: `-1.50e+3`, want: json.Number("-1.50e+3")},
		{name: "true", rule: keep, in: `true`, want: true},
		{name: "false", rule: keep, in: `false`, want: false},
		{name: "null", rule: keep, in: `null`, want: nil},
		{name: "invalid UTF-8 becomes U+FFFD", rule: keep, in: "\"a\xffb\"", want: "a\ufffdb"},
		{name: "line separator", rule: keep, in: "\"a\u2028b\"", want: "a\u2028b"},
		{name: "object is not a scalar", rule: keep, in: `{"secret":"x"}`, want: redacted, fallback: true},
		{name: "array is not a scalar", rule: keep, in: `["secret"]`, want: redacted, fallback: true},
		{name: "empty object", rule: keep, in: `{}`, want: redacted, fallback: true},
	})
}

func TestKeepNeverWritesRawLineSeparatorsOrInvalidUTF8(t *testing.T) {
	p := mustCompile(t, Spec{Fields: map[string]Rule{"f": {Op: "keep"}}})
	out, _ := release(t, p, itemsShape, "{\"items\":[{\"f\":\"a\u2028b\u2029c\xfe\"}]}")
	for _, bad := range []string{"\u2028", "\u2029", "\xfe"} {
		if bytes.Contains(out, []byte(bad)) {
			t.Errorf("output %q holds raw %q", out, bad)
		}
	}
}

func TestRedactReplacesAnyValue(t *testing.T) {
	redact := Rule{Op: "redact"}
	runOpCases(t, []opCase{
		{name: "chinese name", rule: redact, in: `"张三"`, want: redacted},
		{name: "empty string", rule: redact, in: `""`, want: redacted},
		{name: "number", rule: redact, in: `110105`, want: redacted},
		{name: "null", rule: redact, in: `null`, want: redacted},
		{name: "object", rule: redact, in: `{"a":1}`, want: redacted},
		{name: "array", rule: redact, in: `[1,2]`, want: redacted},
	})
}

func TestMaskHidesAllButTheKeptCharacters(t *testing.T) {
	phone := Rule{Op: "mask", Params: Params{"keep_first": 3, "keep_last": 4}}
	surname := Rule{Op: "mask", Params: Params{"keep_first": 1}}
	id := Rule{Op: "mask", Params: Params{"keep_first": 6.0, "keep_last": json.Number("4")}}
	all := Rule{Op: "mask"}
	hash := Rule{Op: "mask", Params: Params{"keep_first": 3, "keep_last": 4, "char": "#"}}
	dot := Rule{Op: "mask", Params: Params{"keep_last": 2, "char": "●"}}
	runOpCases(t, []opCase{
		{name: "phone", rule: phone, in: `"13812345678"`, want: "138****5678"},
		{name: "phone given as a number", rule: phone, in: `13812345678`, want: "138****5678"},
		{name: "one character hidden", rule: phone, in: `"12345678"`, want: "123*5678"},
		{name: "too short to hide anything is masked whole", rule: phone, in: `"1234567"`, want: "*******"},
		{name: "shorter than the kept characters", rule: phone, in: `"12"`, want: "**"},
		{name: "single character", rule: phone, in: `"1"`, want: "*"},
		{name: "empty string", rule: phone, in: `""`, want: redacted, fallback: true},
		{name: "id number", rule: id, in: `"11010519491231002X"`, want: "110105********002X"},
		{name: "chinese name keeps the surname", rule: surname, in: `"张三丰"`, want: "张**"},
		{name: "counts characters not bytes", rule: phone, in: `"北京市朝阳区建国路八十八号"`, want: "北京市******八十八号"},
		{name: "escaped input is masked decoded", rule: phone, in: `"\u0031\u0033\u00388888\u0035678"`, want: "138****5678"},
		{name: "no parameters masks everything", rule: all, in: `"secret"`, want: "******"},
		{name: "custom char", rule: hash, in: `"13812345678"`, want: "138####5678"},
		{name: "multibyte char", rule: dot, in: `"abcd"`, want: "●●cd"},
		{name: "bool", rule: phone, in: `true`, want: redacted, fallback: true},
		{name: "null", rule: phone, in: `null`, want: redacted, fallback: true},
		{name: "object", rule: phone, in: `{"n":"13812345678"}`, want: redacted, fallback: true},
		{name: "array", rule: phone, in: `["13812345678"]`, want: redacted, fallback: true},
	})
}

func TestMaskNameCNKeepsTheSurname(t *testing.T) {
	name := Rule{Op: "mask_name_cn"}
	runOpCases(t, []opCase{
		{name: "two characters", rule: name, in: `"张伟"`, want: "张*"},
		{name: "three characters", rule: name, in: `"张三丰"`, want: "张**"},
		{name: "compound surname", rule: name, in: `"欧阳娜娜"`, want: "欧阳**"},
		{name: "compound surname, one given character", rule: name, in: `"诸葛亮"`, want: "诸葛*"},
		{name: "compound surname alone reads as surname and given name", rule: name, in: `"司马"`, want: "司*"},
		{name: "single character is masked whole", rule: name, in: `"王"`, want: "*"},
		{name: "surrounding spaces are trimmed", rule: name, in: `" 李四 "`, want: "李*"},
		{name: "latin name", rule: name, in: `"Li"`, want: "L*"},
		{name: "escaped", rule: name, in: `"\u6b27\u9633\u5a1c\u5a1c"`, want: "欧阳**"},
		{name: "empty string", rule: name, in: `""`, want: redacted, fallback: true},
		{name: "only spaces", rule: name, in: `"   "`, want: redacted, fallback: true},
		{name: "number", rule: name, in: `42`, want: redacted, fallback: true},
		{name: "object", rule: name, in: `{"surname":"张"}`, want: redacted, fallback: true},
	})
}

func TestGeneralizeCoarsensDates(t *testing.T) {
	month := Rule{Op: "generalize", Params: Params{"to": "month"}}
	year := Rule{Op: "generalize", Params: Params{"to": "year"}}
	runOpCases(t, []opCase{
		{name: "date to month", rule: month, in: `"2026-03-14"`, want: "2026-03"},
		{name: "date to year", rule: year, in: `"2026-03-14"`, want: "2026"},
		{name: "RFC 3339 to month", rule: month, in: `"2026-03-14T10:20:30Z"`, want: "2026-03"},
		{name: "RFC 3339 with offset keeps its own calendar", rule: month, in: `"2026-03-31T23:30:00+08:00"`, want: "2026-03"},
		{name: "RFC 3339 with fraction to year", rule: year, in: `"2026-12-31T23:59:59.999Z"`, want: "2026"},
		{name: "escaped date", rule: month, in: `"2026\u002d03-14"`, want: "2026-03"},
		{name: "invalid month", rule: month, in: `"2026-13-01"`, want: redacted, fallback: true},
		{name: "invalid day", rule: month, in: `"2026-02-30"`, want: redacted, fallback: true},
		{name: "other layout", rule: month, in: `"14/03/2026"`, want: redacted, fallback: true},
		{name: "empty", rule: year, in: `""`, want: redacted, fallback: true},
		{name: "number", rule: year, in: `20260314`, want: redacted, fallback: true},
		{name: "object", rule: year, in: `{"y":2026}`, want: redacted, fallback: true},
	})
}

func TestPseudonymizeReplacesValuesWithKeyedHashes(t *testing.T) {
	rule := Rule{Op: "pseudonymize"}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, in := range []string{`"110105194912310021"`, `""`, `"张三"`, `42`, `"\u0034\u0032"`} {
		got, fallbacks := releaseOne(t, rule, in, testEnv(t))
		s, _ := got.(string)
		if !hex32.MatchString(s) || fallbacks != 0 {
			t.Errorf("pseudonymize(%s) = %v with %d fallbacks, want 32 lowercase hex digits", in, got, fallbacks)
		}
		var raw any
		json.Unmarshal([]byte(in), &raw)
		if str, ok := raw.(string); ok && str != "" && strings.Contains(s, str) {
			t.Errorf("pseudonymize(%s) = %q holds the raw value", in, s)
		}
	}
	runOpCases(t, []opCase{
		{name: "bool", rule: rule, in: `true`, want: redacted, fallback: true},
		{name: "null", rule: rule, in: `null`, want: redacted, fallback: true},
		{name: "object", rule: rule, in: `{"id":"110105194912310021"}`, want: redacted, fallback: true},
		{name: "array", rule: rule, in: `["110105194912310021"]`, want: redacted, fallback: true},
	})
}

func TestPseudonymizeWithoutKeysRedacts(t *testing.T) {
	for name, env := range map[string]*Env{"no keys": {Dataset: "health/visits"}, "no env": nil} {
		t.Run(name, func(t *testing.T) {
			got, fallbacks := releaseOne(t, Rule{Op: "pseudonymize"}, `"110105194912310021"`, env)
			if got != redacted || fallbacks != 1 {
				t.Errorf("got %v with %d fallbacks, want %q with 1", got, fallbacks, redacted)
			}
		})
	}
}

// pseudonym releases value through pseudonymize in scope under env.
func pseudonym(t *testing.T, scope, value string, env *Env) string {
	t.Helper()
	got, _ := releaseOne(t, Rule{Op: "pseudonymize", Params: Params{"scope": scope}}, value, env)
	return got.(string)
}

func TestPseudonymsLinkOnlyWithinTheirScope(t *testing.T) {
	const id = `"110105194912310021"`
	keys := testKeys(t)
	otherKeys, err := NewKeys(bytes.Repeat([]byte("o"), 32))
	if err != nil {
		t.Fatal(err)
	}
	alice := func() *Env { e := testEnv(t); e.Keys = keys; return e }
	with := func(change func(*Env)) *Env { e := alice(); change(e); return e }
	tests := []struct {
		name   string
		scope  string
		a, b   *Env
		va, vb string
		same   bool
	}{
		{"same value, dataset scope", "dataset", alice(), alice(), id, id, true},
		{"same value, consumer scope", "consumer", alice(), alice(), id, id, true},
		{"same value, global scope", "global", alice(), alice(), id, id, true},
		{"number and string of the same digits", "dataset", alice(), alice(), `42`, `"42"`, true},
		{"different values", "dataset", alice(), alice(), id, `"110105194912310022"`, false},
		{"other dataset, dataset scope", "dataset", alice(), with(func(e *Env) { e.Dataset = "civil/assistance" }), id, id, false},
		{"other dataset, global scope", "global", alice(), with(func(e *Env) { e.Dataset = "civil/assistance" }), id, id, true},
		{"other consumer, consumer scope", "consumer", alice(), with(func(e *Env) { e.Consumer = "bob" }), id, id, false},
		{"other consumer of the same organisation, dataset scope", "dataset", alice(), with(func(e *Env) { e.Consumer = "bob" }), id, id, true},
		{"other key", "global", alice(), with(func(e *Env) { e.Keys = otherKeys }), id, id, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pseudonym(t, tc.scope, tc.va, tc.a), pseudonym(t, tc.scope, tc.vb, tc.b)
			if (a == b) != tc.same {
				t.Errorf("pseudonyms %s and %s: equal = %v, want %v", a, b, a == b, tc.same)
			}
		})
	}

	t.Run("scopes differ from each other", func(t *testing.T) {
		env := alice()
		g, d, c := pseudonym(t, "global", id, env), pseudonym(t, "dataset", id, env), pseudonym(t, "consumer", id, env)
		if g == d || d == c || g == c {
			t.Errorf("global %s, dataset %s, consumer %s: want three different pseudonyms", g, d, c)
		}
	})
}

// An Env reused for another caller must not keep pseudonymising in the
// previous caller's scope: that would let two consumers link their records.
func TestPseudonymsFollowTheEnvTheyAreGiven(t *testing.T) {
	const id = `"110105194912310021"`
	keys := testKeys(t)
	env := &Env{Keys: keys, Consumer: "alice", Dataset: "health/visits"}
	aliceConsumer, aliceDataset := pseudonym(t, "consumer", id, env), pseudonym(t, "dataset", id, env)
	env.Consumer, env.Dataset = "bob", "civil/assistance"
	bobConsumer, bobDataset := pseudonym(t, "consumer", id, env), pseudonym(t, "dataset", id, env)
	fresh := &Env{Keys: keys, Consumer: "bob", Dataset: "civil/assistance"}
	if want := pseudonym(t, "consumer", id, fresh); bobConsumer != want || bobConsumer == aliceConsumer {
		t.Errorf("consumer scope after switching to bob = %s, want %s (alice's was %s)", bobConsumer, want, aliceConsumer)
	}
	if want := pseudonym(t, "dataset", id, fresh); bobDataset != want || bobDataset == aliceDataset {
		t.Errorf("dataset scope after switching datasets = %s, want %s (before: %s)", bobDataset, want, aliceDataset)
	}
	before := pseudonym(t, "global", id, env)
	otherKeys, err := NewKeys(bytes.Repeat([]byte("o"), 32))
	if err != nil {
		t.Fatal(err)
	}
	env.Keys = otherKeys
	after := pseudonym(t, "global", id, env)
	if want := pseudonym(t, "global", id, &Env{Keys: otherKeys}); after != want || after == before {
		t.Errorf("global scope after switching keys = %s, want %s (before: %s)", after, want, before)
	}
}

// Pseudonyms must stay the same across releases of Sluice, or every join a
// department has built on them breaks: pin the derivation. (The scopes
// keyed by organisation and purpose replaced the old dataset and consumer
// labels on purpose, so that two organisations cannot join; global's
// label is the old one.)
func TestPseudonymsAreStableAcrossReleases(t *testing.T) {
	secret := bytes.Repeat([]byte("k"), 32)
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	root := mac(secret, "sluice/pseudonym/v1")
	// testEnv: issuer https://idp.example, org health, subject alice,
	// purpose public-health, dataset health/visits; 2026-11-26T10:00:00Z
	// falls in 90-day period 230 and 7-day period 2969 counted from 1970.
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rule  Params
		label string
	}{
		{Params{"scope": "global"}, "global"},
		{nil, "org_purpose/19:https://idp.example/10:org:health/13:public-health"},
		{Params{"scope": "org_purpose"}, "org_purpose/19:https://idp.example/10:org:health/13:public-health"},
		{Params{"scope": "dataset"}, "dataset/19:https://idp.example/10:org:health/13:public-health/13:health/visits"},
		{Params{"scope": "consumer"}, "consumer/19:https://idp.example/10:org:health/5:alice/13:public-health"},
		{Params{"scope": "shared:fusion-2027"}, "shared/11:fusion-2027"},
		{Params{"rotate": "90d"}, "org_purpose/19:https://idp.example/10:org:health/13:public-health@rotate=7776000,period=230"},
		{Params{"scope": "global", "rotate": "7d"}, "global@rotate=604800,period=2969"},
	} {
		want := hex.EncodeToString(mac(mac(root, tc.label), "110105194912310021")[:16])
		env := testEnv(t)
		env.Now = func() time.Time { return now }
		got, _ := releaseOne(t, Rule{Op: "pseudonymize", Params: tc.rule}, `"110105194912310021"`, env)
		if got != want {
			t.Errorf("%v: pseudonym = %s, want %s (label %q)", tc.rule, got, want, tc.label)
		}
	}
}

func TestNewKeysRejectsShortSecrets(t *testing.T) {
	if _, err := NewKeys(make([]byte, 31)); err == nil {
		t.Error("NewKeys accepted a 31-byte secret")
	}
	if _, err := NewKeys(make([]byte, 32)); err != nil {
		t.Errorf("NewKeys(32 bytes): %v", err)
	}
}

func TestCompileRejectsBadTreatments(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]Rule
	}{
		{"unknown operator", map[string]Rule{"a": {Op: "encrypt"}}},
		{"empty operator", map[string]Rule{"a": {Op: ""}}},
		{"keep with a parameter", map[string]Rule{"a": {Op: "keep", Params: Params{"x": 1}}}},
		{"drop with a parameter", map[string]Rule{"a": {Op: "drop", Params: Params{"x": 1}}}},
		{"redact with a parameter", map[string]Rule{"a": {Op: "redact", Params: Params{"char": "*"}}}},
		{"mask_name_cn with a parameter", map[string]Rule{"a": {Op: "mask_name_cn", Params: Params{"keep_first": 1}}}},
		{"mask with an unknown parameter", map[string]Rule{"a": {Op: "mask", Params: Params{"keep_middle": 1}}}},
		{"mask with negative keep_first", map[string]Rule{"a": {Op: "mask", Params: Params{"keep_first": -1}}}},
		{"mask with negative keep_last", map[string]Rule{"a": {Op: "mask", Params: Params{"keep_last": -4.0}}}},
		{"mask with fractional keep_first", map[string]Rule{"a": {Op: "mask", Params: Params{"keep_first": 1.5}}}},
		{"mask with keep_first as a string", map[string]Rule{"a": {Op: "mask", Params: Params{"keep_first": "3"}}}},
		{"mask with huge keep_last", map[string]Rule{"a": {Op: "mask", Params: Params{"keep_last": 1 << 40}}}},
		{"mask with fractional json.Number", map[string]Rule{"a": {Op: "mask", Params: Params{"keep_last": json.Number("4.5")}}}},
		{"mask with a two-rune char", map[string]Rule{"a": {Op: "mask", Params: Params{"char": "**"}}}},
		{"mask with an empty char", map[string]Rule{"a": {Op: "mask", Params: Params{"char": ""}}}},
		{"mask with a non-string char", map[string]Rule{"a": {Op: "mask", Params: Params{"char": 42}}}},
		{"pseudonymize with an unknown scope", map[string]Rule{"a": {Op: "pseudonymize", Params: Params{"scope": "world"}}}},
		{"pseudonymize with a non-string scope", map[string]Rule{"a": {Op: "pseudonymize", Params: Params{"scope": 1}}}},
		{"pseudonymize with an unknown parameter", map[string]Rule{"a": {Op: "pseudonymize", Params: Params{"salt": "x"}}}},
		{"generalize without to", map[string]Rule{"a": {Op: "generalize"}}},
		{"generalize to day", map[string]Rule{"a": {Op: "generalize", Params: Params{"to": "day"}}}},
		{"generalize with an unknown parameter", map[string]Rule{"a": {Op: "generalize", Params: Params{"to": "year", "round": true}}}},
		{"empty path", map[string]Rule{"": {Op: "keep"}}},
		{"empty segment", map[string]Rule{"a..b": {Op: "keep"}}},
		{"trailing dot", map[string]Rule{"a.": {Op: "keep"}}},
		{"indexed array", map[string]Rule{"a[0]": {Op: "keep"}}},
		{"bare brackets", map[string]Rule{"[]": {Op: "keep"}}},
		{"stray bracket", map[string]Rule{"a]": {Op: "keep"}}},
		{"field and its part", map[string]Rule{"address": {Op: "keep"}, "address.city": {Op: "keep"}}},
		{"field and its elements", map[string]Rule{"tags": {Op: "redact"}, "tags[]": {Op: "keep"}}},
		{"elements and their parts", map[string]Rule{"contacts[]": {Op: "keep"}, "contacts[].phone": {Op: "keep"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := Compile(Spec{Fields: tc.fields}); err == nil {
				t.Errorf("Compile(%v) = %v, want an error", tc.fields, p.Treatments())
			}
		})
	}
}

func TestCompileAcceptsParametersAsRegoGivesThem(t *testing.T) {
	for _, v := range []any{4, int64(4), 4.0, json.Number("4")} {
		got, _ := releaseOne(t, Rule{Op: "mask", Params: Params{"keep_last": v}}, `"13812345678"`, testEnv(t))
		if got != "*******5678" {
			t.Errorf("keep_last %T(%v): got %v, want *******5678", v, v, got)
		}
	}
}

func TestOperatorsListsEveryRegisteredOperator(t *testing.T) {
	want := []string{"drop", "generalize", "keep", "mask", "mask_address", "mask_bank_card", "mask_email", "mask_id_cn",
		"mask_name_cn", "mask_phone_cn", "null", "pseudonymize", "redact", "replace", "round", "truncate"}
	if diff := cmp.Diff(want, Operators()); diff != "" {
		t.Errorf("Operators() mismatch (-want +got):\n%s", diff)
	}
}

func TestParseRuleReadsBothForms(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		want    Rule
		wantErr bool
	}{
		{name: "name", in: "keep", want: Rule{Op: "keep"}},
		{name: "object without params", in: map[string]any{"op": "redact"}, want: Rule{Op: "redact"}},
		{name: "object with params", in: map[string]any{"op": "mask", "keep_last": json.Number("4")},
			want: Rule{Op: "mask", Params: Params{"keep_last": json.Number("4")}}},
		{name: "object without op", in: map[string]any{"keep_last": 4}, wantErr: true},
		{name: "object with a non-string op", in: map[string]any{"op": 1}, wantErr: true},
		{name: "number", in: 1.0, wantErr: true},
		{name: "null", in: nil, wantErr: true},
		{name: "array", in: []any{"keep"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRule(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseRule(%v) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseRule(%v) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestValidIDCNChecksTheCheckDigit(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"11010519491231002X", true},
		{"11010519491231002x", true},
		{"110105194912310021", false},
		{"11010519491231002", false},
		{"1101051949123100211", false},
		{"1101051949123100A2X", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := ValidIDCN(tc.id); got != tc.want {
			t.Errorf("ValidIDCN(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
	if c, ok := CheckDigitCN("11010519491231002"); !ok || c != 'X' {
		t.Errorf("CheckDigitCN(11010519491231002) = %q, %v; want 'X', true", c, ok)
	}
}
