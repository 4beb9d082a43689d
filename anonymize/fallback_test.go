package anonymize

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// catalogue is every operator with parameters that compile and the kinds of
// value it can release. A new operator must be added here, or
// TestEveryOperatorRedactsWhatItCannotHandle fails.
var catalogue = map[string]struct {
	params  Params
	handles []Kind // kinds some value of which the operator releases
}{
	"keep":           {nil, []Kind{Null, Bool, Number, String}},
	"null":           {nil, []Kind{Null, Bool, Number, String, Object, Array}},
	"redact":         {nil, []Kind{Null, Bool, Number, String, Object, Array}},
	"replace":        {Params{"value": "x"}, []Kind{Null, Bool, Number, String, Object, Array}},
	"mask":           {Params{"keep_last": 4}, []Kind{Number, String}},
	"mask_id_cn":     {nil, []Kind{String}},
	"mask_phone_cn":  {nil, []Kind{Number, String}},
	"mask_name_cn":   {nil, []Kind{String}},
	"mask_email":     {nil, []Kind{String}},
	"mask_bank_card": {nil, []Kind{Number, String}},
	"mask_address":   {nil, []Kind{String}},
	"pseudonymize":   {nil, []Kind{Number, String}},
	"generalize":     {Params{"to": "month"}, []Kind{String}},
	"truncate":       {Params{"length": 4}, []Kind{String}},
	"round":          {nil, []Kind{Number}},
}

// hostile are values of every kind, each carrying a secret that must not
// come out of an operator that cannot handle it.
var hostile = map[Kind][]string{
	Null:   {`null`},
	Bool:   {`true`, `false`},
	Number: {`13812345678`, `110105199001051234`, `1e400`, `-0.000123456789`},
	String: {`"secret-13812345678"`, `""`, "\"\xff\xfe13812345678\"", `"\u0000\u2028secret-value"`},
	Object: {`{"phone":"13812345678","id":"110105199001051234"}`, `{}`},
	Array:  {`["13812345678"]`, `[]`, `[{"id":"110105199001051234"}]`},
}

func TestEveryOperatorRedactsWhatItCannotHandle(t *testing.T) {
	for _, op := range Operators() {
		if op == "drop" {
			continue // never written at all: TestTransformReleasesOnlyNamedFieldsAtEveryDepth
		}
		entry, ok := catalogue[op]
		if !ok {
			t.Errorf("operator %q is missing from the catalogue of this test", op)
			continue
		}
		rule := Rule{Op: op, Params: entry.params}
		for kind, values := range hostile {
			handles := false
			for _, k := range entry.handles {
				handles = handles || k == kind
			}
			for _, in := range values {
				p := mustCompile(t, Spec{Fields: map[string]Rule{"f": rule}})
				var out bytes.Buffer
				st, err := p.Transform(&out, strings.NewReader(`{"items":[{"f":`+in+`}]}`), itemsShape, testEnv(t), Limits{})
				if err != nil {
					t.Fatalf("%s(%s): %v", op, in, err)
				}
				checkOutput(t, out.Bytes())
				var got struct{ Items []map[string]json.RawMessage }
				if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Items) != 1 {
					t.Fatalf("%s(%s): output %s", op, in, out.Bytes())
				}
				v := string(got.Items[0]["f"])
				if st.Fallbacks > 1 || (op != "redact" && (st.Fallbacks == 1) != (v == redactedToken)) {
					t.Errorf("%s(%s) = %s with %d fallbacks: a fallback is counted exactly when the value is redacted", op, in, v, st.Fallbacks)
				}
				if !handles && v != redactedToken && op != "null" && op != "replace" && op != "redact" {
					t.Errorf("%s(%s) = %s, want it redacted: the operator cannot handle a %s", op, in, v, kind)
				}
				if (kind == Object || kind == Array) && op != "keep" && strings.Contains(v, "138") {
					t.Errorf("%s(%s) = %s releases part of a nested value", op, in, v)
				}
			}
		}
	}
}

// The registry and OPERATORS.md must list the same operators, so the
// document officers read never falls behind the code.
func TestOperatorsDocumentListsEveryOperator(t *testing.T) {
	b, err := os.ReadFile("OPERATORS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, op := range Operators() {
		if !strings.Contains(doc, "\n### `"+op+"`\n") {
			t.Errorf("OPERATORS.md has no section \"### `%s`\"", op)
		}
	}
}

// exampleRow is one row of an example table in OPERATORS.md:
// | `treatment` | `value` | `released` | or — for a dropped field.
var exampleRow = regexp.MustCompile("^\\| `(.+)` \\| `(.+)` \\| (?:`(.+)`|—) \\|$")

func TestOperatorsDocumentExamples(t *testing.T) {
	b, err := os.ReadFile("OPERATORS.md")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	rows := 0
	for i, line := range strings.Split(string(b), "\n") {
		m := exampleRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rows++
		var treatment any
		if err := json.Unmarshal([]byte(m[1]), &treatment); err != nil {
			t.Errorf("OPERATORS.md:%d: treatment %s: %v", i+1, m[1], err)
			continue
		}
		rule, err := ParseRule(treatment)
		if err != nil {
			t.Errorf("OPERATORS.md:%d: %v", i+1, err)
			continue
		}
		p, err := Compile(Spec{Fields: map[string]Rule{"f": rule}})
		if err != nil {
			t.Errorf("OPERATORS.md:%d: %v", i+1, err)
			continue
		}
		env := testEnv(t)
		env.Now = func() time.Time { return now }
		var out bytes.Buffer
		if _, err := p.Transform(&out, strings.NewReader(`{"items":[{"f":`+m[2]+`}]}`), itemsShape, env, Limits{}); err != nil {
			t.Errorf("OPERATORS.md:%d: %v", i+1, err)
			continue
		}
		want := `{"items":[{}]}`
		if m[3] != "" {
			want = `{"items":[{"f":` + m[3] + `}]}`
		}
		if diff := cmp.Diff(decodeJSON(t, []byte(want)), decodeJSON(t, out.Bytes())); diff != "" {
			t.Errorf("OPERATORS.md:%d: %s of %s released %s, the document says %s", i+1, m[1], m[2], out.Bytes(), want)
		}
	}
	if rows < len(Operators())*2 {
		t.Errorf("found %d example rows in OPERATORS.md, want at least two per operator", rows)
	}
}
