package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// TestSafe8MatchesTable checks the word-at-a-time test against
// the byte table, for every byte in every position among safe and unsafe
// neighbours.
func TestSafe8MatchesTable(t *testing.T) {
	for _, fill := range []byte{'a', ' ', 0x7f, '"', 0x1f, 0x80, 0xff, '=', '?', '%', '\''} {
		for p := range 8 {
			for b := range 256 {
				w := bytes.Repeat([]byte{fill}, 8)
				w[p] = byte(b)
				want := true
				for _, c := range w {
					want = want && safe[c]
				}
				if got := safe8(load8(string(w))); got != want {
					t.Fatalf("safe8(%q) = %v, want %v", w, got, want)
				}
			}
		}
	}
}

// TestAppendIsWhatEncodingJSONWrites: every string, valid UTF-8 or not,
// comes out byte for byte as json.Marshal writes it, whatever its length
// (the word-at-a-time path and the tail), and decodes to the string it
// was (invalid bytes to U+FFFD).
func TestAppendIsWhatEncodingJSONWrites(t *testing.T) {
	cases := []string{"", "a", "plain ascii of some length", `"quoted" \back`, "<script>&amp;</script>",
		"\x00\x01\b\f\n\r\t\x1f\x7f", "王小明 朝阳区", "line\u2028sep\u2029", "\xff\xfe bad", "abcdefg\xe4\xb8",
		"1234567\"", "12345678<", "\xe2\x80\xa8aaaaaaa"}
	for _, c := range cases {
		check(t, c)
	}
	for n := range 40 { // every position of every kind of byte
		for _, b := range []byte{'a', '"', '<', 0x01, 0x7f, 0x80, 0xe4} {
			s := bytes.Repeat([]byte{'x'}, n)
			if n > 0 {
				s[n/2] = b
			}
			check(t, string(s))
		}
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("王小明<&>\n\x00\xff")
	f.Fuzz(func(t *testing.T, s string) { check(t, s) })
}

func check(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	got := Append([]byte("prefix"), s)
	if !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("Append(%q) = %s, want %s", s, got[len("prefix"):], want)
	}
	var back string
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	if utf8.ValidString(s) && back != s {
		t.Fatalf("%q decodes to %q", s, back)
	}
}
