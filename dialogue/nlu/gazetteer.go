package nlu

import (
	"slices"
	"unicode/utf8"
)

// gazetteer is a lexicon of entity values (lower-cased normalized text) with
// the types they were annotated with; the tagger sees where the text
// matches it. Built from lookup tables and from the training annotations.
type gazetteer struct {
	types  map[string][]int // value -> entity type indexes, sorted
	maxLen int
}

const gazMaxLen = 24

func newGazetteer() *gazetteer { return &gazetteer{types: map[string][]int{}} }

func (g *gazetteer) add(value []rune, typ int) {
	if len(value) < 2 || len(value) > gazMaxLen {
		return
	}
	k := string(value)
	ts := g.types[k]
	if i, found := slices.BinarySearch(ts, typ); !found {
		g.types[k] = slices.Insert(ts, i, typ)
	}
	g.maxLen = max(g.maxLen, len(value))
}

// gazMatch is one lexicon match in a text.
type gazMatch struct {
	start, end, typ int
}

// matches returns every lexicon match in rs.
func (g *gazetteer) matches(rs []rune, dst []gazMatch) []gazMatch {
	if g == nil || len(g.types) == 0 {
		return dst
	}
	buf := make([]byte, 0, 64)
	for i := range rs {
		buf = buf[:0]
		for j := i; j < len(rs) && j-i < g.maxLen; j++ {
			buf = utf8.AppendRune(buf, rs[j])
			if j == i {
				continue
			}
			if ts, ok := g.types[string(buf)]; ok {
				for _, t := range ts {
					dst = append(dst, gazMatch{i, j + 1, t})
				}
			}
		}
	}
	return dst
}

// gazKeys appends, for each position, the lexicon features of the matches
// covering it.
func gazKeys(feats [][]uint64, ms []gazMatch) {
	for _, m := range ms {
		for i := m.start; i < m.end; i++ {
			var pos byte
			switch {
			case m.end-m.start == 1:
				pos = 'S'
			case i == m.start:
				pos = 'B'
			case i == m.end-1:
				pos = 'E'
			default:
				pos = 'I'
			}
			feats[i] = append(feats[i], uint64(newHash(tplGaz).byte(pos).rune(rune(m.typ))))
		}
	}
}
