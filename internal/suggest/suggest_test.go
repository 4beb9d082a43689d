package suggest

import "testing"

func TestDistanceCountsATranspositionAsOneEdit(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"audit", "audit", 0},
		{"audti", "audit", 1},
		{"rsk", "risk", 1},
		{"privacy_unti", "privacy_unit", 1},
		{"timeout", "timeoutx", 1},
		{"kitten", "sitting", 3},
		{"ca", "abc", 3},
		{"朝阳区", "朝阳", 1},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestNearestIsASlipOrNothing(t *testing.T) {
	for _, tc := range []struct {
		word string
		want string
	}{
		{"audti", "audit"},
		{"RISK", "risk"},
		{"jti", ""},      // two edits from ttl, in three letters: not a slip
		{"xyzzy", ""},    // near nothing
		{"lnit", "lint"}, // a transposition
	} {
		got, ok := Nearest(tc.word, []string{"audit", "risk", "ttl", "lint", "list"})
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Nearest(%q) = %q, %v; want %q", tc.word, got, ok, tc.want)
		}
	}
	// Equally near: the first in lexical order.
	if got, _ := Nearest("lis", []string{"list", "lisp"}); got != "lisp" {
		t.Errorf("tie went to %q, want lisp", got)
	}
}
