package rules

import (
	"math"
	"time"
)

// dtHit is a date or time expression found at some start.
type dtHit struct {
	typ       string
	start     int // set for range ends only
	end       int
	day       time.Time // the day a clock time was put on
	clock     bool      // a clock time was read
	cl        clock     // the clock time of a time without a date
	rng       string    // "start" or "end" of a time range
	t         time.Time
	grain     string
	period    string
	modifier  string
	ambiguous bool
	conf      float64
}

// clock is a time of day as written.
type clock struct {
	h, m, s int
	grain   string
	end     int
	weakOne bool // a bare Chinese "一点", more often "a little" than 1 o'clock
}

// scanDateTime finds dates, times and datetimes, resolved against now in
// the configured zone:
//
//   - relative days 今天 明天 后天 大后天 昨天 前天 (今晚, 明早 ...), weeks
//     (周三 is the next Wednesday on or after today; 这周五/本周五 this
//     Monday-based week's, 下周一 next week's, 上周五 last week's; 周末 is
//     Saturday), months (下个月5号, 本月20日), years (明年3月5号);
//   - absolute dates 2026年3月5日, 二〇二六年三月五日, 2026-03-05, 2026/3/5;
//     a month and day without a year is the next one on or after today, a
//     bare day (5号) the next such day of a month;
//   - times of day: 三点, 3点半, 三点一刻, 十点零五分, 15:30, 15:30:45, with a
//     period before them (上午 下午 晚上 中午 凌晨 ...) that moves the hour;
//     a time alone is its next occurrence (today, or tomorrow if past; with
//     no period, 1-11 o'clock may also be the afternoon hour);
//   - 24:00 and 24点 are the next midnight;
//   - a following 前/之前/以后/左右 goes to Attrs["modifier"] (before,
//     after, around);
//   - ranges (三点到五点, 下午3点至晚上8点, 9:00-18:00) give two entities with
//     Attrs["range"] start and end; the end takes the day and period of the
//     start, and a range without a date is the earliest one whose end has
//     not passed;
//   - durations from now: 半小时后, 两个小时后, 一个半小时后, 三天后, 10分钟内
//     (modifier "within"), 两周前.
//
// A date alone is type date ("2026-11-23"), a time alone type time and a
// date with a time, or a duration, type datetime; both as RFC 3339 in the
// zone. Attrs["grain"] is day, hour, minute, second (or week, month, year
// for durations). A date with a clock time but no period, at 1-11 o'clock,
// keeps the hour as written with Attrs["ampm"]="ambiguous" and confidence
// 0.8; a bare day (5号) has confidence 0.9.
func (e *Extractor) scanDateTime(rs []rune, now time.Time, c *collector) {
	now = now.In(e.loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, e.loc)
	for i := 0; i < len(rs); {
		if !dtStart(rs, i) {
			i++
			continue
		}
		h, ok := e.parseDateTime(rs, i, now, today)
		if !ok {
			i++
			continue
		}
		to, ok := e.rangeEnd(rs, h, now)
		if ok {
			if h.typ == TypeTime {
				e.fitRange(rs, &h, &to, now, today)
			}
			h.rng = "start"
		}
		c.add(h.cand(i))
		i = h.end
		if ok {
			c.add(to.cand(to.start))
			i = to.end
		}
	}
}

func (h dtHit) cand(start int) cand {
	attrs := map[string]string{"grain": h.grain}
	if h.period != "" {
		attrs["period"] = h.period
	}
	if h.modifier != "" {
		attrs["modifier"] = h.modifier
	}
	if h.ambiguous {
		attrs["ampm"] = "ambiguous"
	}
	if h.rng != "" {
		attrs["range"] = h.rng
	}
	norm := h.t.Format(time.RFC3339)
	if h.typ == TypeDate {
		norm = h.t.Format(time.DateOnly)
	}
	return cand{typ: h.typ, norm: norm, start: start, end: h.end, conf: h.conf, attrs: attrs, ext: ExtractorRules, rank: builtinRank(h.typ)}
}

// rangeEnd reads the end of a time range after a clock time: "三点到五点",
// "9:00-10:00", "下午3点至晚上8点". The end takes the day and period of the
// start unless it names its own; both get Attrs["range"] (start, end).
func (e *Extractor) rangeEnd(rs []rune, from dtHit, now time.Time) (dtHit, bool) {
	if !from.clock || from.modifier != "" || !runeIn(rs, from.end, "到至-~～") {
		return dtHit{}, false
	}
	k := from.end + 1
	if runeIn(rs, k, " ") {
		k++
	}
	start := k
	period := from.period
	if w, pe := matchWord(rs, k, e.tab.periods); pe > 0 {
		period, k = w.value, pe
	}
	cl, ok := parseClock(rs, k)
	if !ok {
		return dtHit{}, false
	}
	t, _ := resolveClock(from.day, cl, period, now, false)
	if t.Before(from.t) && period == "" && cl.h >= 1 && cl.h <= 11 {
		t = t.Add(12 * time.Hour)
	}
	if t.Before(from.t) {
		t = t.AddDate(0, 0, 1)
	}
	to := dtHit{typ: from.typ, start: start, end: cl.end, t: t, grain: cl.grain, period: period, conf: 1, rng: "end"}
	to.modifier, to.end = e.modifier(rs, to.end)
	return to, true
}

// fitRange re-resolves a range of times without a date as a whole: the
// earliest start whose end has not passed, preferring ranges shorter than
// 18 hours ("工作时间9:00-18:00" at 10:00 is today 9:00 to 18:00, not 21:00
// to 18:00 the next day).
func (e *Extractor) fitRange(rs []rune, from, to *dtHit, now, today time.Time) {
	for pass := 0; pass < 2; pass++ {
		for d := 0; d < 2; d++ {
			day := today.AddDate(0, 0, d)
			first, _ := resolveClock(day, from.cl, from.period, now, false)
			starts := [2]time.Time{first, first}
			n := 1
			if from.period == "" && from.cl.h >= 1 && from.cl.h <= 11 {
				starts[1], n = first.Add(12*time.Hour), 2
			}
			for _, st := range starts[:n] {
				f := *from
				f.t, f.day = st, day
				t2, ok := e.rangeEnd(rs, f, now)
				if !ok || t2.t.Before(truncate(now, t2.grain)) || (pass == 0 && t2.t.Sub(st) > 18*time.Hour) {
					continue
				}
				*from, *to = f, t2
				return
			}
		}
	}
}

// dtStart reports whether a date or time expression may start at rs[i].
func dtStart(rs []rune, i int) bool {
	r := rs[i]
	var p rune
	if i > 0 {
		p = rs[i-1]
	}
	if p == '第' || p == '年' {
		// An ordinal, or the month after a year that did not make a date
		// ("明年2月29号"): not a start of its own.
		return false
	}
	if isDigit(r) {
		return !isAlnum(p) && p != '.' && p != ':'
	}
	if k, _ := classify(r); k != kNone {
		return !isNumeral(p)
	}
	switch r {
	case '今', '明', '后', '大', '昨', '前', '下', '上', '这', '本', '周', '星', '礼', '去',
		'早', '中', '晚', '凌', '傍', '夜', '半', '深', '清':
		return true
	}
	return false
}

func (e *Extractor) parseDateTime(rs []rune, i int, now, today time.Time) (dtHit, bool) {
	if h, ok := e.parseDuration(rs, i, now); ok {
		return h, true
	}
	if d, j, dPeriod, conf, iso, ok := e.parseDate(rs, i, today); ok {
		h := dtHit{typ: TypeDate, end: j, t: d, grain: "day", period: dPeriod, conf: conf}
		k := j
		if h.period == "" {
			kk := k
			if runeIn(rs, kk, " ") {
				kk++
			}
			if w, pe := matchWord(rs, kk, e.tab.periods); pe > 0 {
				h.period, k, h.end = w.value, pe, pe
			}
		}
		kk := k
		if runeIn(rs, kk, " ") || (iso && runeIn(rs, kk, "t")) {
			kk++
		}
		if cl, ok := parseClock(rs, kk); ok {
			h.typ, h.end, h.grain, h.conf = TypeDateTime, cl.end, cl.grain, 1
			h.t, h.ambiguous = resolveClock(d, cl, h.period, now, d.Equal(today))
			h.day, h.clock = d, true
			if h.ambiguous {
				h.conf = 0.8
			}
		}
		h.modifier, h.end = e.modifier(rs, h.end)
		return h, true
	}
	k := i
	period := ""
	if w, pe := matchWord(rs, i, e.tab.periods); pe > 0 {
		period, k = w.value, pe
	}
	cl, ok := parseClock(rs, k)
	if !ok || (period == "" && cl.weakOne) {
		return dtHit{}, false
	}
	h := dtHit{typ: TypeTime, end: cl.end, grain: cl.grain, period: period, conf: 1, day: today, clock: true, cl: cl}
	h.t, _ = resolveClock(today, cl, period, now, true)
	if h.t.Before(truncate(now, cl.grain)) {
		h.day = today.AddDate(0, 0, 1)
		h.t, _ = resolveClock(h.day, cl, period, now, false)
	}
	h.modifier, h.end = e.modifier(rs, h.end)
	return h, true
}

// modifier reads 之前, 以后, 左右 ... at rs[k].
func (e *Extractor) modifier(rs []rune, k int) (string, int) {
	if w, end := matchWord(rs, k, e.tab.modifiers); end > 0 {
		return w.value, end
	}
	return "", k
}

// truncate cuts t to the start of its grain.
func truncate(t time.Time, grain string) time.Time {
	switch grain {
	case "hour":
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, t.Location())
	case "minute":
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, t.Location())
	}
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, t.Location())
}

// resolveClock puts a clock time on day d. With a period the hour moves
// (下午三点 is 15:00, 晚上十二点 the next midnight). Without one, 1-11
// o'clock is ambiguous: on today (pickNext) the first of h and h+12 that
// has not passed is taken; on other days h is kept and reported ambiguous.
func resolveClock(d time.Time, cl clock, period string, now time.Time, pickNext bool) (time.Time, bool) {
	at := func(h, dayShift int) time.Time {
		return time.Date(d.Year(), d.Month(), d.Day()+dayShift, h, cl.m, cl.s, 0, d.Location())
	}
	h := cl.h
	if h == 24 {
		return at(0, 1), false // 24:00 is the end of the day
	}
	switch period {
	case "morning":
		return at(h, 0), false
	case "noon":
		if h >= 1 && h <= 5 {
			h += 12
		}
		return at(h, 0), false
	case "afternoon":
		if h < 12 {
			h += 12
		}
		return at(h, 0), false
	case "evening":
		switch {
		case h >= 5 && h <= 11:
			return at(h+12, 0), false
		case h == 12:
			return at(0, 1), false
		case h < 5:
			return at(h, 1), false
		}
		return at(h, 0), false
	case "night":
		switch {
		case h >= 6 && h <= 11:
			return at(h+12, 0), false
		case h == 12:
			return at(0, 1), false
		case h < 6:
			return at(h, 1), false
		}
		return at(h, 0), false
	case "early_morning":
		if h == 12 {
			h = 0
		}
		return at(h, 0), false
	}
	if h < 1 || h > 11 {
		return at(h, 0), false
	}
	if pickNext {
		floor := truncate(now, cl.grain)
		for _, hh := range [2]int{h, h + 12} {
			if t := at(hh, 0); !t.Before(floor) {
				return t, false
			}
		}
		return at(h, 0), false
	}
	return at(h, 0), true
}

// parseClock reads a time of day at rs[k]: "15:30", "15:30:45", or an hour
// with 点/时 and optional minutes (半, 一刻, 三刻, 整, 五分, 三十, 零五) and
// seconds.
func parseClock(rs []rune, k int) (clock, bool) {
	if k >= len(rs) {
		return clock{}, false
	}
	if isDigit(rs[k]) {
		if cl, ok := colonClock(rs, k); ok {
			return cl, true
		}
	}
	h, j, ok := scanInt(rs, k, false)
	if !ok || j >= len(rs) || h > 24 {
		return clock{}, false
	}
	arabic := isDigit(rs[k])
	marker := rs[j]
	if marker != '点' && marker != '點' && marker != '时' {
		return clock{}, false
	}
	j++
	cl := clock{h: h, grain: "hour"}
	fen := false // minutes written with 分
	zhong := runeIn(rs, j, "钟")
	if zhong {
		j++
	}
	if !zhong && j < len(rs) {
		switch {
		case rs[j] == '半':
			cl.m, cl.grain = 30, "minute"
			j++
		case rs[j] == '整':
			j++
		case runeIn(rs, j, "一1") && runeIn(rs, j+1, "刻"):
			cl.m, cl.grain = 15, "minute"
			j += 2
		case runeIn(rs, j, "三3") && runeIn(rs, j+1, "刻"):
			cl.m, cl.grain = 45, "minute"
			j += 2
		default:
			m, mj, ok := scanInt(rs, j, false)
			if !ok || m > 59 {
				break
			}
			if runeIn(rs, mj, "分") && !runeIn(rs, mj+1, "钟") {
				cl.m, cl.grain, fen = m, "minute", true
				j = mj + 1
				if s, sj, ok := scanInt(rs, j, false); ok && s < 60 && runeIn(rs, sj, "秒") {
					cl.s, cl.grain = s, "second"
					j = sj + 1
				}
			} else if bareMinutes(rs[j:mj], m) && !runeIn(rs, mj, "分秒块元个件号月年天") {
				cl.m, cl.grain = m, "minute"
				j = mj
			}
		}
	}
	if h == 24 && cl.m != 0 {
		return clock{}, false
	}
	if marker == '时' && !arabic && !fen {
		return clock{}, false // 一时, 一时半会: only "3时" or "十时五分"
	}
	if cl.grain == "hour" && !zhong && runeIn(rs, j, "儿水赞击评数") {
		return clock{}, false // 一点儿, 三点水
	}
	cl.end = j
	cl.weakOne = !arabic && h == 1 && cl.grain == "hour" && !zhong
	return cl, true
}

// bareMinutes reports minutes written without 分 that cannot be read as
// anything else: two ASCII digits ("3点05"), or Chinese from ten up or
// with a leading 零 ("三点十五", "十点零五").
func bareMinutes(m []rune, v int) bool {
	if isDigit(m[0]) {
		return len(m) == 2 && isDigit(m[1])
	}
	return v >= 10 || m[0] == '零' || m[0] == '〇'
}

// colonClock reads "H:MM" or "H:MM:SS".
func colonClock(rs []rune, k int) (clock, bool) {
	two := func(i int) (int, bool) {
		if i+1 >= len(rs) || !isDigit(rs[i]) || !isDigit(rs[i+1]) {
			return 0, false
		}
		return int(rs[i]-'0')*10 + int(rs[i+1]-'0'), true
	}
	j := k
	for j < len(rs) && isDigit(rs[j]) {
		j++
	}
	if j-k > 2 || !runeIn(rs, j, ":") {
		return clock{}, false
	}
	h := 0
	for _, r := range rs[k:j] {
		h = h*10 + int(r-'0')
	}
	m, ok := two(j + 1)
	if !ok || h > 24 || m > 59 || (h == 24 && m != 0) {
		return clock{}, false
	}
	cl := clock{h: h, m: m, grain: "minute", end: j + 3}
	if runeIn(rs, cl.end, ":") {
		s, ok := two(cl.end + 1)
		if !ok || s > 59 || (h == 24 && s != 0) {
			return clock{}, false
		}
		cl.s, cl.grain, cl.end = s, "second", cl.end+3
	}
	if cl.end < len(rs) && (isDigit(rs[cl.end]) || rs[cl.end] == ':') {
		return clock{}, false
	}
	return cl, true
}

// parseDate reads a date at rs[i]. It returns the day, the end, a period
// implied by the word (今晚), the confidence and whether it was an ISO
// date (which may be followed by 'T').
func (e *Extractor) parseDate(rs []rune, i int, today time.Time) (d time.Time, end int, period string, conf float64, iso bool, ok bool) {
	if d, end, ok := isoDate(rs, i, today.Location()); ok {
		return d, end, "", 1, true, true
	}
	// Year, then month and day.
	year, k := 0, -1
	if w, j := matchWord(rs, i, e.tab.yearWords); j > 0 {
		year, k = today.Year()+w.n, j
	} else if y, j, ok := scanInt(rs, i, true); ok && runeIn(rs, j, "年") && y >= 1900 && y <= 2200 {
		year, k = y, j+1
	}
	if k > 0 {
		if m, dd, j, ok := monthDay(rs, k); ok {
			if d, ok := mkDate(year, m, dd, today.Location()); ok {
				return d, j, "", 1, false, true
			}
		}
		return time.Time{}, 0, "", 0, false, false
	}
	// Day of this, next or last month.
	if w, j := matchWord(rs, i, e.tab.monthPrefix); j > 0 {
		if dd, j, ok := dayOfMonth(rs, j); ok {
			first := time.Date(today.Year(), today.Month()+time.Month(w.n), 1, 0, 0, 0, 0, today.Location())
			if d, ok := mkDate(first.Year(), int(first.Month()), dd, today.Location()); ok {
				return d, j, "", 1, false, true
			}
		}
		return time.Time{}, 0, "", 0, false, false
	}
	// Month and day: the next such date on or after today.
	if m, dd, j, ok := monthDay(rs, i); ok {
		for y := today.Year(); y <= today.Year()+8; y++ {
			if d, ok := mkDate(y, m, dd, today.Location()); ok && !d.Before(today) {
				return d, j, "", 1, false, true
			}
		}
		return time.Time{}, 0, "", 0, false, false
	}
	// 今天, 明天, 后天 ...
	if w, j := matchWord(rs, i, e.tab.relDays); j > 0 && relDayOK(rs, i, w.text) {
		return today.AddDate(0, 0, w.n), j, w.value, 1, false, true
	}
	if d, j, ok := e.weekday(rs, i, today); ok {
		return d, j, "", 1, false, true
	}
	// A bare day: the next such day of a month.
	if dd, j, ok := dayOfMonth(rs, i); ok && !runeIn(rs, i-1, "第月路街道巷弄村区里院楼栋座排") &&
		!runeIn(rs, j, "楼线门床店机窗柜台位房桌厅院馆口仓库码车道室座球键本元常子期志记程用语") {
		for n := 0; n <= 12; n++ {
			first := time.Date(today.Year(), today.Month()+time.Month(n), 1, 0, 0, 0, 0, today.Location())
			if d, ok := mkDate(first.Year(), int(first.Month()), dd, today.Location()); ok && !d.Before(today) {
				return d, j, "", 0.9, false, true
			}
		}
	}
	return time.Time{}, 0, "", 0, false, false
}

// relDayOK rejects 后天/前天 that are the tail of another word: 之后天气,
// 以前天天, 明后天 (one of two days).
func relDayOK(rs []rune, i int, w string) bool {
	if w != "后天" && w != "前天" {
		return true
	}
	return !runeIn(rs, i-1, "之以然最往向此其落今先日午提从早明")
}

// isoDate reads 2026-03-05, 2026/3/5 or 2026.3.5.
func isoDate(rs []rune, i int, loc *time.Location) (time.Time, int, bool) {
	num := func(k, maxLen int) (int, int) {
		v, j := 0, k
		for j < len(rs) && isDigit(rs[j]) && j-k < maxLen+1 {
			v = v*10 + int(rs[j]-'0')
			j++
		}
		if j == k || j-k > maxLen {
			return -1, k
		}
		return v, j
	}
	y, j := num(i, 4)
	if y < 0 || j-i != 4 || !runeIn(rs, j, "-/.") {
		return time.Time{}, 0, false
	}
	sep := rs[j]
	m, k := num(j+1, 2)
	if m < 0 || !runeIn(rs, k, string(sep)) {
		return time.Time{}, 0, false
	}
	d, end := num(k+1, 2)
	if d < 0 || (end < len(rs) && (isDigit(rs[end]) || rs[end] == sep)) {
		return time.Time{}, 0, false
	}
	t, ok := mkDate(y, m, d, loc)
	return t, end, ok
}

// monthDay reads M月D日 or M月D号.
func monthDay(rs []rune, i int) (m, d, end int, ok bool) {
	m, j, ok := scanInt(rs, i, false)
	if !ok || m < 1 || m > 12 || !runeIn(rs, j, "月") {
		return 0, 0, 0, false
	}
	d, end, ok = dayOfMonth(rs, j+1)
	return m, d, end, ok
}

// dayOfMonth reads D日 or D号 with D in 1..31.
func dayOfMonth(rs []rune, i int) (int, int, bool) {
	d, j, ok := scanInt(rs, i, false)
	if !ok || d < 1 || d > 31 || !runeIn(rs, j, "日号號") {
		return 0, 0, false
	}
	return d, j + 1, true
}

// mkDate builds a date, rejecting days the month does not have.
func mkDate(y, m, d int, loc *time.Location) (time.Time, bool) {
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, loc)
	return t, t.Day() == d && int(t.Month()) == m
}

// weekday reads [下|这|本|上...](周|星期|礼拜)(一..日|天|末|1-7).
func (e *Extractor) weekday(rs []rune, i int, today time.Time) (time.Time, int, bool) {
	k, off, explicit := i, 0, false
	if w, j := matchWord(rs, i, e.tab.weekPrefix); j > 0 {
		k, off, explicit = j, w.n, true
	}
	j := -1
	for _, ww := range [...]string{"星期", "礼拜", "周"} {
		if j = matchAt(rs, k, ww); j > 0 {
			break
		}
	}
	if j < 0 || j >= len(rs) || (!explicit && runeIn(rs, i-1, "每")) {
		return time.Time{}, 0, false
	}
	wd := 0
	switch r := rs[j]; r {
	case '一', '二', '三', '四', '五', '六':
		_, v := classify(r)
		wd = int(v)
	case '日', '天', '七':
		wd = 7
	case '末':
		wd = 6
	default:
		if r < '1' || r > '7' || runeIn(rs, j+1, "0123456789") {
			return time.Time{}, 0, false
		}
		wd = int(r - '0')
	}
	todayWd := (int(today.Weekday())+6)%7 + 1 // Monday 1 .. Sunday 7
	if explicit {
		monday := today.AddDate(0, 0, 1-todayWd)
		return monday.AddDate(0, 0, 7*off+wd-1), j + 1, true
	}
	return today.AddDate(0, 0, (wd-todayWd+7)%7), j + 1, true
}

// parseDuration reads a span of time from now: 半小时后, 两个小时后,
// 一个半小时后, 1.5小时后, 三天后, 10分钟内, 两周前.
func (e *Extractor) parseDuration(rs []rune, i int, now time.Time) (dtHit, bool) {
	k := i
	amt := 0.0
	half := rs[k] == '半'
	if half {
		amt, k = 0.5, k+1
	} else {
		v, j, ok := scanNumber(rs, k, numDecimal)
		if !ok {
			return dtHit{}, false
		}
		amt, k = v, j
		if runeIn(rs, k, " ") && isDigit(rs[k-1]) {
			k++
		}
	}
	ge := runeIn(rs, k, "个")
	if ge {
		k++
	}
	if !half && runeIn(rs, k, "半") {
		amt, k = amt+0.5, k+1
	}
	u, j := matchWord(rs, k, e.tab.durUnits)
	if j < 0 || (u.value == "month" && !ge) || amt <= 0 || amt > 1e5 {
		return dtHit{}, false
	}
	if !half && amt == math.Trunc(amt) && runeIn(rs, j, "半") {
		amt, j = amt+0.5, j+1 // "一年半后", "一天半"
	}
	dir, end := matchWord(rs, j, e.tab.durDirs)
	if end < 0 {
		return dtHit{}, false
	}
	sign := float64(dir.n)
	whole, frac := math.Modf(amt)
	var t time.Time
	grain := u.value
	switch u.value {
	case "second", "minute", "quarter", "hour":
		unit := time.Second
		switch u.value {
		case "minute":
			unit = time.Minute
		case "quarter":
			unit = 15 * time.Minute
		case "hour":
			unit = time.Hour
		}
		t = now.Add(time.Duration(sign * amt * float64(unit)))
		if u.value == "quarter" || (u.value == "hour" && frac != 0) {
			grain = "minute"
		}
	case "day", "week":
		days := amt
		if u.value == "week" {
			days *= 7
		}
		whole, frac := math.Modf(days)
		t = now.AddDate(0, 0, int(sign*whole)).Add(time.Duration(sign * frac * float64(24*time.Hour)))
		if frac != 0 {
			grain = "hour"
		}
	case "month":
		t = now.AddDate(0, int(sign*whole), 0)
		if frac != 0 {
			t = t.AddDate(0, 0, int(sign*math.Round(frac*30)))
			grain = "day"
		}
	case "year":
		t = now.AddDate(int(sign*whole), int(sign*math.Round(frac*12)), 0)
		if frac != 0 {
			grain = "month"
		}
	}
	return dtHit{typ: TypeDateTime, end: end, t: t, grain: grain, modifier: dir.value, conf: 1}, true
}
