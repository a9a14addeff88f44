package rules

import (
	"math"
	"strings"
)

// Kinds of numeral runes.
const (
	kNone  = iota
	kDigit // 一..九, 两 and the financial forms 壹..玖
	kZero  // 零 〇
	kSmall // 十 百 千 (拾 佰 仟)
	kBig   // 万 亿 (萬 億)
)

// classify returns the kind of a Chinese numeral rune and its value.
// ASCII digits are kNone: callers test them with isDigit.
func classify(r rune) (int, float64) {
	switch r {
	case '零', '〇':
		return kZero, 0
	case '一', '壹', '幺':
		return kDigit, 1
	case '二', '两', '贰', '貳':
		return kDigit, 2
	case '三', '叁', '參':
		return kDigit, 3
	case '四', '肆':
		return kDigit, 4
	case '五', '伍':
		return kDigit, 5
	case '六', '陆', '陸':
		return kDigit, 6
	case '七', '柒':
		return kDigit, 7
	case '八', '捌':
		return kDigit, 8
	case '九', '玖':
		return kDigit, 9
	case '十', '拾':
		return kSmall, 10
	case '百', '佰':
		return kSmall, 100
	case '千', '仟':
		return kSmall, 1000
	case '万', '萬':
		return kBig, 1e4
	case '亿', '億':
		return kBig, 1e8
	}
	return kNone, 0
}

func isDigit(r rune) bool { return '0' <= r && r <= '9' }

// isNumeral reports an ASCII digit or any Chinese numeral rune.
func isNumeral(r rune) bool {
	if isDigit(r) {
		return true
	}
	k, _ := classify(r)
	return k != kNone
}

// ParseChineseNumber reads a whole string as a number written in Chinese
// numerals, Arabic digits or a mix: "十二", "一百零五", "两千", "一万二"
// (12000: a trailing digit after a unit counts in the next lower unit),
// "3万5千", "1.5万", "1,200", "叁佰伍拾" (financial forms), and digit
// sequences such as "二〇二六" (2026). Surrounding whitespace and full-width
// digits are accepted. It reports false for anything else, including an
// empty string. It is safe for concurrent use.
func ParseChineseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	rs := []rune(s)
	for i, r := range rs {
		if r >= '０' && r <= '９' {
			rs[i] = r - '０' + '0'
		} else if r == '．' || r == '，' {
			rs[i] = r - 0xFEE0
		}
	}
	return parseNumber(rs, true)
}

// parseNumber reads all of rs as one number. allowSeq accepts sequences of
// digits without units ("二〇二六"), which only years and ParseChineseNumber
// want: in amounts "三五元" means "three to five", not 35.
func parseNumber(rs []rune, allowSeq bool) (float64, bool) {
	if len(rs) == 0 {
		return 0, false
	}
	if allowSeq {
		if v, ok := parseDigitSeq(rs); ok {
			return v, true
		}
	}
	var (
		total, sect, cur, pending float64
		hasPending                bool
		lastMult, lastSmall       float64
		zeroSince                 bool // a 零 came after the last unit
		afterUnit                 bool // pending directly follows a unit
	)
	for i := 0; i < len(rs); {
		r := rs[i]
		if isDigit(r) {
			v, n, ok := parseArabic(rs[i:])
			if !ok || hasPending {
				return 0, false
			}
			pending, hasPending = v, true
			afterUnit = lastMult > 0 && !zeroSince
			i += n
			continue
		}
		k, v := classify(r)
		switch k {
		case kDigit:
			if hasPending {
				return 0, false
			}
			pending, hasPending = v, true
			afterUnit = lastMult > 0 && !zeroSince
		case kZero:
			if hasPending {
				return 0, false
			}
			zeroSince = true
		case kSmall:
			if !hasPending {
				if v != 10 || cur != 0 {
					return 0, false
				}
				pending = 1 // "十二": an implicit one
			}
			if lastSmall != 0 && v >= lastSmall {
				return 0, false
			}
			cur += pending * v
			pending, hasPending = 0, false
			lastSmall, lastMult, zeroSince = v, v, false
		case kBig:
			if !hasPending && cur == 0 {
				return 0, false
			}
			if v == 1e4 {
				if sect != 0 {
					return 0, false
				}
				sect = (cur + pending) * 1e4
			} else {
				if total != 0 {
					return 0, false
				}
				total = (sect + cur + pending) * 1e8
				sect = 0
			}
			cur, pending, hasPending = 0, 0, false
			lastSmall, lastMult, zeroSince = 0, v, false
		default:
			return 0, false
		}
		i++
	}
	if hasPending && afterUnit && lastMult >= 100 {
		pending *= lastMult / 10
	}
	return total + sect + cur + pending, true
}

// parseDigitSeq reads two or more Chinese digits without units as a
// positional number: "二〇二六", "一二". 两 is not a positional digit.
func parseDigitSeq(rs []rune) (float64, bool) {
	if len(rs) < 2 {
		return 0, false
	}
	v := 0.0
	for _, r := range rs {
		k, d := classify(r)
		if (k != kDigit || r == '两') && k != kZero {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseArabic reads an ASCII decimal at the start of rs: digits, optional
// thousands commas (each followed by exactly three digits) and an optional
// fraction. It returns the value and the runes used.
func parseArabic(rs []rune) (float64, int, bool) {
	mant := 0.0
	frac := -1 // digits after the point, -1 before it
	i := 0
	for i < len(rs) {
		r := rs[i]
		switch {
		case isDigit(r):
			mant = mant*10 + float64(r-'0')
			if frac >= 0 {
				frac++
			}
		case r == ',' && frac < 0 && i > 0 && commaGroup(rs, i):
		case r == '.' && frac < 0 && i > 0 && i+1 < len(rs) && isDigit(rs[i+1]):
			frac = 0
		case r == ',' || r == '.':
			return 0, 0, false
		default:
			return finishArabic(mant, frac), i, true
		}
		i++
	}
	return finishArabic(mant, frac), i, true
}

func finishArabic(mant float64, frac int) float64 {
	if frac <= 0 {
		return mant
	}
	// Dividing two exact integers rounds once, so "1.15" is the closest
	// double to 1.15, as strconv would give.
	return mant / math.Pow10(frac)
}

// commaGroup reports whether the comma at rs[i] is followed by exactly
// three digits.
func commaGroup(rs []rune, i int) bool {
	if i == 0 || !isDigit(rs[i-1]) || i+3 >= len(rs) {
		return false
	}
	for k := i + 1; k <= i+3; k++ {
		if !isDigit(rs[k]) {
			return false
		}
	}
	return i+4 >= len(rs) || !isDigit(rs[i+4])
}

// Options for scanNumber.
type numOpts uint8

const (
	numDecimal numOpts = 1 << iota // Arabic fractions and thousands commas
	numBig                         // 万 and 亿
	numSeq                         // digit sequences such as 二〇二六
)

// maxNumberRunes bounds how far scanNumber looks, so a long digit run costs
// linear time and no number is absurdly long.
const maxNumberRunes = 24

// scanNumber reads the longest number starting at rs[i]. It never ends a
// number inside a run of ASCII digits. It returns the value and the end.
func scanNumber(rs []rune, i int, o numOpts) (float64, int, bool) {
	j := i
	for j < len(rs) && j-i < maxNumberRunes {
		r := rs[j]
		if isDigit(r) {
			j++
			continue
		}
		if o&numDecimal != 0 && j > i && isDigit(rs[j-1]) {
			if r == '.' && j+1 < len(rs) && isDigit(rs[j+1]) {
				j++
				continue
			}
			if r == ',' && commaGroup(rs, j) {
				j++
				continue
			}
		}
		k, _ := classify(r)
		if k == kNone || (k == kBig && o&numBig == 0) {
			break
		}
		j++
	}
	for k := j; k > i; k-- {
		if k < len(rs) && isDigit(rs[k]) && isDigit(rs[k-1]) {
			continue
		}
		if v, ok := parseNumber(rs[i:k], o&numSeq != 0); ok {
			return v, k, true
		}
	}
	return 0, i, false
}

// scanInt reads a whole number of at most 10 runes at rs[i] (no fractions,
// no 万), as dates and clock times are written.
func scanInt(rs []rune, i int, seq bool) (int, int, bool) {
	j := i
	for j < len(rs) && j-i < 10 {
		k, _ := classify(rs[j])
		if !isDigit(rs[j]) && k != kDigit && k != kZero && k != kSmall {
			break
		}
		j++
	}
	for k := j; k > i; k-- {
		if k < len(rs) && isDigit(rs[k]) && isDigit(rs[k-1]) {
			continue
		}
		if v, ok := parseNumber(rs[i:k], seq); ok && v < 1e9 {
			return int(v), k, true
		}
	}
	return 0, i, false
}
