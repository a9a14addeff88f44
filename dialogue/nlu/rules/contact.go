package rules

import (
	"strings"
	"time"
)

// groups is up to four digit runs separated by single separators.
type groups struct {
	n    int
	s, e [4]int
}

func (g groups) len(k int) int { return g.e[k] - g.s[k] }

// digitGroups reads up to four runs of ASCII digits from rs[i], each next
// run separated from the previous by exactly one rune of seps.
func digitGroups(rs []rune, i int, seps string) groups {
	var g groups
	k := i
	for g.n < len(g.s) {
		j := k
		for j < len(rs) && isDigit(rs[j]) {
			j++
		}
		if j == k {
			break
		}
		g.s[g.n], g.e[g.n] = k, j
		g.n++
		if j+1 < len(rs) && strings.ContainsRune(seps, rs[j]) && isDigit(rs[j+1]) {
			k = j + 1
			continue
		}
		break
	}
	return g
}

// appendDigits appends the ASCII digits of rs[s:e] to b.
func appendDigits(b []byte, rs []rune, s, e int) []byte {
	for _, r := range rs[s:e] {
		if isDigit(r) {
			b = append(b, byte(r))
		}
	}
	return b
}

// scanPhones finds mainland mobile numbers: 1[3-9] and nine more digits,
// ungrouped or grouped with spaces or dashes ("138 1234 5678"), optionally
// after +86, (+86), (86) or 0086. A number inside a longer digit run, or
// that runs into letters, is not one.
func scanPhones(rs []rune, c *collector) {
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if (r != '1' && r != '+' && r != '(' && r != '0') || (i > 0 && isAlnum(rs[i-1])) {
			continue
		}
		k := i
		prefixed := false
		for _, p := range [...]string{"(+86)", "(86)", "+86", "0086"} {
			if j := matchAt(rs, i, p); j > 0 {
				k, prefixed = j, true
				break
			}
		}
		if prefixed && k < len(rs) && (rs[k] == ' ' || rs[k] == '-') {
			k++
		}
		if k+1 >= len(rs) || rs[k] != '1' || rs[k+1] < '3' || rs[k+1] > '9' {
			continue
		}
		g := digitGroups(rs, k, " -")
		sum := 0
		for n := 0; n < g.n; n++ {
			l := g.len(n)
			if l < 3 {
				break
			}
			sum += l
			if sum > 11 {
				break
			}
			if sum < 11 {
				continue
			}
			end := g.e[n]
			grouped := n > 0
			switch {
			case end < len(rs) && isAlnum(rs[end]):
			case grouped && n+1 < g.n:
				// "6222 1381 2345 6789": part of a longer grouped number.
			case grouped && !prefixed && i >= 2 && (rs[i-1] == ' ' || rs[i-1] == '-') && isDigit(rs[i-2]):
			default:
				b := make([]byte, 0, 11)
				c.add(cand{typ: TypePhone, norm: string(appendDigits(b, rs, k, end)), start: i, end: end, conf: 1, ext: ExtractorRules, rank: builtinRank(TypePhone)})
			}
			break
		}
	}
}

// scanLandlines finds fixed-line numbers: an area code (010, 02x or a
// four-digit 0xxx) and a 7-8 digit local number, with a dash or space
// between, the area code in brackets, or run together; and 400/800 service
// numbers. Normalized: "010-12345678", "400-1234567". An extension
// ("转123", "-123", "分机123", "ext123") is part of the span and goes to
// Attrs["extension"].
func scanLandlines(rs []rune, c *collector) {
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if (r != '0' && r != '(' && r != '4' && r != '8') || (i > 0 && isAlnum(rs[i-1])) {
			continue
		}
		area, localS, localE, ok := matchLandline(rs, i)
		if !ok {
			continue
		}
		end := localE
		if end < len(rs) && isAlnum(rs[end]) {
			continue
		}
		b := make([]byte, 0, 16)
		b = append(b, area...)
		b = append(b, '-')
		b = appendDigits(b, rs, localS, localE)
		cd := cand{typ: TypeLandline, norm: string(b), start: i, end: end, conf: 1, ext: ExtractorRules, rank: builtinRank(TypeLandline)}
		if xs, xe, ok := extension(rs, end); ok {
			cd.end = xe
			cd.attrs = map[string]string{"extension": string(rs[xs:xe])}
		}
		c.add(cd)
	}
}

// matchLandline matches a landline at rs[i] and returns the area code
// digits and the rune range of the local number (which may hold one
// separator).
func matchLandline(rs []rune, i int) (area string, s, e int, ok bool) {
	if rs[i] == '(' {
		j := i + 1
		for j < len(rs) && isDigit(rs[j]) {
			j++
		}
		if j >= len(rs) || rs[j] != ')' || !validArea(rs[i+1:j]) {
			return "", 0, 0, false
		}
		k := j + 1
		if k < len(rs) && (rs[k] == ' ' || rs[k] == '-') {
			k++
		}
		s, e, ok := localNumber(rs, k)
		return string(rs[i+1 : j]), s, e, ok
	}
	g := digitGroups(rs, i, " -")
	if g.n == 0 {
		return "", 0, 0, false
	}
	g0 := g.len(0)
	if rs[i] == '4' || rs[i] == '8' {
		// 400/800: ten digits in at most three groups of at least three.
		if matchAt(rs, i, "400") < 0 && matchAt(rs, i, "800") < 0 {
			return "", 0, 0, false
		}
		sum := 0
		for n := 0; n < g.n && n < 3; n++ {
			if g.len(n) < 3 {
				return "", 0, 0, false
			}
			sum += g.len(n)
			if sum == 10 {
				if n+1 < g.n && rs[g.e[n]] == ' ' {
					// "400 123 4567 8": a longer spaced number.
					return "", 0, 0, false
				}
				return string(rs[i : i+3]), i + 3, g.e[n], true
			}
		}
		return "", 0, 0, false
	}
	if g0 >= 10 && g0 <= 12 {
		a := 4
		if rs[i+1] == '1' || rs[i+1] == '2' {
			a = 3
		}
		if l := g0 - a; (l != 7 && l != 8) || !validArea(rs[i:i+a]) || rs[i+a] == '0' {
			return "", 0, 0, false
		}
		return string(rs[i : i+a]), i + a, g.e[0], true
	}
	if (g0 == 3 || g0 == 4) && g.n >= 2 && validArea(rs[i:g.e[0]]) {
		s, e, ok := localNumber(rs, g.s[1])
		return string(rs[i:g.e[0]]), s, e, ok
	}
	return "", 0, 0, false
}

// validArea reports a mainland area code: 010, 020-029 or 0[3-9]xx.
func validArea(a []rune) bool {
	for _, r := range a {
		if !isDigit(r) {
			return false
		}
	}
	switch len(a) {
	case 3:
		return a[0] == '0' && ((a[1] == '1' && a[2] == '0') || a[1] == '2')
	case 4:
		return a[0] == '0' && a[1] >= '3'
	}
	return false
}

// localNumber matches a 7-8 digit local number at rs[k], whole or as
// "1234 5678" / "123-4567", not starting with 0.
func localNumber(rs []rune, k int) (int, int, bool) {
	g := digitGroups(rs, k, " -")
	if g.n == 0 || rs[k] == '0' {
		return 0, 0, false
	}
	if l := g.len(0); l == 7 || l == 8 {
		return k, g.e[0], true
	}
	if g.n >= 2 && (g.len(0) == 3 || g.len(0) == 4) && g.len(1) == 4 {
		return k, g.e[1], true
	}
	return 0, 0, false
}

// extension matches "转123", "-123", "分机123" or "ext123" at rs[k] and
// returns the digits' range and the end of the extension.
func extension(rs []rune, k int) (int, int, bool) {
	j := k
	if j < len(rs) && rs[j] == ' ' {
		j++
	}
	switch {
	case j < len(rs) && rs[j] == '转':
		j++
	case matchAt(rs, j, "分机") > 0:
		j += 2
	case matchAt(rs, j, "ext") > 0:
		j += 3
		if j < len(rs) && rs[j] == '.' {
			j++
		}
	case j == k && j < len(rs) && rs[j] == '-':
		j++
	default:
		return 0, 0, false
	}
	if j < len(rs) && rs[j] == ' ' {
		j++
	}
	s := j
	for j < len(rs) && isDigit(rs[j]) && j-s < 7 {
		j++
	}
	if n := j - s; n < 1 || n > 6 || (j < len(rs) && isAlnum(rs[j])) {
		return 0, 0, false
	}
	return s, j, true
}

// scanEmails finds e-mail addresses around each '@'. The text is already
// lower-cased, so Normalized is the matched text.
func scanEmails(rs []rune, c *collector) {
	for a, r := range rs {
		if r != '@' {
			continue
		}
		s := a
		for s > 0 && isLocalRune(rs[s-1]) {
			s--
		}
		for s < a && rs[s] == '.' {
			s++
		}
		if s == a || a-s > 64 {
			continue
		}
		e := a + 1
		for e < len(rs) && (isLower(rs[e]) || isDigit(rs[e]) || rs[e] == '.' || rs[e] == '-') {
			e++
		}
		for e > a+1 && (rs[e-1] == '.' || rs[e-1] == '-') {
			e--
		}
		if !validDomain(rs[a+1 : e]) {
			continue
		}
		c.add(cand{typ: TypeEmail, norm: string(rs[s:e]), start: s, end: e, conf: 1, ext: ExtractorRules, rank: builtinRank(TypeEmail)})
	}
}

func isLocalRune(r rune) bool {
	return isLower(r) || isDigit(r) || strings.ContainsRune("._%+-", r)
}

// validDomain wants at least two non-empty labels and a top-level label of
// two or more letters.
func validDomain(d []rune) bool {
	dots, label, letters := 0, 0, true
	for _, r := range d {
		if r == '.' {
			if label == 0 {
				return false
			}
			dots++
			label, letters = 0, true
			continue
		}
		label++
		letters = letters && isLower(r)
	}
	return dots > 0 && label >= 2 && letters
}

// scanIDCards finds 18-character mainland resident ID numbers whose
// province, birth date (from 1900, not after now unless now is zero) and
// ISO 7064 MOD 11-2 check character are valid. Normalized has an
// upper-case X.
func scanIDCards(rs []rune, now time.Time, c *collector) {
	for i := 0; i+18 <= len(rs); i++ {
		if !isDigit(rs[i]) || (i > 0 && isAlnum(rs[i-1])) {
			continue
		}
		j := i
		for j < i+17 && isDigit(rs[j]) {
			j++
		}
		if j < i+17 {
			i = j
			continue
		}
		if last := rs[i+17]; (!isDigit(last) && last != 'x') || (i+18 < len(rs) && isAlnum(rs[i+18])) {
			continue
		}
		if !validID(rs[i:i+18], now) {
			continue
		}
		norm := strings.ToUpper(string(rs[i : i+18]))
		c.add(cand{typ: TypeIDCard, norm: norm, start: i, end: i + 18, conf: 1, ext: ExtractorRules, rank: builtinRank(TypeIDCard)})
	}
}

// validID checks an 18-rune ID number (17 digits and a digit or 'x').
func validID(id []rune, now time.Time) bool {
	d := func(k int) int { return int(id[k] - '0') }
	switch p := d(0)*10 + d(1); {
	case p >= 11 && p <= 15, p >= 21 && p <= 23, p >= 31 && p <= 37, p >= 41 && p <= 46,
		p >= 50 && p <= 54, p >= 61 && p <= 65, p == 71, p == 81, p == 82:
	default:
		return false
	}
	y := d(6)*1000 + d(7)*100 + d(8)*10 + d(9)
	m := d(10)*10 + d(11)
	day := d(12)*10 + d(13)
	if y < 1900 || m < 1 || m > 12 || day < 1 {
		return false
	}
	birth := time.Date(y, time.Month(m), day, 0, 0, 0, 0, now.Location())
	if birth.Day() != day || (!now.IsZero() && birth.After(now)) {
		return false
	}
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for k, w := range weights {
		sum += d(k) * w
	}
	return rune("10x98765432"[sum%11]) == id[17]
}
