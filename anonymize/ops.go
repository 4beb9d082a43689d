package anonymize

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// The operators, each with an input → output example. OPERATORS.md lists
// them with their parameters; keep the two in step.
func init() {
	// keep releases a scalar unchanged: "朝阳区" → "朝阳区". Objects and
	// arrays are not scalars: name their parts instead (address.city).
	register("keep", noParams(keepOp{}))
	// drop removes the field, as if the decision had not named it.
	register("drop", noParams(dropOp{}))
	// null releases the field with the value null: "张三" → null.
	register("null", noParams(nullOp{}))
	// redact replaces any value with a fixed token: "张三" → "[REDACTED]".
	register("redact", noParams(redactOp{}))
	// replace releases a constant: {"value": "某患者"}: "张三" → "某患者".
	register("replace", newReplace)
	// mask hides characters: {"keep_first": 3, "keep_last": 4}:
	// "13812345678" → "138****5678".
	register("mask", newMask)
	// mask_id_cn masks a resident identity number to its region and last 4:
	// "110105199001051234" → "110105********1234"; {"keep": "region"}:
	// "110105************".
	register("mask_id_cn", newMaskIDCN)
	// mask_phone_cn masks a mobile number to its first 3 and last 4:
	// "+86 138-1234-5678" → "138****5678"; {"keep_last": 0}:
	// "138********".
	register("mask_phone_cn", newMaskPhoneCN)
	// mask_name_cn keeps a Chinese surname, compound ones whole:
	// "欧阳娜" → "欧阳*", "张伟" → "张*"; {"width": "fixed"} hides the
	// given name's length: "欧阳娜娜" → "欧阳*".
	register("mask_name_cn", newMaskNameCN)
	// mask_email keeps the first character of the mailbox and the domain:
	// "zhangsan@example.com" → "z*******@example.com".
	register("mask_email", newMaskEmail)
	// mask_bank_card keeps the issuer's first 6 digits and the last 4:
	// "6222 0212 3456 7890" → "622202******7890".
	register("mask_bank_card", newMaskBankCard)
	// mask_address keeps an address down to its district or county:
	// "北京市朝阳区建国路88号" → "北京市朝阳区******".
	register("mask_address", newMaskAddress)
	// pseudonymize replaces a value with a keyed HMAC-SHA256 pseudonym of 32
	// hex characters; the same value gives the same pseudonym within a scope:
	// "org_purpose" (default: the receiving organisation and purpose),
	// "consumer", "dataset", "shared:NAME" or "global"; {"rotate": "90d"}
	// changes them all each period.
	register("pseudonymize", newPseudonymize)
	// generalize coarsens a date ({"to": "month"}: "2026-03-14" →
	// "2026-03"), a birth date to an age band ({"to": "age", "band": 10}:
	// "1990-05-17" → "30-39"), a number to a bucket ({"to": "bucket",
	// "width": 1000}: 1280 → "1000-1999") or a code to a prefix ({"to":
	// "prefix", "length": 3}: "J06.9" → "J06").
	register("generalize", newGeneralize)
	// truncate keeps the first characters of a string: {"length": 4}:
	// "胸痛三天，伴气短" → "胸痛三天".
	register("truncate", newTruncate)
	// round rounds a number: {"digits": 1}: 3.14159 → 3.1;
	// {"nearest": 100}: 1280 → 1300.
	register("round", newRound)
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

// keepOp releases a scalar as the upstream sent it: 42 → 42, "朝阳区" →
// "朝阳区". A string is re-encoded only to replace invalid UTF-8 and escape
// U+2028/U+2029. An object or array falls back to redact.
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

// dropOp removes the field: {"name": "张三"} → {}. Compile never places it
// in a plan, so this Apply only serves direct callers.
type dropOp struct{}

func (dropOp) Apply(dst []byte, _ Value, _ *Env) ([]byte, bool) { return dst, true }

// nullOp releases null whatever the value: "张三" → null, {"a": 1} → null.
// The field stays in the record, so consumers see it exists.
type nullOp struct{}

func (nullOp) Apply(dst []byte, _ Value, _ *Env) ([]byte, bool) {
	return append(dst, "null"...), true
}

// redactOp releases a fixed token whatever the value: "张三" →
// "[REDACTED]", 42 → "[REDACTED]".
type redactOp struct{}

func (redactOp) Apply(dst []byte, _ Value, _ *Env) ([]byte, bool) {
	return append(dst, redactedToken...), true
}

// replaceOp releases the constant it was given, whatever the value:
// {"value": "某患者"}: "张三" → "某患者"; {"value": 0}: 1280 → 0.
type replaceOp struct{ raw []byte }

func newReplace(p Params) (Operator, error) {
	if err := p.check("value"); err != nil {
		return nil, err
	}
	v, ok := p["value"]
	if !ok {
		return nil, fmt.Errorf("value: required")
	}
	var raw []byte
	switch x := v.(type) {
	case nil:
		raw = []byte("null")
	case string:
		raw = appendString(nil, x)
	case bool:
		raw = strconv.AppendBool(nil, x)
	case json.Number:
		// The literal is released as written, once it is known to be one
		// JSON number.
		if x == "" {
			return nil, fmt.Errorf("value: bad number %q", string(x))
		}
		if end, err := scanNumber([]byte(x), 0); err != nil || end != len(x) {
			return nil, fmt.Errorf("value: bad number %q", string(x))
		}
		raw = []byte(x)
	default:
		f, err := p.Number("value", 0)
		if err != nil {
			return nil, fmt.Errorf("value: want a string, number, boolean or null, got %T", v)
		}
		raw = []byte(canonNumber(f))
	}
	return replaceOp{raw: raw}, nil
}

func (o replaceOp) Apply(dst []byte, _ Value, _ *Env) ([]byte, bool) {
	return append(dst, o.raw...), true
}

// maskChar reads the char parameter of the mask operators: one character
// that is punctuation or a symbol, so that a masked value cannot be read as
// a real one ("138xxxx5678" could be; "1381111 5678" would be).
func maskChar(p Params) (string, error) {
	c, err := p.String("char", "*")
	if err != nil {
		return "", err
	}
	r, n := utf8.DecodeRuneInString(c)
	if n == 0 || n != len(c) || r == utf8.RuneError {
		return "", fmt.Errorf("char: want one character, got %q", c)
	}
	if !unicode.IsPunct(r) && !unicode.IsSymbol(r) {
		return "", fmt.Errorf("char: want a punctuation mark or symbol, got %q", c)
	}
	return c, nil
}
