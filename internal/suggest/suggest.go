// Package suggest finds, for a mistyped word, the known word it was
// probably meant to be: the "did you mean" of the command line and of
// configuration errors.
package suggest

import "strings"

// Nearest returns the candidate closest to word, ignoring case, when it is
// at most two edits away (a transposition counting as one) and at most
// one edit in three of word's letters: "rsk" is a slip for "risk", but
// "jti" none for "ttl". Of candidates equally near, the first in
// lexical order wins.
func Nearest(word string, candidates []string) (string, bool) {
	best, bestDist := "", 3
	w := strings.ToLower(word)
	for _, c := range candidates {
		d := Distance(w, strings.ToLower(c))
		if 3*d > len([]rune(word)) {
			continue
		}
		if d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	return best, best != ""
}

// Distance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// runes each count one.
func Distance(a, b string) int {
	r, s := []rune(a), []rune(b)
	// d[i][j] is the distance between r[:i] and s[:j].
	d := make([][]int, len(r)+1)
	for i := range d {
		d[i] = make([]int, len(s)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(r); i++ {
		for j := 1; j <= len(s); j++ {
			cost := 1
			if r[i-1] == s[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && r[i-1] == s[j-2] && r[i-2] == s[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(r)][len(s)]
}
