// Package jsonscan reads JSON in place, without decoding it: where a
// value ends, and the members of an object. It is for hot paths that look
// at a few members of many records (a trail search, k-anonymity at
// release) and trust the JSON's validity to whoever wrote it: a malformed
// value is reported as not ending, never read past.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// SkipValue returns the end of the JSON value starting at b[i], and
// whether there is one.
func SkipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, ok := SkipString(b, i)
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

// SkipString returns the end (after the closing quote) of the JSON string
// starting at b[i] == '"', and whether it closes.
func SkipString(b []byte, i int) (int, bool) {
	k := i + 1
	for {
		j := bytes.IndexByte(b[k:], '"')
		if j < 0 {
			return 0, false
		}
		q := k + j
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, true
		}
		k = q + 1
	}
}

// Members calls f with the name and raw value of each member of the JSON
// object b, in order, and reports whether b is one object.
func Members(b []byte, f func(name string, raw []byte)) bool {
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
		end, ok := SkipString(b, i)
		if !ok {
			return false
		}
		name, ok := memberName(b[i:end])
		if !ok {
			return false
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend, ok := SkipValue(b, i)
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

// memberName is a quoted member name's text.
func memberName(q []byte) (string, bool) {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1 : len(q)-1]), true
	}
	if u, err := strconv.Unquote(string(q)); err == nil {
		return u, true
	}
	var s string
	if json.Unmarshal(q, &s) != nil {
		return "", false
	}
	return s, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
