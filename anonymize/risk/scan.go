package risk

import (
	"crypto/sha256"
	"encoding/json"
	"strconv"
)

// ReleasesJSON is Releases of a record given as its JSON object, read in
// place: each member's value is sliced out of rec, not decoded, and only
// the quasi-identifiers are looked at (a class's diversity is the
// table's). A record that is not a JSON object is not released.
func (t *Table) ReleasesJSON(rec []byte) bool {
	var stack [8]json.RawMessage
	vals := stack[:0]
	if len(t.qis) > len(stack) {
		vals = make([]json.RawMessage, 0, len(t.qis))
	}
	vals = vals[:len(t.qis)]
	ok := members(rec, func(name string, raw []byte) {
		for i, f := range t.qis {
			if f.Name == name {
				vals[i] = raw
				return
			}
		}
	})
	if !ok {
		return false
	}
	var buf [256]byte
	key := buf[:0]
	for _, v := range vals {
		key = appendQI(key, v)
	}
	sum := sha256.Sum256(key)
	return t.releasesClass(ClassKey(sum[:16]))
}

// members calls f with the name and raw value of each member of the JSON
// object b, in order, and reports whether b is one object.
func members(b []byte, f func(name string, raw []byte)) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end, ok := skipString(b, i)
		if !ok {
			return false
		}
		name := string(b[i+1 : end-1])
		if containsByte(b[i+1:end-1], '\\') {
			u, err := strconv.Unquote(string(b[i:end]))
			if err != nil {
				var s string
				if json.Unmarshal(b[i:end], &s) != nil {
					return false
				}
				u = s
			}
			name = u
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend, ok := skipValue(b, i)
		if !ok {
			return false
		}
		f(name, b[i:vend])
		i = skipSpace(b, vend)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// skipString returns the end (after the closing quote) of the JSON string
// starting at b[i] == '"'.
func skipString(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// skipValue returns the end of the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	for j := i; j < len(b); j++ {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j, j > i
		}
	}
	return len(b), len(b) > i
}
