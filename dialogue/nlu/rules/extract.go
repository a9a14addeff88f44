package rules

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Entity is one value found in a message.
type Entity struct {
	// Type is a built-in type (phone_number, landline, email, id_card,
	// order_no, tracking_no, amount, datetime, date, time, quantity), a
	// lookup type or a regex name.
	Type string
	// Value is the original text of the span. Invalid UTF-8 in it reads as
	// U+FFFD, as in []rune(text).
	Value string
	// Normalized is the canonical value: digits only for phone numbers,
	// "010-12345678" for landlines, a decimal string for amounts and
	// quantities, RFC 3339 for datetimes and times, "2006-01-02" for dates,
	// upper case for tracking and order numbers, the synonym's canonical
	// value for lookups, the lower-cased match for regexes.
	Normalized string
	// Start and End are rune offsets into the original text, End exclusive.
	Start, End int
	// Extractor is "rules", "regex" or "lookup".
	Extractor string
	// Confidence is 1 unless the rule is known to be ambiguous.
	Confidence float64
	// Attrs holds extra facts, or is nil: "carrier" (tracking_no),
	// "currency" (amount), "unit" (quantity), "extension" (landline),
	// "grain", "period", "modifier", "range" and "ampm" (datetime, date,
	// time).
	Attrs map[string]string
}

// Extractor finds entities in customer messages. Build it with New; it is
// immutable afterwards and safe for concurrent use.
type Extractor struct {
	loc      *time.Location
	off      map[string]bool // disabled types and extractors
	codes    []pattern       // carriers, order patterns, operator regexes
	lookup   map[rune][]lookupEntry
	synonyms map[string]string
	tab      tables
}

// cand is a candidate entity on the normalized text.
type cand struct {
	typ, norm, ext string
	start, end     int
	conf           float64
	attrs          map[string]string
	rank           int
}

// collector gathers candidates, dropping disabled types.
type collector struct {
	off   map[string]bool
	cands []cand
}

func (c *collector) add(cd cand) {
	if c.off[cd.typ] || c.off[cd.ext] {
		return
	}
	c.cands = append(c.cands, cd)
}

// Extract finds the entities in text. Relative dates and times are
// resolved against now in the configured zone (pass time.Now() when
// serving, a fixed time in tests; ID numbers must not be born after it). The result is sorted by
// Start and has no overlaps: of overlapping candidates the longer span
// wins, then the more specific type (id_card, email, tracking_no,
// order_no, phone_number, landline, datetime, date, time, amount,
// quantity, then operator regexes and lookups). It returns nil when there
// is nothing. It does no I/O and is safe for concurrent use.
func (e *Extractor) Extract(text string, now time.Time) []Entity {
	return e.ExtractNormalized(Normalize(text), text, now)
}

// ExtractNormalized is Extract for a caller that already normalized text
// (n must be Normalize(text)).
func (e *Extractor) ExtractNormalized(n Normalized, text string, now time.Time) []Entity {
	rs := n.Runes
	if len(rs) == 0 {
		return nil
	}
	c := &collector{off: e.off, cands: make([]cand, 0, 8)}
	if e.on(TypePhone) {
		scanPhones(rs, c)
	}
	if e.on(TypeLandline) {
		scanLandlines(rs, c)
	}
	if e.on(TypeEmail) && strings.IndexByte(n.Text, '@') >= 0 {
		scanEmails(rs, c)
	}
	if e.on(TypeIDCard) {
		scanIDCards(rs, now.In(e.loc), c)
	}
	if e.on(TypeAmount) || e.on(TypeQuantity) {
		e.scanMoney(rs, c)
	}
	if e.on(TypeDateTime) || e.on(TypeDate) || e.on(TypeTime) {
		e.scanDateTime(rs, now, c)
	}
	e.scanCodes(n, c)
	if !c.off[ExtractorLookup] {
		e.scanLookups(rs, c)
	}
	if len(c.cands) == 0 {
		return nil
	}
	sel := resolve(c.cands, len(rs))
	orig := []rune(text)
	out := make([]Entity, len(sel))
	for i, cd := range sel {
		s, en := n.Span(cd.start, cd.end)
		out[i] = Entity{
			Type:       cd.typ,
			Value:      string(orig[s:en]),
			Normalized: cd.norm,
			Start:      s,
			End:        en,
			Extractor:  cd.ext,
			Confidence: cd.conf,
			Attrs:      cd.attrs,
		}
	}
	return out
}

func (e *Extractor) on(typ string) bool { return !e.off[typ] }

// resolve keeps the longest, then most specific, candidates that do not
// overlap, and sorts them by start. n is the length of the text.
func resolve(cands []cand, n int) []cand {
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(
			cmp.Compare(b.end-b.start, a.end-a.start),
			cmp.Compare(a.rank, b.rank),
			cmp.Compare(a.start, b.start),
			cmp.Compare(a.typ, b.typ),
			cmp.Compare(a.norm, b.norm),
		)
	})
	sel := cands[:0:0]
	var taken []bool // runes already covered, for long texts with many candidates
	if len(cands) > 16 {
		taken = make([]bool, n)
	}
	for _, cd := range cands {
		free := true
		if taken != nil {
			for k := cd.start; k < cd.end && free; k++ {
				free = !taken[k]
			}
			if free {
				for k := cd.start; k < cd.end; k++ {
					taken[k] = true
				}
			}
		} else {
			for _, s := range sel {
				if cd.start < s.end && s.start < cd.end {
					free = false
					break
				}
			}
		}
		if free {
			sel = append(sel, cd)
		}
	}
	slices.SortFunc(sel, func(a, b cand) int { return cmp.Compare(a.start, b.start) })
	return sel
}

// scanCodes runs the carrier, order and operator patterns.
func (e *Extractor) scanCodes(n Normalized, c *collector) {
	var b2r []int32 // byte offset in n.Text -> rune index, built on first match
	digits := 0
	for i := 0; i < len(n.Text); i++ {
		if isDigit(rune(n.Text[i])) {
			digits++
		}
	}
	// ſ (long s) is the one lower-case rune that case-folds to an ASCII
	// letter, so a literal "s" in a pattern matches it: no literal
	// prefilter then.
	lits := !strings.ContainsRune(n.Text, 'ſ')
	for _, p := range e.codes {
		if c.off[p.typ] || c.off[p.ext] || digits < p.minDigits || (lits && !containsAny(n.Text, p.lits)) {
			continue
		}
		for _, m := range p.re.FindAllStringSubmatchIndex(n.Text, -1) {
			s, en := m[0], m[1]
			if p.value > 0 && m[2*p.value] >= 0 {
				s, en = m[2*p.value], m[2*p.value+1]
			}
			if s == en {
				continue
			}
			if b2r == nil {
				b2r = byteToRune(n.Text)
			}
			rs, re := int(b2r[s]), int(b2r[en])
			if !wordEdges(n.Runes, rs, re) {
				continue
			}
			cd := cand{typ: p.typ, start: rs, end: re, conf: 1, ext: p.ext, rank: p.rank}
			switch p.typ {
			case TypeTrackingNo, TypeOrderNo:
				cd.norm = strings.ToUpper(n.Text[s:en])
			default:
				cd.norm = n.Text[s:en]
			}
			if p.carrier != "" {
				cd.attrs = map[string]string{"carrier": p.carrier}
			}
			c.add(cd)
		}
	}
}

// byteToRune maps every rune-start byte offset of s (and len(s)) to its
// rune index.
func byteToRune(s string) []int32 {
	m := make([]int32, len(s)+1)
	n := int32(0)
	for b := range s {
		m[b] = n
		n++
	}
	m[len(s)] = n
	return m
}

func isLower(r rune) bool { return 'a' <= r && r <= 'z' }

// isAlnum reports an ASCII letter or digit.
func isAlnum(r rune) bool { return isDigit(r) || isLower(r) || ('A' <= r && r <= 'Z') }

// wordEdges reports whether rs[s:e] does not continue an ASCII word on
// either side: if its first (last) rune is a letter or digit, the rune
// before (after) it is not.
func wordEdges(rs []rune, s, e int) bool {
	if s > 0 && isAlnum(rs[s]) && isAlnum(rs[s-1]) {
		return false
	}
	if e < len(rs) && isAlnum(rs[e-1]) && isAlnum(rs[e]) {
		return false
	}
	return true
}

// matchAt returns the end of w if rs holds w at i, else -1.
func matchAt(rs []rune, i int, w string) int {
	j := i
	for _, r := range w {
		if j >= len(rs) || rs[j] != r {
			return -1
		}
		j++
	}
	return j
}

// runeIn reports whether rs[i] exists and is one of set.
func runeIn(rs []rune, i int, set string) bool {
	return i >= 0 && i < len(rs) && strings.ContainsRune(set, rs[i])
}

// containsAny reports whether s holds one of lits; true for nil lits.
func containsAny(s string, lits []string) bool {
	if lits == nil {
		return true
	}
	for _, l := range lits {
		if strings.Contains(s, l) {
			return true
		}
	}
	return false
}
