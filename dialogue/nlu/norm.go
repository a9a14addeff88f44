package nlu

import "github.com/zhiyin/zhiyin/dialogue/nlu/rules"

// normalize returns the normalized runes of s and, for each, its rune
// offset in s (plus one final entry: the end); see rules.Normalize.
func normalize(s string) ([]rune, []int) {
	n := rules.Normalize(s)
	return n.Runes, n.Orig
}
