package anonymize

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Every masking operator writes one mask character for each character it
// hides, so a masked value keeps the shape readers recognise
// (110105********1234, 138****5678); mask_name_cn with width "fixed" is the
// exception, as there the length is what it hides. Each validates what it
// is given: a value that is not what the operator masks (a number for an
// ID, an invalid ID, an object) is not masked "as well as possible" but
// falls back to redact, because a mask that assumes the wrong layout can
// reveal the part it meant to hide.

// maskOp hides every character but the first and last ones kept, for
// strings and numbers: {"keep_first": 3, "keep_last": 4}: "13812345678" →
// "138****5678". A value too short to hide anything is masked whole: "12"
// → "**". An empty string falls back to redact.
type maskOp struct {
	first, last int
	char        string
}

func newMask(p Params) (Operator, error) {
	if err := p.check("keep_first", "keep_last", "char"); err != nil {
		return nil, err
	}
	var m maskOp
	var err error
	if m.first, err = p.Int("keep_first", 0); err != nil {
		return nil, err
	}
	if m.last, err = p.Int("keep_last", 0); err != nil {
		return nil, err
	}
	if m.char, err = maskChar(p); err != nil {
		return nil, err
	}
	return m, nil
}

func (m maskOp) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	s, ok := v.Text()
	if !ok || s == "" {
		return dst, false
	}
	return appendString(dst, maskRunes(s, m.first, m.last, m.char)), true
}

// maskRunes keeps the first and last runes of s and writes char for each
// one between. When nothing would be hidden, everything is.
func maskRunes(s string, first, last int, char string) string {
	n := utf8.RuneCountInString(s)
	if first+last >= n {
		first, last = 0, 0
	}
	var b strings.Builder
	b.Grow(len(s) + n*len(char))
	i := 0
	for _, r := range s {
		if i < first || i >= n-last {
			b.WriteRune(r)
		} else {
			b.WriteString(char)
		}
		i++
	}
	return b.String()
}

// maskIDCN masks a resident identity number (GB 11643), given as a string:
// the 18-character form with a valid check character (x or X) and a real
// birth date, or the legacy 15-digit form with a real 19YYMMDD birth date.
// What the digits say (docs/policies.md has the table): 1–6 the region of
// registration, 7–14 the birth date (7–12, YYMMDD, in the 15-digit form),
// 15–17 a sequence within region and day whose last digit is odd for men
// and even for women (13–15 in the 15-digit form), and 18 a check
// character computed from the other 17, so that keeping it narrows the
// digits hidden beside it.
//
// By default it keeps the 6-digit region code and the last 4 characters
// (the last 3 of a 15-digit number, which has no check character, so that
// no digit of the birth date shows):
//
//	"110105199001051234" → "110105********1234"
//	"11010519491231002x" → "110105********002X"
//	"110105491231002"    → "110105******002"
//
// keep names another form: "region" (first 6), "birth_year" (region and
// year of birth: first 10, first 8 of a 15-digit number) or
// "region_and_last4" (the default). keep_first and keep_last instead give
// counts, for both forms; keep and counts together are an error. char sets
// the mask character. A number, an invalid ID or anything else falls back
// to redact.
type maskIDCN struct {
	first, last     int // 18-character IDs
	first15, last15 int // 15-digit IDs
	char            string
}

// idForms are mask_id_cn's named forms: what they keep of an 18-character
// ID and of a 15-digit one.
var idForms = map[string]maskIDCN{
	"region":           {first: 6, first15: 6},
	"birth_year":       {first: 10, first15: 8},
	"region_and_last4": {first: 6, last: 4, first15: 6, last15: 3},
}

func newMaskIDCN(p Params) (Operator, error) {
	if err := p.check("keep", "keep_first", "keep_last", "char"); err != nil {
		return nil, err
	}
	m, err := namedForm(p, idForms, "region_and_last4")
	if err != nil {
		return nil, err
	}
	if _, given := p["keep_first"]; given {
		if m.first, err = p.Int("keep_first", 0); err != nil {
			return nil, err
		}
		m.first15 = m.first
	}
	if _, given := p["keep_last"]; given {
		if m.last, err = p.Int("keep_last", 0); err != nil {
			return nil, err
		}
		m.last15 = m.last
	}
	if m.first+m.last >= 15 {
		return nil, fmt.Errorf("keep_first + keep_last: %d + %d leaves nothing of a 15-digit ID masked", m.first, m.last)
	}
	if m.first15+m.last15 >= 15 {
		return nil, fmt.Errorf("keep_first + keep_last: %d + %d leaves nothing of a 15-digit ID masked", m.first15, m.last15)
	}
	if m.char, err = maskChar(p); err != nil {
		return nil, err
	}
	return m, nil
}

// namedForm returns the form the keep parameter names, or def's when it is
// absent. keep excludes keep_first and keep_last: a policy that gave both
// would leave a reader guessing which one wins.
func namedForm[T any](p Params, forms map[string]T, def string) (T, error) {
	var zero T
	name, err := p.String("keep", "")
	if err != nil {
		return zero, err
	}
	if _, given := p["keep"]; !given {
		return forms[def], nil
	}
	for _, count := range []string{"keep_first", "keep_last"} {
		if _, given := p[count]; given {
			return zero, fmt.Errorf("keep and %s: give a named form or counts, not both", count)
		}
	}
	f, ok := forms[name]
	if !ok {
		names := make([]string, 0, len(forms))
		for n := range forms {
			names = append(names, n)
		}
		sort.Strings(names)
		return zero, fmt.Errorf("keep: want one of %s, got %q", strings.Join(names, ", "), name)
	}
	return f, nil
}

func (m maskIDCN) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	if v.Kind != String {
		return dst, false
	}
	s, _ := v.Text()
	id, ok := parseIDCN(s)
	if !ok {
		return dst, false
	}
	first, last := m.first, m.last
	if len(id) == 15 {
		first, last = m.first15, m.last15
	}
	return appendString(dst, maskRunes(id, first, last, m.char)), true
}

// maskPhoneCN masks a mainland mobile number: 11 digits starting 13–19,
// given as a string or an integer. By default it keeps the first 3 digits
// (the carrier's prefix, 号段) and the last 4 (the end of the subscriber
// number); digits 4–7 name the area where the number was registered. A
// country prefix (+86, 0086 or 86) and single spaces or hyphens between
// digit groups are accepted and not released: the output is always the
// 11-character form.
//
//	"13812345678"      → "138****5678"
//	"+86 138-1234-5678" → "138****5678"
//	13812345678        → "138****5678"
//
// keep names another form, "carrier" (first 3) or "carrier_and_last4"
// (the default); keep_first and keep_last instead give counts, which must
// leave a digit masked. Landline numbers, service numbers and anything else
// fall back to redact; use mask for them. char sets the mask character.
type maskPhoneCN struct {
	first, last int
	char        string
}

// phoneForms are mask_phone_cn's named forms.
var phoneForms = map[string]maskPhoneCN{
	"carrier":           {first: 3},
	"carrier_and_last4": {first: 3, last: 4},
}

func newMaskPhoneCN(p Params) (Operator, error) {
	if err := p.check("keep", "keep_first", "keep_last", "char"); err != nil {
		return nil, err
	}
	m, err := namedForm(p, phoneForms, "carrier_and_last4")
	if err != nil {
		return nil, err
	}
	if m.first, err = p.Int("keep_first", m.first); err != nil {
		return nil, err
	}
	if m.last, err = p.Int("keep_last", m.last); err != nil {
		return nil, err
	}
	if m.first+m.last >= 11 {
		return nil, fmt.Errorf("keep_first + keep_last: %d + %d leaves nothing of an 11-digit mobile number masked", m.first, m.last)
	}
	if m.char, err = maskChar(p); err != nil {
		return nil, err
	}
	return m, nil
}

func (m maskPhoneCN) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	s, ok := v.Text()
	if !ok {
		return dst, false
	}
	s = strings.TrimSpace(s)
	for _, prefix := range []string{"+86", "0086"} {
		if rest, ok := strings.CutPrefix(s, prefix); ok {
			s = strings.TrimLeft(rest, " -")
			break
		}
	}
	digits, ok := groupedDigits(s, 13)
	if !ok {
		return dst, false
	}
	if len(digits) == 13 && digits[:2] == "86" {
		digits = digits[2:]
	}
	if len(digits) != 11 || digits[0] != '1' || digits[1] < '3' {
		return dst, false
	}
	return appendString(dst, maskRunes(digits, m.first, m.last, m.char)), true
}

// groupedDigits returns the ASCII digits of s, which may separate digit
// groups with one space or hyphen, and false when s holds anything else or
// more than max digits.
func groupedDigits(s string, max int) (string, bool) {
	if s == "" {
		return "", false
	}
	out := make([]byte, 0, max)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if len(out) == max {
				return "", false
			}
			out = append(out, c)
		case (c == ' ' || c == '-') && i > 0 && i < len(s)-1 && isDigit(s[i-1]) && isDigit(s[i+1]):
		default:
			return "", false
		}
	}
	return string(out), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// maskNameCN keeps a person's surname and masks the given name. Two-
// character surnames (欧阳, 司马, 诸葛, 上官, ...) are kept whole when a
// given name follows. By default each character of the given name is
// masked, so a consumer learns whether it has one character or two:
//
//	"张伟"   → "张*"
//	"欧阳娜"  → "欧阳*"
//	"欧阳娜娜" → "欧阳**"
//	"司马"   → "司*" (read as surname 司 and given name 马)
//	"王"    → "*"
//
// With {"width": "fixed"} the given name is one mask character whatever
// its length, so the output's length depends on the surname alone:
// "李娜" and "李娜娜" both → "李*", "欧阳娜娜" → "欧阳*". A one-character
// value has no given name to stand for and falls back to redact in that
// form. Surrounding spaces are trimmed. An empty name, a number or
// anything else falls back to redact. char sets the mask character.
type maskNameCN struct {
	fixed bool
	char  string
}

func newMaskNameCN(p Params) (Operator, error) {
	if err := p.check("width", "char"); err != nil {
		return nil, err
	}
	var m maskNameCN
	width, err := p.String("width", "per_character")
	if err != nil {
		return nil, err
	}
	switch width {
	case "per_character":
	case "fixed":
		m.fixed = true
	default:
		return nil, fmt.Errorf("width: want per_character or fixed, got %q", width)
	}
	if m.char, err = maskChar(p); err != nil {
		return nil, err
	}
	return m, nil
}

func (m maskNameCN) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	if v.Kind != String {
		return dst, false
	}
	s, _ := v.Text()
	runes := []rune(strings.TrimSpace(s))
	if len(runes) == 0 || (m.fixed && len(runes) == 1) {
		return dst, false
	}
	keep := 1
	if len(runes) >= 3 && compoundSurnames[string(runes[:2])] {
		keep = 2
	}
	if len(runes) == 1 {
		keep = 0
	}
	hidden := len(runes) - keep
	if m.fixed {
		hidden = 1
	}
	out := string(runes[:keep]) + strings.Repeat(m.char, hidden)
	return appendString(dst, out), true
}

// compoundSurnames are the two-character surnames that mask_name_cn keeps
// whole: those of the Hundred Family Surnames (百家姓) still in use, and a
// few others common today. A name that starts with one is read as that
// surname; for the rare name that is a one-character surname whose given
// name starts with the second character (欧 + 阳明), one given character
// stays visible. Compounds whose first character is a common surname on
// its own and whose second is common in given names (梁丘, 段干, 单于) are
// left out for that reason.
var compoundSurnames = map[string]bool{}

func init() {
	for _, s := range strings.Fields(`欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 长孙 宇文 司徒 夏侯 轩辕
		端木 独孤 南宫 西门 百里 呼延 澹台 太史 申屠 公冶 赫连 钟离 闻人 万俟 濮阳 司空 东郭 拓跋 完颜
		淳于 仲孙 叔孙 太叔 公羊 宗政 乐正 漆雕 壤驷 公西 颛孙 亓官 司寇 子车 南门 东门 羊舌 微生 公良
		归海 第五 鲜于 闾丘 夹谷 宰父`) {
		compoundSurnames[s] = true
	}
}

// maskEmail keeps the first character of the mailbox and the whole domain,
// masking the rest of the mailbox:
//
//	"zhangsan@example.com" → "z*******@example.com"
//	"a@qq.com"             → "*@qq.com"
//
// The value must have one @, a mailbox and a domain of at least two
// dot-separated labels, and no spaces or control characters; anything else
// falls back to redact. char sets the mask character.
type maskEmail struct{ char string }

func newMaskEmail(p Params) (Operator, error) {
	if err := p.check("char"); err != nil {
		return nil, err
	}
	c, err := maskChar(p)
	if err != nil {
		return nil, err
	}
	return maskEmail{char: c}, nil
}

func (m maskEmail) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	if v.Kind != String {
		return dst, false
	}
	s, _ := v.Text()
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || !validDomain(domain) || !utf8.ValidString(local) {
		return dst, false
	}
	for _, r := range local {
		if r == '@' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return dst, false
		}
	}
	return appendString(dst, maskRunes(local, 1, 0, m.char)+"@"+domain), true
}

// validDomain accepts two or more non-empty labels of letters, digits and
// hyphens (any script, for internationalised domains).
func validDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(labels) < 2 || !utf8.ValidString(d) {
		return false
	}
	for _, l := range labels {
		if l == "" {
			return false
		}
		for _, r := range l {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return false
			}
		}
	}
	return true
}

// maskBankCard masks a payment card or bank account number of 12 to 19
// digits, given as a string (single spaces or hyphens between digit groups
// are accepted) or an integer. It keeps the first 6 digits (the issuer) and
// the last 4 when at least 6 digits remain hidden, that is for numbers of
// 16 digits or more; a shorter number keeps only its last 4. Separators are
// not released.
//
//	"6222 0212 3456 7890"   → "622202******7890"
//	"6228480402564890018"   → "622848*********0018"
//	"123456789012"          → "********9012"
//
// The Luhn check is not required: many UnionPay debit cards and account
// numbers do not pass it, and masking does not depend on it. Anything else
// falls back to redact. char sets the mask character.
type maskBankCard struct{ char string }

func newMaskBankCard(p Params) (Operator, error) {
	if err := p.check("char"); err != nil {
		return nil, err
	}
	c, err := maskChar(p)
	if err != nil {
		return nil, err
	}
	return maskBankCard{char: c}, nil
}

func (m maskBankCard) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	s, ok := v.Text()
	if !ok {
		return dst, false
	}
	digits, ok := groupedDigits(strings.TrimSpace(s), 19)
	if !ok || len(digits) < 12 {
		return dst, false
	}
	first := 6
	if len(digits) < 16 {
		first = 0
	}
	return appendString(dst, maskRunes(digits, first, 4, m.char)), true
}
