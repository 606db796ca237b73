package yamlerr

import (
	"strconv"
	"strings"
)

// maxWord bounds the length in runes of a word Closest looks at: no known key
// comes near it, and each comparison costs the product of the two lengths.
const maxWord = 64

// DidYouMean returns ` (did you mean "x"?)` for the word of known that Closest
// picks, or "" when none is close.
func DidYouMean(word string, known []string) string {
	if c := Closest(word, known); c != "" {
		return " (did you mean " + strconv.Quote(c) + "?)"
	}
	return ""
}

// Closest returns the word of known closest to word, ignoring case, or "" when
// none is close. Close means within a third of word's length in edits (at
// least one edit), where an edit inserts, deletes or replaces a character or
// swaps two adjacent ones, so that "hsah" is one edit from "hash" and "taks"
// from "tasks". Failing that, a known word that starts with word (of three
// characters or more) is close: "refresh" for "refresh_interval". Ties go to
// the word that comes first in known.
func Closest(word string, known []string) string {
	w := []rune(strings.ToLower(word))
	if len(w) == 0 || len(w) > maxWord {
		return ""
	}
	limit := max(1, len(w)/3)
	best, bestD := "", limit+1
	for _, k := range known {
		kr := []rune(strings.ToLower(k))
		if abs(len(kr)-len(w)) >= bestD {
			continue // the distance is at least the difference in length
		}
		if d := distance(w, kr); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" || len(w) < 3 {
		return best
	}
	for _, k := range known {
		if strings.HasPrefix(strings.ToLower(k), string(w)) {
			return k
		}
	}
	return ""
}

// distance is the Damerau–Levenshtein distance between a and b in its
// "optimal string alignment" form: the fewest insertions, deletions,
// substitutions and transpositions of adjacent runes that turn a into b,
// editing no substring twice.
func distance(a, b []rune) int {
	// Three rows of the (len(a)+1)×(len(b)+1) table: i-2, i-1 and i.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
