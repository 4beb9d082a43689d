package main

import "github.com/sluicegw/sluice/internal/suggest"

// didYouMean returns "; did you mean X?" for the candidate nearest word,
// when one is near enough to be a slip of the fingers, and "" otherwise.
func didYouMean(word string, candidates []string) string {
	if c, ok := suggest.Nearest(word, candidates); ok {
		return "; did you mean " + c + "?"
	}
	return ""
}
