package anonymize

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The operators. Each comment gives an input → output example.
func init() {
	// keep releases a scalar unchanged: "朝阳区" → "朝阳区". Objects and
	// arrays are not scalars: name their parts instead (address.city).
	register("keep", noParams(keepOp{}))
	// drop removes the field, as if the decision had not named it.
	register("drop", noParams(dropOp{}))
	// redact replaces any value with a fixed token: "张三" → "[REDACTED]".
	register("redact", noParams(redactOp{}))
	// mask hides characters: {"keep_first": 3, "keep_last": 4}:
	// "13812345678" → "138****5678".
	register("mask", newMask)
	// mask_name_cn keeps a Chinese surname, compound ones whole:
	// "欧阳娜娜" → "欧阳**", "张伟" → "张*".
	register("mask_name_cn", noParams(maskNameCN{}))
	// pseudonymize replaces a value with a keyed HMAC-SHA256 pseudonym of 32
	// hex characters; the same value gives the same pseudonym within a scope:
	// {"scope": "dataset"} (default), "consumer" or "global".
	// "110105199001011234" → "9f86d081884c7d659a2feaa0c55ad015".
	register("pseudonymize", newPseudonymize)
	// generalize coarsens a date: {"to": "month"}: "2026-03-14" → "2026-03";
	// {"to": "year"}: "2026-03-14" → "2026".
	register("generalize", newGeneralize)
}

// redactedToken is what redact, and every fallback, releases.
const redactedToken = `"[REDACTED]"`

func noParams(op Operator) Factory {
	return func(p Params) (Operator, error) {
		if err := p.check(); err != nil {
			return nil, err
		}
		return op, nil
	}
}

type keepOp struct{}

func (keepOp) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	switch v.Kind {
	case Object, Array:
		return dst, false
	case String:
		return appendCleanString(dst, v), true
	}
	return append(dst, v.Raw...), true
}

type dropOp struct{}

func (dropOp) Apply(dst []byte, _ Value, _ *Env) ([]byte, bool) { return dst, true }

type redactOp struct{}

func (redactOp) Apply(dst []byte, _ Value, _ *Env) ([]byte, bool) {
	return append(dst, redactedToken...), true
}

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
	if m.char, err = p.String("char", "*"); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(m.char) != 1 {
		return nil, fmt.Errorf("char: want one character, got %q", m.char)
	}
	return m, nil
}

// Apply masks every character but the first and last ones kept. A value
// too short to hide anything is masked whole, so short values never pass
// through unchanged.
func (m maskOp) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	s, ok := v.Text()
	if !ok || s == "" {
		return dst, false
	}
	return appendString(dst, maskRunes(s, m.first, m.last, m.char)), true
}

func maskRunes(s string, first, last int, char string) string {
	runes := []rune(s)
	n := len(runes)
	if first+last >= n {
		first, last = 0, 0
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range runes {
		if i < first || i >= n-last {
			b.WriteRune(r)
		} else {
			b.WriteString(char)
		}
	}
	return b.String()
}

// compoundSurnames are the two-character surnames that mask_name_cn keeps
// whole.
var compoundSurnames = map[string]bool{}

func init() {
	for _, s := range strings.Fields(`欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 长孙 宇文 司徒 夏侯 轩辕
		端木 独孤 南宫 西门 百里 呼延 澹台 太史 申屠 公冶 赫连 钟离 闻人 万俟 濮阳 司空 东郭 拓跋 完颜`) {
		compoundSurnames[s] = true
	}
}

type maskNameCN struct{}

// Apply keeps the surname and masks each character of the given name. A
// two-character name is one surname and one given character, so 司马 reads
// as 司 + 马, not as a compound surname alone.
func (maskNameCN) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	if v.Kind != String {
		return dst, false
	}
	s, _ := v.Text()
	runes := []rune(strings.TrimSpace(s))
	if len(runes) == 0 {
		return dst, false
	}
	keep := 1
	if len(runes) >= 3 && compoundSurnames[string(runes[:2])] {
		keep = 2
	}
	if len(runes) == 1 {
		keep = 0
	}
	out := string(runes[:keep]) + strings.Repeat("*", len(runes)-keep)
	return appendString(dst, out), true
}

const (
	scopeGlobal   = "global"
	scopeDataset  = "dataset"
	scopeConsumer = "consumer"
)

type pseudonymizeOp struct{ scope string }

func newPseudonymize(p Params) (Operator, error) {
	if err := p.check("scope"); err != nil {
		return nil, err
	}
	scope, err := p.String("scope", scopeDataset)
	if err != nil {
		return nil, err
	}
	switch scope {
	case scopeGlobal, scopeDataset, scopeConsumer:
	default:
		return nil, fmt.Errorf("scope: want global, dataset or consumer, got %q", scope)
	}
	return pseudonymizeOp{scope: scope}, nil
}

// Apply pseudonymises strings and numbers; the number 42 and the string
// "42" share a pseudonym, so a department sending IDs either way still
// joins.
func (o pseudonymizeOp) Apply(dst []byte, v Value, env *Env) ([]byte, bool) {
	s, ok := v.Text()
	// Without keys there is no pseudonym to give: redact rather than fail
	// (or panic) half-way through a release.
	if !ok || env == nil || env.Keys == nil {
		return dst, false
	}
	m := env.mac(o.scope)
	m.Write([]byte(s))
	var sum [32]byte
	m.Sum(sum[:0])
	dst = append(dst, '"')
	dst = hex.AppendEncode(dst, sum[:16])
	return append(dst, '"'), true
}

type generalizeOp struct{ to string }

func newGeneralize(p Params) (Operator, error) {
	if err := p.check("to"); err != nil {
		return nil, err
	}
	to, err := p.String("to", "")
	if err != nil {
		return nil, err
	}
	switch to {
	case "month", "year":
	default:
		return nil, fmt.Errorf("to: want month or year, got %q", to)
	}
	return generalizeOp{to: to}, nil
}

// Apply coarsens a date (YYYY-MM-DD) or an RFC 3339 time.
func (o generalizeOp) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	if v.Kind != String {
		return dst, false
	}
	s, _ := v.Text()
	t, ok := parseDate(s)
	if !ok {
		return dst, false
	}
	layout := "2006-01"
	if o.to == "year" {
		layout = "2006"
	}
	return appendString(dst, t.Format(layout)), true
}

// parseDate accepts a calendar date or an RFC 3339 timestamp.
func parseDate(s string) (time.Time, bool) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}
