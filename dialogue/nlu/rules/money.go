package rules

import (
	"math"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// numberStart reports whether a number may start at rs[i]: an ASCII digit
// not continuing a word or a decimal, or a Chinese numeral not continuing
// another; never right after 第 (an ordinal).
func numberStart(rs []rune, i int) bool {
	r := rs[i]
	if i == 0 {
		return isNumeral(r)
	}
	p := rs[i-1]
	if p == '第' {
		return false
	}
	if isDigit(r) {
		if isAlnum(p) {
			return false
		}
		return !((p == '.' || p == ',') && i >= 2 && isDigit(rs[i-2]))
	}
	k, _ := classify(r)
	return k != kNone && !isNumeral(p)
}

// scanMoney finds amounts and quantities.
//
// An amount needs a currency: a unit after the number (元, 块, 块钱, 圆,
// 毛/角, 分钱, 人民币, RMB, 美元 ...), a sign or code before it (¥, ￥, $,
// RMB, 人民币), or, with confidence 0.9, a money word just before a bare
// number (金额, 价格, 退款, 运费 ...). "三块五" is 3.5 and "3元5角6分" 3.56.
// A quantity is a number and a measure word (件, 个, 箱, 公斤, kg ...).
func (e *Extractor) scanMoney(rs []rune, c *collector) {
	amounts, quantities := e.on(TypeAmount), e.on(TypeQuantity)
	for i := 0; i < len(rs); i++ {
		if amounts {
			e.prefixedAmount(rs, i, c)
		}
		half := rs[i] == '半' && (i == 0 || !isNumeral(rs[i-1]) && rs[i-1] != '一')
		if !half && !numberStart(rs, i) {
			continue
		}
		v, j, ok := 0.5, i+1, true
		if !half {
			v, j, ok = scanNumber(rs, i, numDecimal|numBig)
			if !ok {
				continue
			}
		}
		if amounts && !half {
			if end, val, cur, ok := e.moneyUnit(rs, j, v); ok {
				c.add(amountCand(i, end, val, cur, 1))
			} else if e.moneyContext(rs, i) && !unitFollows(rs, j) {
				c.add(amountCand(i, j, v, "CNY", 0.9))
			}
		}
		if quantities {
			k := j
			if k+1 < len(rs) && rs[k] == ' ' {
				k++
			}
			if w, end := matchWord(rs, k, e.tab.measures); end > 0 {
				q := v
				if !half && runeIn(rs, end, "半") && !runeIn(rs, end+1, "价") {
					q, end = q+0.5, end+1 // "一斤半"
				}
				conf := 1.0
				if w.text == "个" && rs[i] == '一' {
					conf = 0.8 // "一个" is as often "a" as "one"
				}
				c.add(cand{
					typ: TypeQuantity, norm: strconv.FormatFloat(q, 'f', -1, 64), start: i, end: end,
					conf: conf, ext: ExtractorRules, rank: builtinRank(TypeQuantity),
					attrs: map[string]string{"unit": w.text},
				})
			}
		}
	}
}

// prefixedAmount matches "¥350", "RMB 1,200", "人民币三百元" at rs[i].
func (e *Extractor) prefixedAmount(rs []rune, i int, c *collector) {
	w, j := matchWord(rs, i, e.tab.currencyPrefix)
	if j < 0 || (isAlnum(rs[i]) && i > 0 && isAlnum(rs[i-1])) {
		return
	}
	if j < len(rs) && rs[j] == ' ' {
		j++
	}
	if j >= len(rs) || !isNumeral(rs[j]) {
		return
	}
	v, k, ok := scanNumber(rs, j, numDecimal|numBig)
	if !ok {
		return
	}
	if k < len(rs) && isAlnum(rs[k]) {
		if _, end := matchWord(rs, k, e.tab.currencySuffix); end < 0 {
			return // "$5k", "rmb2x"
		}
	}
	cur := w.value
	if end, val, c2, ok := e.moneyUnit(rs, k, v); ok && c2 == cur {
		k, v = end, val
	}
	c.add(amountCand(i, k, v, cur, 1))
}

// moneyUnit matches a currency unit after a number at rs[j] (one space
// allowed) and the jiao and fen that may follow 元/块: "三块五" 3.5,
// "3元5角6分" 3.56, "两块零五" 2.05.
func (e *Extractor) moneyUnit(rs []rune, j int, v float64) (int, float64, string, bool) {
	k := j
	if k+1 < len(rs) && rs[k] == ' ' {
		k++
	}
	w, end := matchWord(rs, k, e.tab.currencySuffix)
	if end < 0 {
		return 0, 0, "", false
	}
	switch w.n {
	case 2: // 毛/角
		v /= 10
		if d, ok := smallDigit(rs, end); ok && fractionEnds(rs, end+1, "分钱") {
			v += float64(d) / 100
			end++
			if runeIn(rs, end, "分") {
				end++
			}
		}
	case 3: // 分钱
		v /= 100
	case 1: // 元/块/圆
		if d, ok := smallDigit(rs, end); ok && fractionEnds(rs, end+1, "毛角") {
			v += float64(d) / 10
			end++
			if runeIn(rs, end, "毛角") {
				end++
				if d, ok := smallDigit(rs, end); ok && fractionEnds(rs, end+1, "分钱") {
					v += float64(d) / 100
					end++
					if runeIn(rs, end, "分") {
						end++
					}
				}
			}
		} else if runeIn(rs, end, "零〇") {
			if d, ok := smallDigit(rs, end+1); ok && fractionEnds(rs, end+2, "分") {
				v += float64(d) / 100
				end += 2
				if runeIn(rs, end, "分") {
					end++
				}
			}
		}
		if runeIn(rs, end, "钱整") {
			end++
		}
	}
	if w.n == 2 && runeIn(rs, end, "钱") {
		end++
	}
	return end, v, w.value, true
}

// smallDigit reads one digit 0-9 (ASCII or Chinese) at rs[i] that is not
// part of a longer number.
func smallDigit(rs []rune, i int) (int, bool) {
	if i >= len(rs) {
		return 0, false
	}
	d := -1
	if isDigit(rs[i]) {
		d = int(rs[i] - '0')
	} else if k, v := classify(rs[i]); k == kDigit {
		d = int(v)
	}
	if d < 0 || (i+1 < len(rs) && isNumeral(rs[i+1])) {
		return 0, false
	}
	return d, true
}

// fractionEnds reports whether a jiao or fen digit may end before rs[i]:
// the text ends, a unit in units follows, or a rune that does not start a
// word ("3块5件" is 3 yuan and 5 items, not 3.5 yuan).
func fractionEnds(rs []rune, i int, units string) bool {
	if i >= len(rs) || runeIn(rs, i, units) {
		return true
	}
	r := rs[i]
	if isAlnum(r) {
		return false
	}
	if unicode.Is(unicode.Han, r) {
		return runeIn(rs, i, "的吧吗呢啊呀了哈嘛钱")
	}
	return true
}

// moneyContext reports a money word just before rs[i], allowing a few
// linking runes between ("退款是 350", "金额：350").
func (e *Extractor) moneyContext(rs []rune, i int) bool {
	k := i
	for n := 0; n < 3 && k > 0 && runeIn(rs, k-1, "是为了:： 约共计合"); n++ {
		k--
	}
	for _, w := range e.tab.moneyContext {
		n := utf8.RuneCountInString(w.text)
		if k >= n && matchAt(rs, k-n, w.text) == k {
			return true
		}
	}
	return false
}

// unitFollows reports a unit or suffix after a number that makes it
// something other than money: a measure word, a date or time unit, a
// percent sign, a decimal point.
func unitFollows(rs []rune, j int) bool {
	if j >= len(rs) {
		return false
	}
	if isAlnum(rs[j]) || runeIn(rs, j, "点时号日月年天周分秒个%度折倍岁次期楼位.件箱台斤克瓶双份包袋盒只支张套条本杯罐桶") {
		return true
	}
	return false
}

func amountCand(s, e int, v float64, cur string, conf float64) cand {
	return cand{
		typ: TypeAmount, norm: formatMoney(v), start: s, end: e, conf: conf,
		ext: ExtractorRules, rank: builtinRank(TypeAmount),
		attrs: map[string]string{"currency": cur},
	}
}

// formatMoney writes v rounded to cents without trailing zeros.
func formatMoney(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}
