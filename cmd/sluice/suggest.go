package main

import "strings"

// didYouMean returns "; did you mean X?" for the candidate nearest word,
// when one is near enough to be a slip of the fingers, and "" otherwise.
func didYouMean(word string, candidates []string) string {
	if c, ok := nearest(word, candidates); ok {
		return "; did you mean " + c + "?"
	}
	return ""
}

// nearest returns the candidate closest to word, when it is at most two
// edits away (a transposition counting as one) and at most one edit in
// three of word's letters: "rsk" is a slip for "risk", but "jti" none for
// "ttl".
func nearest(word string, candidates []string) (string, bool) {
	best, bestDist := "", 3
	for _, c := range candidates {
		d := editDistance(strings.ToLower(word), strings.ToLower(c))
		if d < bestDist && 3*d <= len([]rune(word)) {
			best, bestDist = c, d
		}
	}
	return best, best != ""
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// runes each count one.
func editDistance(a, b string) int {
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
