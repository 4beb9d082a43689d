// Package jsonstr writes JSON string literals exactly as encoding/json
// does with HTML escaping on, fast. The audit trail needs the exact bytes
// (its records are what json.Marshal writes); released records use the
// same escaper for every string the gateway writes itself (a masked,
// pseudonymised or generalised value, an invalid one re-encoded), so a
// value reads alike in a release and in the trail. Values released as
// they are keep the department's own valid escaping.
package jsonstr

import "unicode/utf8"

// safe is true for the bytes that encoding/json copies into a string
// unchanged with HTML escaping on: printable ASCII and DEL except '"', '\\',
// '<', '>' and '&' (its htmlSafeSet). Bytes from 0x80 up are false: they
// take the UTF-8 path.
var safe = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		switch b {
		case '"', '\\', '<', '>', '&':
		default:
			t[b] = true
		}
	}
	return t
}()

const lowerHex = "0123456789abcdef"

// Words of 8 equal bytes for safe8.
const (
	ones8  = 0x0101010101010101
	highs8 = 0x8080808080808080
)

// load8 reads the first 8 bytes of s as a little-endian word; the compiler
// makes it one load.
func load8(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// safe8 reports whether all 8 bytes of the word x are safe, testing them
// at once with a trick of "Bit Twiddling Hacks": for a word v of bytes below
// 0x80, (v-n*ones8)&highs8 is nonzero if and only if some byte of v is below
// n (a borrow into a byte comes only from a byte below n beneath it). A byte
// from 0x80 up sets its own high bit in x.
func safe8(x uint64) bool {
	// '"' (0x22) and '&' (0x26) differ in bit 0x04 only, as do '<' (0x3c)
	// and '>' (0x3e) in bit 0x02: x with that bit masked off is the one.
	quoteAmp := (x ^ 0x22*ones8) &^ (0x04 * ones8)
	angle := (x ^ 0x3c*ones8) &^ (0x02 * ones8)
	backslash := x ^ 0x5c*ones8
	bad := x | // from 0x80
		(x - 0x20*ones8) | // control characters
		(quoteAmp - ones8) | (angle - ones8) | (backslash - ones8) // zero bytes
	return bad&highs8 == 0
}

// Append appends s as a JSON string exactly as encoding/json does
// with HTML escaping on: '"' and '\\' escaped, \b \f \n \r \t short, other
// control characters and '<', '>', '&' as \u00XX, each byte of invalid UTF-8
// as \ufffd, and U+2028 and U+2029 as \u2028 and \u2029. Everything else,
// including DEL, is copied, in runs. Adapted from appendString in Go's
// encoding/json (BSD licence), with safe bytes skipped 8 at a time.
func Append(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is safe and not yet copied
	for i := 0; i < len(s); {
		// Skip safe bytes 8 at a time; for a tail shorter than 8, the last
		// 8 bytes of s (overlapping some already seen) stand in. Else take
		// bytes one at a time up to end, the end of this word.
		var end int
		if i+8 <= len(s) {
			if safe8(load8(s[i:])) {
				i += 8
				continue
			}
			end = i + 8
		} else {
			if len(s) >= 8 && safe8(load8(s[len(s)-8:])) {
				break
			}
			end = len(s)
		}
		for i < end {
			b := s[i]
			if safe[b] {
				i++
				continue
			}
			if b < utf8.RuneSelf {
				dst = append(dst, s[start:i]...)
				switch b {
				case '\\', '"':
					dst = append(dst, '\\', b)
				case '\b':
					dst = append(dst, '\\', 'b')
				case '\f':
					dst = append(dst, '\\', 'f')
				case '\n':
					dst = append(dst, '\\', 'n')
				case '\r':
					dst = append(dst, '\\', 'r')
				case '\t':
					dst = append(dst, '\\', 't')
				default:
					// Other control characters, and <, > and &.
					dst = append(dst, '\\', 'u', '0', '0', lowerHex[b>>4], lowerHex[b&0xF])
				}
				i++
				start = i
				continue
			}
			// A multi-byte sequence, which may run past end.
			c, size := utf8.DecodeRuneInString(s[i:])
			if c == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			if c == '\u2028' || c == '\u2029' {
				dst = append(dst, s[start:i]...)
				dst = append(dst, '\\', 'u', '2', '0', '2', lowerHex[c&0xF])
				i += size
				start = i
				continue
			}
			i += size
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
