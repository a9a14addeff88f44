package faq

import (
	"math"
	"slices"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/dialogue/nlu/rules"
)

// Entry is one FAQ item of the domain.
type Entry struct {
	ID     string
	Intent string // optional: entries preferred when the turn's intent is this
	// Questions are the ways customers ask it; each is matched on its own.
	Questions []string
	Answer    string
}

// Hit is the result of a search.
type Hit struct {
	// Entry is the matched entry, owned by the Index: do not modify it.
	Entry *Entry
	// Question is the variant of Entry.Questions that matched best.
	Question string
	// Score is the cosine similarity in [0,1]; 1 for an exact variant.
	Score float64
}

// preferMargin is how far behind the best entry an entry whose intent is the
// preferred one may score and still win: the NLU already said what the
// customer is asking about, so a near tie goes to that intent's entries.
const preferMargin = 0.1

// unknownFactor scales the weight of a message term that no question holds.
// Such terms still lower the similarity (a message about something else must
// not match), but less than a rare question term raises it: customers wrap
// their question in words the FAQ author never wrote.
const unknownFactor = 0.35

// Index finds the FAQ entry closest to a message. Build it with Build; it
// is immutable afterwards and safe for concurrent use.
type Index struct {
	entries   []Entry
	docs      []doc              // one per usable question variant
	termID    map[uint64]int32   // term → index into idf and postings
	idf       []float32          // by term id
	postings  [][]posting        // by term id: the variants holding the term
	exact     map[string][]int32 // variant key (normalized, stripped) → docs
	docIntent []int32            // by doc: index into the intents, -1 for none
	intentID  map[string]int32   // entry intent → id
	unknown   float32            // idf of a term no variant holds
	scratch   sync.Pool          // *scratch, per-search buffers
}

type doc struct {
	entry    int32
	question string
}

type posting struct {
	doc int32
	w   float32 // the term's weight in the variant's unit vector
}

type scratch struct {
	acc   []float32 // by variant: dot product so far; all 0 between searches
	terms []uint64
	key   []byte
}

// Build indexes entries. The entries are copied; later changes to the
// slice do not affect the index. Questions that hold no letter or digit
// are ignored; an entry without usable questions is kept (Len counts it)
// but never found.
func Build(entries []Entry) *Index {
	x := &Index{
		entries:  make([]Entry, len(entries)),
		termID:   map[uint64]int32{},
		exact:    map[string][]int32{},
		intentID: map[string]int32{},
	}
	var docTerms [][]uint64
	var df []int32
	var s scratch
	for i, e := range entries {
		e.Questions = slices.Clone(e.Questions)
		x.entries[i] = e
		for _, q := range e.Questions {
			key, terms := s.features(q)
			if len(terms) == 0 {
				continue
			}
			d := int32(len(x.docs))
			x.docs = append(x.docs, doc{entry: int32(i), question: q})
			x.docIntent = append(x.docIntent, x.intent(e.Intent))
			x.exact[string(key)] = append(x.exact[string(key)], d)
			terms = slices.Clone(terms)
			slices.Sort(terms)
			docTerms = append(docTerms, terms)
			for j, t := range terms {
				if j > 0 && terms[j-1] == t {
					continue
				}
				id, ok := x.termID[t]
				if !ok {
					id = int32(len(df))
					x.termID[t] = id
					df = append(df, 0)
				}
				df[id]++
			}
		}
	}
	n := float64(len(x.docs))
	x.idf = make([]float32, len(df))
	for id, c := range df {
		x.idf[id] = float32(idf(n, float64(c)))
	}
	x.unknown = float32(idf(n, 0) * unknownFactor)
	x.postings = make([][]posting, len(df))
	var ws []termWeight
	for d, terms := range docTerms {
		ws = x.weigh(terms, ws[:0])
		var norm float64
		for _, tw := range ws {
			norm += float64(tw.w) * float64(tw.w)
		}
		inv := float32(1 / math.Sqrt(norm))
		for _, tw := range ws {
			x.postings[tw.id] = append(x.postings[tw.id], posting{doc: int32(d), w: tw.w * inv})
		}
	}
	x.scratch.New = func() any { return &scratch{acc: make([]float32, len(x.docs))} }
	return x
}

// intent returns the id of an entry intent, -1 for none.
func (x *Index) intent(name string) int32 {
	if name == "" {
		return -1
	}
	id, ok := x.intentID[name]
	if !ok {
		id = int32(len(x.intentID))
		x.intentID[name] = id
	}
	return id
}

// idf is the smoothed inverse document frequency of a term held by df of n
// variants; it stays positive, so a term every variant holds still counts
// a little.
func idf(n, df float64) float64 { return math.Log((1+n)/(1+df)) + 1 }

type termWeight struct {
	id int32 // -1: a term no variant holds
	w  float32
}

// weigh turns sorted terms into one weight per distinct term: (1 + ln tf) ×
// idf. Unknown terms get id -1 and the idf of an unseen term.
func (x *Index) weigh(sorted []uint64, out []termWeight) []termWeight {
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[i] {
			j++
		}
		tf := 1 + math.Log(float64(j-i))
		tw := termWeight{id: -1, w: float32(tf) * x.unknown}
		if id, ok := x.termID[sorted[i]]; ok {
			tw = termWeight{id: id, w: float32(tf) * x.idf[id]}
		}
		out = append(out, tw)
		i = j
	}
	return out
}

// Len returns the number of entries given to Build.
func (x *Index) Len() int { return len(x.entries) }

// Search returns the entry most similar to text and true, or false when
// text holds no letter or digit or shares no term with any question. Among
// entries, one whose Intent equals preferIntent ("" for none) wins when it
// scores within 0.1 of the best; otherwise the higher score wins and, on a
// tie, the entry given first to Build. Hit.Score is the entry's own
// similarity, so the caller's threshold applies to what was matched. It
// does not block; it allocates only what rules.Normalize does.
func (x *Index) Search(text, preferIntent string) (Hit, bool) {
	if len(x.docs) == 0 {
		return Hit{}, false
	}
	s := x.scratch.Get().(*scratch)
	h, ok := x.search(s, text, preferIntent)
	x.scratch.Put(s) // not deferred: a panic must not return a dirty acc
	return h, ok
}

// search is Search with the scratch buffers; it leaves s.acc all zero.
func (x *Index) search(s *scratch, text, preferIntent string) (Hit, bool) {
	key, terms := s.features(text)
	if len(terms) == 0 {
		return Hit{}, false
	}
	slices.Sort(terms)
	acc := s.acc
	var qnorm float64
	for i := 0; i < len(terms); {
		j := i + 1
		for j < len(terms) && terms[j] == terms[i] {
			j++
		}
		tf := float32(1 + math.Log(float64(j-i)))
		id, ok := x.termID[terms[i]]
		i = j
		if !ok {
			w := tf * x.unknown
			qnorm += float64(w) * float64(w)
			continue
		}
		w := tf * x.idf[id]
		qnorm += float64(w) * float64(w)
		for _, p := range x.postings[id] {
			acc[p.doc] += w * p.w
		}
	}
	qlen := math.Sqrt(qnorm)
	// Rank in the accumulator's units (similarity × |q|) so that the scan
	// over all variants compares plain floats. Scanning in variant order
	// with a strict > keeps the first of equal candidates, which is the
	// entry given first to Build.
	for _, d := range x.exact[string(key)] { // no allocation: map index by converted bytes
		acc[d] = float32(qlen)
	}
	pref := int32(-2) // matches no variant
	if id, ok := x.intentID[preferIntent]; ok && preferIntent != "" {
		pref = id
	}
	margin := float32(preferMargin * qlen)
	best, bestRank := -1, float32(0)
	if pref < 0 {
		for d, a := range acc {
			if a > bestRank {
				best, bestRank = d, a
			}
		}
	} else {
		intents := x.docIntent[:len(acc)]
		for d, a := range acc {
			r := a
			if intents[d] == pref && a > 0 {
				r += margin
			}
			if r > bestRank {
				best, bestRank = d, r
			}
		}
	}
	if best < 0 {
		clear(acc)
		return Hit{}, false
	}
	score := min(float64(acc[best])/qlen, 1)
	if acc[best] == float32(qlen) && slices.Contains(x.exact[string(key)], int32(best)) {
		score = 1
	}
	clear(acc)
	dc := x.docs[best]
	return Hit{Entry: &x.entries[dc.entry], Question: dc.question, Score: score}, true
}

// features normalizes text and returns its key (the kept runes: letters
// and digits, UTF-8) and its terms: every kept rune and every pair of
// adjacent kept runes not separated by a dropped one. Both slices are the
// scratch's buffers, valid until the next call.
func (s *scratch) features(text string) ([]byte, []uint64) {
	n := rules.Normalize(text)
	s.key, s.terms = s.key[:0], s.terms[:0]
	content := false
	for _, r := range n.Runes {
		if keep(r) {
			s.key = utf8.AppendRune(s.key, r)
			content = content || !filler(r)
		}
	}
	// Filler characters are skipped as if absent, so "我想开个发票" reads
	// as "开发票"; text made only of them keeps them.
	prev := rune(-1)
	for _, r := range n.Runes {
		switch {
		case !keep(r):
			prev = -1
			continue
		case content && filler(r):
			continue
		}
		s.terms = append(s.terms, uint64(r))
		if prev >= 0 {
			s.terms = append(s.terms, uint64(prev)<<32|uint64(r))
		}
		prev = r
	}
	return s.key, s.terms
}

// keep reports whether r carries meaning: letters (Han included) and
// digits, not punctuation, symbols, marks or spaces.
func keep(r rune) bool {
	if r < 0x80 {
		return 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || 'A' <= r && r <= 'Z'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

// filler reports whether r is a Chinese function character that customers
// add around a question (pronouns, particles, politeness) and that says
// nothing about what is asked.
func filler(r rune) bool {
	switch r {
	case '的', '了', '吗', '呢', '啊', '吧', '呀', '哦', '嗯', '哈', '啦', '嘛',
		'我', '你', '您', '们', '这', '那', '个', '是', '请', '问', '想', '要', '就', '都', '也', '还', '话':
		return true
	}
	return false
}
