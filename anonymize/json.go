package anonymize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sluicegw/sluice/internal/jsonstr"
)

// maxDepth bounds nesting in upstream bodies so that a hostile body cannot
// exhaust the stack of the recursive scanner.
const maxDepth = 64

// Kind is the JSON type of a value.
type Kind uint8

// The JSON kinds.
const (
	Null Kind = iota
	Bool
	Number
	String
	Object
	Array
)

func (k Kind) String() string {
	return [...]string{"null", "bool", "number", "string", "object", "array"}[k]
}

// SyntaxError reports invalid JSON in an upstream body.
type SyntaxError struct {
	Offset int64
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

var errDepth = errors.New("nesting too deep")

// isWS reports JSON insignificant whitespace.
func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

func synErr(i int, msg string) error { return &SyntaxError{Offset: int64(i), Msg: msg} }

// kindOf returns the kind of the value starting at b[i] (which must not be
// whitespace); the value itself is not validated.
func kindOf(c byte) Kind {
	switch c {
	case '{':
		return Object
	case '[':
		return Array
	case '"':
		return String
	case 't', 'f':
		return Bool
	case 'n':
		return Null
	}
	return Number
}

// scanValue validates the JSON value starting at b[i] (no leading
// whitespace) and returns the index just past it.
func scanValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, synErr(i, "unexpected end of value")
	}
	switch c := b[i]; c {
	case '{':
		return scanObject(b, i, depth+1)
	case '[':
		return scanArray(b, i, depth+1)
	case '"':
		end, _, err := scanString(b, i)
		return end, err
	case 't':
		return scanLiteral(b, i, "true")
	case 'f':
		return scanLiteral(b, i, "false")
	case 'n':
		return scanLiteral(b, i, "null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return scanNumber(b, i)
		}
		return i, synErr(i, fmt.Sprintf("unexpected character %q", c))
	}
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, synErr(i, "invalid literal")
	}
	return i + len(lit), nil
}

func scanObject(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, errDepth
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, synErr(i, "expected object key")
		}
		end, _, err := scanString(b, i)
		if err != nil {
			return end, err
		}
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return i, synErr(i, "expected ':'")
		}
		i = skipWS(b, i+1)
		if i, err = scanValue(b, i, depth); err != nil {
			return i, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return i, synErr(i, "unterminated object")
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, synErr(i, "expected ',' or '}'")
		}
	}
}

func scanArray(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, errDepth
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = scanValue(b, i, depth); err != nil {
			return i, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return i, synErr(i, "unterminated array")
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, synErr(i, "expected ',' or ']'")
		}
	}
}

// scanString validates the string starting at the quote b[i] and returns the
// index past its closing quote. plain is true when the string holds only
// printable ASCII without escapes, so its bytes are its value.
func scanString(b []byte, i int) (end int, plain bool, err error) {
	plain = true
	j := i + 1
	for j < len(b) {
		// Skip eight bytes at a time while they need no attention:
		// printable ASCII (any byte from 0x80 once plain is already lost)
		// without a quote or a backslash.
		for j+8 <= len(b) {
			v := binary.LittleEndian.Uint64(b[j:])
			if hasByte(v, '"') || hasByte(v, '\\') || hasLess(v, 0x20) || (plain && v&swarHigh != 0) {
				break
			}
			j += 8
		}
		if j >= len(b) {
			break
		}
		c := b[j]
		switch {
		case c == '"':
			return j + 1, plain, nil
		case c == '\\':
			plain = false
			if j+1 >= len(b) {
				return j, false, synErr(j, "unterminated escape")
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) {
					return j, false, synErr(j, "short unicode escape")
				}
				for _, h := range b[j+2 : j+6] {
					if !isHex(h) {
						return j, false, synErr(j, "invalid unicode escape")
					}
				}
				j += 6
			default:
				return j, false, synErr(j, "invalid escape")
			}
		case c < 0x20:
			return j, false, synErr(j, "control character in string")
		case c >= utf8.RuneSelf:
			plain = false
			j++
		default:
			j++
		}
	}
	return j, false, synErr(j, "unterminated string")
}

// Word-at-a-time byte tests (Hacker's Delight 6-1): each is non-zero
// exactly when some byte of v qualifies.
const (
	swarLow  = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// hasLess reports whether some byte of v is below n (n <= 128).
func hasLess(v uint64, n byte) bool { return (v-swarLow*uint64(n))&^v&swarHigh != 0 }

// hasByte reports whether some byte of v is c.
func hasByte(v uint64, c byte) bool { return hasLess(v^(swarLow*uint64(c)), 1) }

// skipStringBytes returns the index of the first quote or backslash in b,
// or len(b).
func skipStringBytes(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		if hasByte(v, '"') || hasByte(v, '\\') {
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' {
			break
		}
	}
	return i
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func scanNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, synErr(start, "invalid number")
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return i, synErr(start, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return i, synErr(start, "invalid number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return i, synErr(start, "invalid number")
		}
	}
	return i, nil
}

// decodeString returns the value of a validated JSON string literal (quotes
// included). Invalid UTF-8 and lone surrogates become U+FFFD, as
// encoding/json does.
func decodeString(raw []byte) string {
	s := raw[1 : len(raw)-1]
	var out []byte
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				out = append(out, c)
				i++
				continue
			}
			r, n := utf8.DecodeRune(s[i:])
			out = utf8.AppendRune(out, r) // RuneError for invalid bytes
			i += n
			continue
		}
		switch s[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 = hex4(s[i+2 : i+6])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					i += 6
					r = dec
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, s[i+1])
		}
		i += 2
	}
	return string(out)
}

func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// appendString appends s as a JSON string literal, escaped exactly as
// the audit trail and encoding/json escape it (see internal/jsonstr).
func appendString(dst []byte, s string) []byte { return jsonstr.Append(dst, s) }

// Value is one JSON value from an upstream record, handed to an operator.
// Raw is valid JSON.
type Value struct {
	Raw  []byte
	Kind Kind
	// plain is true for strings whose raw bytes between the quotes are their
	// value (printable ASCII, no escapes).
	plain bool
}

// Text returns the value of a string, or the literal text of a number, and
// false for other kinds.
func (v Value) Text() (string, bool) {
	if b, ok := v.rawText(); ok {
		return string(b), true
	}
	if v.Kind == String {
		return decodeString(v.Raw), true
	}
	return "", false
}

// AppendText appends Text's result to dst, and reports false for other
// kinds; a number or a string holding no escapes costs no allocation.
func (v Value) AppendText(dst []byte) ([]byte, bool) {
	if b, ok := v.rawText(); ok {
		return append(dst, b...), true
	}
	if v.Kind == String {
		return append(dst, decodeString(v.Raw)...), true
	}
	return dst, false
}

// rawText returns Text where it lies in Raw as it is, without copying: a
// number, or a string holding no escapes. ok is false for anything else.
func (v Value) rawText() (b []byte, ok bool) {
	switch {
	case v.Kind == String && v.plain:
		return v.Raw[1 : len(v.Raw)-1], true
	case v.Kind == Number:
		return v.Raw, true
	}
	return nil, false
}

// Float returns a number's value.
func (v Value) Float() (float64, bool) {
	if v.Kind != Number {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v.Raw), 64)
	return f, err == nil
}

// appendCleanString appends a validated string literal, re-encoding it only
// when it may hold invalid UTF-8 or characters that need escaping.
func appendCleanString(dst []byte, v Value) []byte {
	if v.plain {
		return append(dst, v.Raw...)
	}
	raw := v.Raw[1 : len(v.Raw)-1]
	if utf8.Valid(raw) && !hasLineSep(raw) {
		return append(dst, v.Raw...)
	}
	return appendString(dst, decodeString(v.Raw))
}

func hasLineSep(b []byte) bool {
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0xE2 && b[i+1] == 0x80 && (b[i+2] == 0xA8 || b[i+2] == 0xA9) {
			return true
		}
	}
	return false
}
