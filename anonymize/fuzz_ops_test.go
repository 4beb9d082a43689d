package anonymize

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// The oracles below restate each Chinese-format mask from its
// documentation, independently of the operator: what it must release for a
// value, or "" when the value must be redacted.

var (
	id18RE  = regexp.MustCompile(`^[1-9]\d{16}[\dXx]$`)
	id15RE  = regexp.MustCompile(`^[1-9]\d{14}$`)
	phoneRE = regexp.MustCompile(`^(?:(?:\+86|0086)[ -]*)?(\d(?:[ -]?\d)*)$`)
	cardRE  = regexp.MustCompile(`^\d(?:[ -]?\d)*$`)
)

func realDate(yyyymmdd string) bool {
	t, err := time.Parse("20060102", yyyymmdd)
	return err == nil && t.Year() >= 1850
}

func oracleIDCN(in any) string { return oracleIDCNKeeping(6, 4, 6, 3)(in) }

// oracleIDCNKeeping is mask_id_cn keeping first and last characters of an
// 18-character ID, first15 and last15 of a 15-digit one.
func oracleIDCNKeeping(first, last, first15, last15 int) func(any) string {
	return func(in any) string {
		id := validIDCNOracle(in)
		switch len(id) {
		case 18:
			return id[:first] + strings.Repeat("*", 18-first-last) + id[18-last:]
		case 15:
			return id[:first15] + strings.Repeat("*", 15-first15-last15) + id[15-last15:]
		}
		return ""
	}
}

// validIDCNOracle returns in as a valid ID with an upper-case check
// character, or "".
func validIDCNOracle(in any) string {
	s, ok := in.(string)
	switch {
	case !ok:
		return ""
	case id18RE.MatchString(s):
		weights := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
		sum := 0
		for i, w := range weights {
			sum += int(s[i]-'0') * w
		}
		check := strings.ToUpper(s[17:])
		if "10X98765432"[sum%11:sum%11+1] != check || !realDate(s[6:14]) {
			return ""
		}
		return s[:17] + check
	case id15RE.MatchString(s):
		if !realDate("19" + s[6:12]) {
			return ""
		}
		return s
	}
	return ""
}

func oraclePhoneCN(in any) string { return oraclePhoneCNKeeping(3, 4)(in) }

// oraclePhoneCNKeeping is mask_phone_cn keeping first and last digits.
func oraclePhoneCNKeeping(first, last int) func(any) string {
	return func(in any) string {
		d := validPhoneOracle(in)
		if d == "" {
			return ""
		}
		return d[:first] + strings.Repeat("*", 11-first-last) + d[11-last:]
	}
}

// validPhoneOracle returns the 11 digits of a valid mobile number, or "".
func validPhoneOracle(in any) string {
	s, ok := text(in)
	if !ok {
		return ""
	}
	if n, isNum := in.(json.Number); isNum && strings.ContainsAny(string(n), ".eE-") {
		return ""
	}
	m := phoneRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return ""
	}
	d := strings.NewReplacer(" ", "", "-", "").Replace(m[1])
	if len(d) == 13 && strings.HasPrefix(d, "86") {
		d = d[2:]
	}
	if len(d) != 11 || d[0] != '1' || d[1] < '3' {
		return ""
	}
	return d
}

func oracleNameCN(in any) string {
	s, ok := in.(string)
	if !ok {
		return ""
	}
	r := []rune(strings.TrimSpace(s))
	switch {
	case len(r) == 0:
		return ""
	case len(r) == 1:
		return "*"
	case len(r) >= 3 && compoundSurnames[string(r[:2])]:
		return string(r[:2]) + strings.Repeat("*", len(r)-2)
	}
	return string(r[:1]) + strings.Repeat("*", len(r)-1)
}

// oracleNameCNFixed is mask_name_cn with width fixed: the surname and one
// mask character, a one-character value redacted.
func oracleNameCNFixed(in any) string {
	s, ok := in.(string)
	if !ok {
		return ""
	}
	r := []rune(strings.TrimSpace(s))
	switch {
	case len(r) < 2:
		return ""
	case len(r) >= 3 && compoundSurnames[string(r[:2])]:
		return string(r[:2]) + "*"
	}
	return string(r[:1]) + "*"
}

func oracleEmail(in any) string {
	s, ok := in.(string)
	if !ok || strings.Count(s, "@") != 1 {
		return ""
	}
	local, domain, _ := strings.Cut(s, "@")
	if local == "" || strings.IndexFunc(local, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return ""
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return ""
	}
	for _, l := range labels {
		if l == "" || strings.IndexFunc(l, func(r rune) bool { return r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) }) >= 0 {
			return ""
		}
	}
	r := []rune(local)
	if len(r) == 1 {
		return "*@" + domain
	}
	return string(r[0]) + strings.Repeat("*", len(r)-1) + "@" + domain
}

func oracleBankCard(in any) string {
	s, ok := text(in)
	if !ok {
		return ""
	}
	s = strings.TrimSpace(s)
	if !cardRE.MatchString(s) {
		return ""
	}
	d := strings.NewReplacer(" ", "", "-", "").Replace(s)
	switch {
	case len(d) < 12 || len(d) > 19:
		return ""
	case len(d) >= 16:
		return d[:6] + strings.Repeat("*", len(d)-10) + d[len(d)-4:]
	}
	return strings.Repeat("*", len(d)-4) + d[len(d)-4:]
}

// checkAddress checks what mask_address released for in: a prefix of the
// address made of Chinese characters (and spaces), ending in a division
// suffix and holding no street-level character, followed by one mask
// character per character of the rest.
func checkAddress(t *testing.T, in any, got any) {
	t.Helper()
	if got == redacted {
		return
	}
	s, ok := in.(string)
	out, _ := got.(string)
	if !ok {
		t.Fatalf("mask_address(%#v) = %#v, want it redacted", in, got)
	}
	s = strings.TrimSpace(s)
	kept := strings.TrimRight(out, "*")
	rest := []rune(strings.TrimPrefix(s, kept))
	if !strings.HasPrefix(s, kept) || kept == "" || out != kept+strings.Repeat("*", len(rest)) {
		// The rest may itself end in '*': compare character by character.
		r := []rune(s)
		o := []rune(out)
		if len(o) != len(r) {
			t.Fatalf("mask_address(%q) = %q: not the address with its end masked", s, out)
		}
		for i := range o {
			if o[i] != r[i] && o[i] != '*' {
				t.Fatalf("mask_address(%q) = %q: not the address with its end masked", s, out)
			}
		}
		return
	}
	last, _ := utf8.DecodeLastRuneInString(kept)
	province := false
	for _, p := range provinces {
		province = province || strings.HasSuffix(kept, p.name)
	}
	if !province && !strings.ContainsRune("省市区县旗盟州", last) {
		t.Fatalf("mask_address(%q) kept %q, which does not end at a division", s, kept)
	}
	for _, r := range kept {
		if r != ' ' && r != '\u3000' && !unicode.Is(unicode.Han, r) {
			t.Fatalf("mask_address(%q) kept %q, which holds %q", s, kept, r)
		}
	}
	if strings.ContainsAny(kept, "号园苑村院巷弄栋幢室") {
		t.Fatalf("mask_address(%q) kept %q, below district level", s, kept)
	}
}

// fuzzOps are the operators FuzzMasksReleaseOnlyTheirDocumentedForm checks,
// each with its oracle.
var fuzzOps = []struct {
	rule   Rule
	oracle func(any) string
}{
	{Rule{Op: "mask_id_cn"}, oracleIDCN},
	{Rule{Op: "mask_id_cn", Params: Params{"keep": "region"}}, oracleIDCNKeeping(6, 0, 6, 0)},
	{Rule{Op: "mask_id_cn", Params: Params{"keep": "birth_year"}}, oracleIDCNKeeping(10, 0, 8, 0)},
	{Rule{Op: "mask_id_cn", Params: Params{"keep_first": 0, "keep_last": 4}}, oracleIDCNKeeping(0, 4, 0, 4)},
	{Rule{Op: "mask_phone_cn"}, oraclePhoneCN},
	{Rule{Op: "mask_phone_cn", Params: Params{"keep": "carrier"}}, oraclePhoneCNKeeping(3, 0)},
	{Rule{Op: "mask_phone_cn", Params: Params{"keep_first": 0, "keep_last": 4}}, oraclePhoneCNKeeping(0, 4)},
	{Rule{Op: "mask_name_cn"}, oracleNameCN},
	{Rule{Op: "mask_name_cn", Params: Params{"width": "fixed"}}, oracleNameCNFixed},
	{Rule{Op: "mask_email"}, oracleEmail},
	{Rule{Op: "mask_bank_card"}, oracleBankCard},
	{Rule{Op: "mask_address"}, nil},
}

// FuzzMasksReleaseOnlyTheirDocumentedForm gives each Chinese-format mask an
// arbitrary value, as a JSON string (encoded, and raw when the bytes form a
// valid literal) and as a number when it is one. The release must be valid
// JSON and exactly the documented form, or "[REDACTED]" when the oracle
// says the value is not one the operator masks: so no raw value, and no
// hidden part of one, comes out.
func FuzzMasksReleaseOnlyTheirDocumentedForm(f *testing.F) {
	for _, s := range []string{
		validID, validIDX, "11010519491231002x", "110105491231002", "110105199002301238", "010105199001051234",
		"13812345678", "+86 138-1234-5678", "0086-13812345678", "8613812345678", "12812345678", "010-12345678",
		"欧阳娜娜", "欧阳娜", "司马", "王", " 张三 ", "　李四　", "阿依古丽·买买提",
		"zhangsan@example.com", "a@qq.com", "张三@例子.中国", "a@b@c.com", "root@localhost",
		"6222 0212 3456 7890", "6228480402564890018", "123456789012", "6222--0212",
		"北京市朝阳区建国路88号", "新疆维吾尔自治区阿克苏地区库车市天山路", "北京市望京西园四区3号楼", "吉林市船营区北京路",
		"内蒙古自治区呼伦贝尔市鄂温克族自治旗巴彦托海镇", "河南省新乡市红旗区人民路", "深圳市福田华强北小区",
		"西藏中路100号", "江西路88号", "北京朝阳区", "广东省建设路东区", "香港特别行政区油尖旺区弥敦道",
		"", " ", "\xff\xfe", "\u2028", "1e400", "-0", "13812345678.0", strings.Repeat("区", 40),
	} {
		f.Add(s)
	}
	keys := testKeys(f)
	plans := make([]*Plan, len(fuzzOps))
	for i, op := range fuzzOps {
		p, err := Compile(Spec{Fields: map[string]Rule{"f": op.rule}})
		if err != nil {
			f.Fatal(err)
		}
		plans[i] = p
	}
	f.Fuzz(func(t *testing.T, s string) {
		literals := []string{string(appendString(nil, s))}
		if raw := `"` + s + `"`; len(raw) > 1 {
			if end, _, err := scanString([]byte(raw), 0); err == nil && end == len(raw) {
				literals = append(literals, raw)
			}
		}
		if end, err := scanNumber([]byte(s+" "), 0); s != "" && err == nil && end == len(s) {
			literals = append(literals, s)
		}
		for _, lit := range literals {
			var in any
			dec := json.NewDecoder(strings.NewReader(lit))
			dec.UseNumber()
			if err := dec.Decode(&in); err != nil {
				t.Fatalf("test literal %q: %v", lit, err)
			}
			for i, op := range fuzzOps {
				var out bytes.Buffer
				env := &Env{Keys: keys, Consumer: "alice", Dataset: "civil/assistance"}
				st, err := plans[i].Transform(&out, strings.NewReader(`{"items":[{"f":`+lit+`}]}`), itemsShape, env, Limits{})
				if err != nil {
					t.Fatalf("%v(%s): %v", op.rule, lit, err)
				}
				if !json.Valid(out.Bytes()) || !utf8.Valid(out.Bytes()) {
					t.Fatalf("%v(%s) = %q: not valid UTF-8 JSON", op.rule, lit, out.Bytes())
				}
				var rel struct{ Items []map[string]any }
				if err := json.Unmarshal(out.Bytes(), &rel); err != nil || len(rel.Items) != 1 {
					t.Fatalf("%v(%s) = %s", op.rule, lit, out.Bytes())
				}
				got := rel.Items[0]["f"]
				if (got == redacted) != (st.Fallbacks == 1) {
					t.Fatalf("%v(%s) = %#v with %d fallbacks", op.rule, lit, got, st.Fallbacks)
				}
				if op.oracle == nil {
					checkAddress(t, in, got)
					continue
				}
				want := any(op.oracle(in))
				if want == "" {
					want = redacted
				}
				if got != want {
					t.Fatalf("%v(%s) = %#v, want %#v", op.rule, lit, got, want)
				}
			}
		}
	})
}

// nestedSpec is a caseworker-style release of nested records: masks and
// pseudonyms at several depths, a drop, a row condition and small-cell
// suppression; everything else is dropped by default.
var nestedSpec = Spec{
	Fields: map[string]Rule{
		"district":                       {Op: "keep"},
		"id_number":                      {Op: "mask_id_cn"},
		"name":                           {Op: "mask_name_cn"},
		"secret":                         {Op: "drop"},
		"contacts[].phone":               {Op: "mask_phone_cn"},
		"contacts[].relation":            {Op: "keep"},
		"address.city":                   {Op: "keep"},
		"household.members[].patient_id": {Op: "pseudonymize"},
		"household.members[].tags[]":     {Op: "keep"},
	},
	Rows:     []Cond{{Field: "district", In: []any{"朝阳区", "海淀区"}}},
	Suppress: &Suppress{CountField: "n", Below: 2},
}

// fnode is nestedSpec's field tree, restated for the oracle.
type fnode struct {
	op       string
	children map[string]*fnode
	elem     *fnode
}

var nestedTree = &fnode{children: map[string]*fnode{
	"district":  {op: "keep"},
	"id_number": {op: "mask_id_cn"},
	"name":      {op: "mask_name_cn"},
	"contacts": {elem: &fnode{children: map[string]*fnode{
		"phone":    {op: "mask_phone_cn"},
		"relation": {op: "keep"},
	}}},
	"address": {children: map[string]*fnode{"city": {op: "keep"}}},
	"household": {children: map[string]*fnode{
		"members": {elem: &fnode{children: map[string]*fnode{
			"patient_id": {op: "pseudonymize"},
			"tags":       {elem: &fnode{op: "keep"}},
		}}},
	}},
}}

// nestedExpect is what nestedSpec releases of in under n, pseudonyms as
// pseudonymOf; keep adds every value released unchanged to *legit.
func nestedExpect(t *testing.T, in any, n *fnode, legit *[]string) any {
	switch n.op {
	case "keep":
		if !isScalar(in) {
			return redacted
		}
		if s, ok := text(in); ok {
			*legit = append(*legit, s)
		}
		return in
	case "mask_id_cn", "mask_name_cn", "mask_phone_cn":
		want := map[string]func(any) string{"mask_id_cn": oracleIDCN, "mask_name_cn": oracleNameCN, "mask_phone_cn": oraclePhoneCN}[n.op](in)
		if want == "" {
			return redacted
		}
		*legit = append(*legit, want)
		return want
	case "pseudonymize":
		if s, ok := text(in); ok {
			return pseudonymOf(s)
		}
		return redacted
	}
	if n.children != nil {
		obj, ok := in.([]member)
		if !ok {
			return redacted
		}
		out := []member{}
		seen := map[string]bool{}
		for _, m := range obj {
			c := n.children[m.key]
			if c == nil {
				continue
			}
			if seen[m.key] {
				t.Fatalf("released an object that repeats %q", m.key)
			}
			seen[m.key] = true
			out = append(out, member{m.key, nestedExpect(t, m.val, c, legit)})
		}
		return out
	}
	arr, ok := in.([]any)
	if !ok {
		return redacted
	}
	out := []any{}
	for _, e := range arr {
		out = append(out, nestedExpect(t, e, n.elem, legit))
	}
	return out
}

// nestedMatch compares a released value with the expected one, checking
// pseudonyms for form and consistency.
func nestedMatch(t *testing.T, want, got any, pseudonyms map[string]string) {
	switch w := want.(type) {
	case pseudonymOf:
		p, _ := got.(string)
		if !pseudonymRE.MatchString(p) {
			t.Fatalf("released %#v for a pseudonym of %q", got, string(w))
		}
		if prev, ok := pseudonyms[string(w)]; ok && prev != p {
			t.Fatalf("%q pseudonymised as %s and %s", string(w), prev, p)
		}
		pseudonyms[string(w)] = p
	case []member:
		g, ok := got.([]member)
		if !ok || len(g) != len(w) {
			t.Fatalf("released %#v, want %#v", got, want)
		}
		for i := range w {
			if w[i].key != g[i].key {
				t.Fatalf("released member %q, want %q", g[i].key, w[i].key)
			}
			nestedMatch(t, w[i].val, g[i].val, pseudonyms)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Fatalf("released %#v, want %#v", got, want)
		}
		for i := range w {
			nestedMatch(t, w[i], g[i], pseudonyms)
		}
	default:
		if !sameScalar(want, got) {
			t.Fatalf("released %#v, want %#v", got, want)
		}
	}
}

// nestedReleased reports whether a record passes nestedSpec's row
// condition and suppression.
func nestedReleased(rec []member) bool {
	inDistrict, large := false, false
	for _, m := range rec {
		switch m.key {
		case "district":
			inDistrict = m.val == "朝阳区" || m.val == "海淀区"
		case "n":
			if n, ok := m.val.(json.Number); ok {
				f, err := strconv.ParseFloat(string(n), 64)
				large = err == nil && f >= 2
			}
		}
	}
	return inDistrict && large
}

func nestedSeeds() []string {
	rec := `{"case_id":"A1","district":"朝阳区","n":5,"id_number":"110105199001051234","name":"欧阳娜娜","secret":"secret-value-1",` +
		`"contacts":[{"phone":"+86 138-1234-5678","relation":"本人","note":"secret-note-2"},{"phone":"010-12345678","relation":"单位"}],` +
		`"address":{"city":"北京","street":"建国路88号院3号楼","geo":{"lat":39.9}},` +
		`"household":{"size":3,"members":[{"patient_id":"110105194912310021","tags":["老人",1,{"x":"secret-tag-3"}],"name":"李四四"},` +
		`{"patient_id":42,"tags":"secret-tag-4"}]}}`
	return []string{
		`{"items":[` + rec + `],"page":1,"total":1}`,
		`{"items":[` + rec + `,` + strings.Replace(rec, `"n":5`, `"n":1`, 1) + `,` + strings.Replace(rec, `"朝阳区"`, `"东城区"`, 1) + `]}`,
		`{"items":[{"district":"海淀区","n":2,"name":"王","id_number":"110105491231002","contacts":{"phone":"13812345678"},"address":"北京市朝阳区建国路"}]}`,
		`{"items":[{"distr\u0069ct":"\u6d77\u6dc0\u533a","n":2.5e0,"n\u0061me":"\u6b27\u9633\u5a1c","c\u006fntacts":[{"ph\u006fne":"13987654321"}]}]}`,
		`{"items":[{"district":"海淀区","n":3,"contacts":[{"phone":"13987654321","phone":"13812345678"}]}]}`,
		`{"items":[{"district":"海淀区","n":3,"household":{"members":[[{"patient_id":"deep-secret-5"}]],"members2":[]}}]}`,
		`{"items":[{"district":"海淀区","n":1e400,"name":"张三"},{"district":"海淀区","n":"9","name":"李四"},{"district":"海淀区","name":"王五"}]}`,
		`{"items":[{"district":"海淀区","n":9007199254740993,"secret":{"a":[` + strings.Repeat(`{"b":[`, 20) + `"deep-secret-6"` + strings.Repeat(`]}`, 20) + `]}}]}`,
		"{\"items\":[{\"district\":\"海淀区\",\"n\":2,\"name\":\"\xff\xfe张\",\"id_number\":\"11010519491231002\xff\"}]}",
		`{"items":[{"district":"海淀区","n":2,"id_number":110105199001051234,"name":["欧阳娜娜"],"contacts":[null,true,"x"]}]}`,
		// long strings, kept short enough for the fuzzer to mutate
		`{"items":[{"district":"海淀区","n":2,"name":"` + strings.Repeat("欧阳娜", 100) + `","secret":"` + strings.Repeat("secret", 100) +
			`","contacts":[{"phone":"` + strings.Repeat("138 1234 ", 50) + `5678","relation":"` + strings.Repeat("本人", 100) + `"}]}]}`,
	}
}

// FuzzNestedReleaseNeverLeaks attacks nestedSpec with arbitrary bodies. A
// transform may fail; when it succeeds, its output must be valid JSON
// holding exactly the records that meet the row condition and survive
// suppression, each exactly as the oracles release it, and no value of an
// unnamed, dropped or masked field anywhere.
func FuzzNestedReleaseNeverLeaks(f *testing.F) {
	for _, s := range nestedSeeds() {
		f.Add([]byte(s))
	}
	p, err := Compile(nestedSpec)
	if err != nil {
		f.Fatal(err)
	}
	keys := testKeys(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var out bytes.Buffer
		env := &Env{Keys: keys, Consumer: "carol", Dataset: "civil/assistance"}
		st, err := p.Transform(&out, bytes.NewReader(body), fuzzShape, env, Limits{MaxRecordBytes: 256 << 10})
		if err != nil {
			return
		}
		checkNestedRelease(t, body, out.Bytes(), st)
	})
}

func checkNestedRelease(t *testing.T, body, out []byte, st Stats) {
	t.Helper()
	if !json.Valid(out) || !utf8.Valid(out) {
		t.Fatalf("output is not valid UTF-8 JSON: %q", out)
	}
	in, err := parseOrdered(body)
	if err != nil {
		t.Fatalf("released %q from a body that is not JSON: %v", out, err)
	}
	got, err := parseOrdered(out)
	if err != nil {
		t.Fatal(err)
	}
	var records []any
	var page any
	var secrets []string
	// legit holds what the output may carry: the names the spec releases,
	// then the values released unchanged or masked.
	legit := []string{redacted, "items", "page", "district", "id_number", "name", "contacts", "phone", "relation",
		"address", "city", "household", "members", "patient_id", "tags"}
	addSecret := func(s string) {
		if len(s) >= minSecret {
			secrets = append(secrets, s)
		}
	}
	for _, m := range in.([]member) {
		switch {
		case m.key == "items":
			records, _ = m.val.([]any)
		case m.key == "page" && isScalar(m.val):
			page = m.val
			if s, ok := text(m.val); ok {
				legit = append(legit, s)
			}
		default: // total too: suppression withholds it
			addSecret(m.key)
			walk(m.val, addSecret)
		}
	}
	var gotRecords []any
	for _, m := range got.([]member) {
		switch m.key {
		case "items":
			gotRecords, _ = m.val.([]any)
		case "page":
			if !sameScalar(page, m.val) {
				t.Fatalf("page released as %#v, input had %#v", m.val, page)
			}
		default:
			t.Fatalf("output has member %q", m.key)
		}
	}
	var want []any
	for _, r := range records {
		rec, ok := r.([]member)
		if !ok {
			t.Fatalf("released a body with a record that is not an object")
		}
		// Everything the spec does not release is secret, as is every
		// masked or pseudonymised input.
		var collect func(v any, n *fnode)
		collect = func(v any, n *fnode) {
			switch {
			case n == nil || (n.op != "" && n.op != "keep"):
				walk(v, addSecret)
			case n.op == "keep":
				if !isScalar(v) {
					walk(v, addSecret)
				}
			case n.children != nil:
				if obj, ok := v.([]member); ok {
					for _, m := range obj {
						if n.children[m.key] == nil {
							addSecret(m.key)
						}
						collect(m.val, n.children[m.key])
					}
				} else {
					walk(v, addSecret)
				}
			default:
				if arr, ok := v.([]any); ok {
					for _, e := range arr {
						collect(e, n.elem)
					}
				} else {
					walk(v, addSecret)
				}
			}
		}
		if !nestedReleased(rec) {
			walk(rec, addSecret)
			continue
		}
		collect(rec, nestedTree)
		want = append(want, nestedExpect(t, rec, nestedTree, &legit))
	}
	if len(want) != len(gotRecords) || st.Released != len(gotRecords) || st.Records != len(records) {
		t.Fatalf("released %d records, want %d of %d (stats %+v)", len(gotRecords), len(want), len(records), st)
	}
	pseudonyms := map[string]string{}
	for i := range want {
		nestedMatch(t, want[i], gotRecords[i], pseudonyms)
	}
	for _, p := range pseudonyms {
		legit = append(legit, p)
	}
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

func TestNestedFuzzSeedsReleaseRecords(t *testing.T) {
	p := mustCompile(t, nestedSpec)
	released, failed := 0, 0
	for _, s := range nestedSeeds() {
		out, st, err := run(t, p, fuzzShape, s)
		if err != nil {
			failed++
			continue
		}
		checkNestedRelease(t, []byte(s), out, st)
		released += st.Released
	}
	if released < 5 || failed < 1 {
		t.Errorf("seeds released %d records and %d bodies failed; want both exercised", released, failed)
	}
}
