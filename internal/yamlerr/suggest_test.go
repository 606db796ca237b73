package yamlerr

import (
	"strings"
	"testing"
)

func TestClosest(t *testing.T) {
	configKeys := []string{"name", "source", "topics", "rename", "topic", "format", "tasks", "refresh_interval", "commit_interval"}
	ruleKeys := []string{"match", "action", "description", "keep_first", "keep_last", "mask_char", "precision", "truncate", "buckets", "value"}
	actions := []string{"redact", "mask", "hash", "generalize", "bucket", "replace", "drop", "block"}
	tests := []struct {
		name  string
		word  string
		known []string
		want  string
	}{
		{"a swapped pair of letters is one edit", "hsah", actions, "hash"},
		{"a swap inside a longer key is one edit", "keep_lsat", ruleKeys, "keep_last"},
		{"a missing letter is one edit", "taks", configKeys, "tasks"},
		{"case does not count", "Action", ruleKeys, "action"},
		{"two edits are close in a word of six letters", "sorcce", configKeys, "source"},
		{"two edits are too many in a word of four letters", "tosk", []string{"tasks", "topic"}, ""},
		{"a word far from every key gets nothing", "colour", configKeys, ""},
		{"the first of equally close words wins", "topica", configKeys, "topics"},
		{"the start of a key suggests the key", "refresh", configKeys, "refresh_interval"},
		{"a start of two letters is too short to guess from", "re", configKeys, ""},
		{"runes count as one character each", "désc", []string{"desc"}, "desc"},
		{"an empty word gets nothing", "", configKeys, ""},
		{"nothing is suggested from an empty list", "name", nil, ""},
		{"a very long word gets nothing", strings.Repeat("a", maxWord+1), []string{strings.Repeat("a", maxWord)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Closest(tt.word, tt.known); got != tt.want {
				t.Errorf("Closest(%q) = %q, want %q", tt.word, got, tt.want)
			}
		})
	}
}

func TestDidYouMean(t *testing.T) {
	t.Run("a close word is quoted in parentheses", func(t *testing.T) {
		if got := DidYouMean("polices", []string{"node", "policies"}); got != ` (did you mean "policies"?)` {
			t.Errorf("DidYouMean = %q", got)
		}
	})
	t.Run("no close word gives an empty string", func(t *testing.T) {
		if got := DidYouMean("colour", []string{"node", "policies"}); got != "" {
			t.Errorf("DidYouMean = %q", got)
		}
	})
}

func TestDistance(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{"equal words are 0 apart", "hash", "hash", 0},
		{"an empty word is as far as the other is long", "", "mask", 4},
		{"an adjacent swap is 1", "hsah", "hash", 1},
		{"a swap and a change are 2", "hsas", "hash", 2},
		{"swapped letters are not edited again (optimal string alignment)", "ca", "abc", 3},
		{"insertions and deletions are 1 each", "kitten", "sitting", 3},
		{"a multi-byte rune is one character", "naïve", "naive", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := distance([]rune(tt.a), []rune(tt.b)); got != tt.want {
				t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := distance([]rune(tt.b), []rune(tt.a)); got != tt.want {
				t.Errorf("distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
			}
		})
	}
}
