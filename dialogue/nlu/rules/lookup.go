package rules

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// lookupEntry is one normalized lookup value.
type lookupEntry struct {
	runes []rune
	typ   string
	canon string // reported as Entity.Normalized
}

// buildLookups indexes lookup values (and the synonyms of listed values)
// by their first normalized rune, longest first.
func (e *Extractor) buildLookups(lookups map[string][]string, synonyms map[string]string) error {
	e.synonyms = make(map[string]string, len(synonyms))
	for _, v := range slices.Sorted(maps.Keys(synonyms)) {
		canon := synonyms[v]
		key := Normalize(v).Text
		if key == "" {
			return fmt.Errorf("%w: synonyms[%q]: the variant is empty after normalization, remove it", ErrInvalidConfig, v)
		}
		if Normalize(canon).Text == "" {
			return fmt.Errorf("%w: synonyms[%q]: the canonical value is empty, give the value it stands for", ErrInvalidConfig, v)
		}
		e.synonyms[key] = canon
	}

	// Variants by the normalized canonical value they stand for.
	variants := map[string][]string{}
	for _, v := range slices.Sorted(maps.Keys(synonyms)) {
		c := Normalize(synonyms[v]).Text
		variants[c] = append(variants[c], Normalize(v).Text)
	}

	e.lookup = map[rune][]lookupEntry{}
	seen := map[[2]string]bool{}
	add := func(typ, text, canon string) {
		if seen[[2]string{typ, text}] {
			return
		}
		seen[[2]string{typ, text}] = true
		rs := []rune(text)
		e.lookup[rs[0]] = append(e.lookup[rs[0]], lookupEntry{runes: rs, typ: typ, canon: canon})
	}
	for _, typ := range slices.Sorted(maps.Keys(lookups)) {
		if typ == "" {
			return fmt.Errorf("%w: lookups: empty entity type, name the type the values belong to", ErrInvalidConfig)
		}
		for i, v := range lookups[typ] {
			key := Normalize(v).Text
			if key == "" {
				return fmt.Errorf("%w: lookups[%q][%d]: empty value, remove it", ErrInvalidConfig, typ, i)
			}
			canon := v
			if c, ok := e.synonyms[key]; ok {
				canon = c
			}
			add(typ, key, canon)
			for _, variant := range variants[key] {
				add(typ, variant, canon)
			}
		}
	}
	for r, list := range e.lookup {
		slices.SortStableFunc(list, func(a, b lookupEntry) int {
			return cmp.Or(cmp.Compare(len(b.runes), len(a.runes)), cmp.Compare(a.typ, b.typ))
		})
		e.lookup[r] = list
	}
	return nil
}

// Canonical returns the canonical value of a synonym variant (compared
// after normalization) and true, or value itself and false when it is not a
// known variant. It is safe for concurrent use.
func (e *Extractor) Canonical(value string) (string, bool) {
	if c, ok := e.synonyms[Normalize(value).Text]; ok {
		return c, true
	}
	return value, false
}

// scanLookups adds the longest lookup value starting at each rune (all
// types that have a value of that length).
func (e *Extractor) scanLookups(rs []rune, c *collector) {
	if len(e.lookup) == 0 {
		return
	}
	for i := range rs {
		list := e.lookup[rs[i]]
		found := 0
		for _, le := range list {
			n := len(le.runes)
			if n < found {
				break
			}
			if i+n > len(rs) || !slices.Equal(rs[i:i+n], le.runes) || !wordEdges(rs, i, i+n) {
				continue
			}
			found = n
			c.add(cand{typ: le.typ, norm: le.canon, start: i, end: i + n, conf: 1, ext: ExtractorLookup, rank: rankLookup})
		}
	}
}
