package rules

import (
	"cmp"
	"slices"
)

// word is a table entry: the text and what it means.
type word struct {
	text  string
	rs    []rune // text as runes, filled by longestFirst
	value string // currency, period name, unit kind ...
	n     int    // an offset or flag, by table
	not   string // runes that may not follow (guards against longer words)
}

// tables holds the fixed vocabulary. It is built by New and read only, so
// the package keeps no mutable globals.
type tables struct {
	currencyPrefix []word // value: currency
	currencySuffix []word // value: currency; n: 1 main unit (元/块), 2 jiao, 3 fen
	moneyContext   []word
	measures       []word
	periods        []word // value: period name
	relDays        []word // n: day offset; value: period implied ("今晚")
	weekPrefix     []word // n: week offset
	monthPrefix    []word // n: month offset
	yearWords      []word // n: year offset
	durUnits       []word // value: unit kind
	durDirs        []word // n: +1 later, -1 earlier; value: modifier
	modifiers      []word // value: modifier
}

// longestFirst sorts a table so that the first match is the longest.
func longestFirst(ws []word) []word {
	for i := range ws {
		ws[i].rs = []rune(ws[i].text)
	}
	slices.SortStableFunc(ws, func(a, b word) int {
		return cmp.Compare(len(b.rs), len(a.rs))
	})
	return ws
}

func newTables() tables {
	return tables{
		currencyPrefix: longestFirst([]word{
			{text: "¥", value: "CNY"}, {text: "￥", value: "CNY"}, {text: "rmb", value: "CNY"},
			{text: "cny", value: "CNY"}, {text: "人民币", value: "CNY"},
			{text: "$", value: "USD"}, {text: "usd", value: "USD"}, {text: "us$", value: "USD"},
			{text: "hk$", value: "HKD"}, {text: "€", value: "EUR"},
		}),
		currencySuffix: longestFirst([]word{
			{text: "元", value: "CNY", n: 1}, {text: "块", value: "CNY", n: 1}, {text: "圆", value: "CNY", n: 1},
			{text: "块钱", value: "CNY"}, {text: "元钱", value: "CNY"}, {text: "人民币", value: "CNY"},
			{text: "rmb", value: "CNY"}, {text: "cny", value: "CNY"},
			{text: "毛", value: "CNY", n: 2}, {text: "角", value: "CNY", n: 2, not: "星形度落楼"},
			{text: "毛钱", value: "CNY", n: 2}, {text: "角钱", value: "CNY", n: 2}, {text: "分钱", value: "CNY", n: 3},
			{text: "美元", value: "USD"}, {text: "美金", value: "USD"}, {text: "usd", value: "USD"},
			{text: "港币", value: "HKD"}, {text: "港元", value: "HKD"}, {text: "欧元", value: "EUR"},
			{text: "日元", value: "JPY"},
		}),
		moneyContext: longestFirst([]word{
			{text: "金额"}, {text: "价格"}, {text: "价钱"}, {text: "售价"}, {text: "单价"}, {text: "总价"},
			{text: "原价"}, {text: "现价"}, {text: "退款"}, {text: "付款"}, {text: "支付"}, {text: "付了"},
			{text: "花了"}, {text: "运费"}, {text: "费用"}, {text: "赔偿"}, {text: "补偿"}, {text: "余额"},
			{text: "押金"}, {text: "定金"}, {text: "订金"}, {text: "尾款"}, {text: "差价"}, {text: "退了"},
			{text: "实付"}, {text: "收费"},
		}),
		measures: longestFirst([]word{
			{text: "件", not: "事"}, {text: "个", not: "月小钟星礼工人别"}, {text: "箱"}, {text: "台", not: "湾"}, {text: "斤"},
			{text: "公斤"}, {text: "千克"}, {text: "克"}, {text: "吨"}, {text: "瓶"}, {text: "双"},
			{text: "份", not: "额"}, {text: "包", not: "邮装括含"}, {text: "袋"}, {text: "盒"},
			{text: "只", not: "是有要能好"}, {text: "支", not: "付持"}, {text: "张"}, {text: "套"},
			{text: "条"}, {text: "本", not: "周月年店人"}, {text: "杯"}, {text: "罐"}, {text: "桶"},
			{text: "对", not: "不于比了"}, {text: "副", not: "本"}, {text: "部", not: "分门"}, {text: "辆"},
			{text: "把", not: "握"}, {text: "片"}, {text: "粒"}, {text: "单", not: "号元价"}, {text: "盆"},
			{text: "束"}, {text: "卷"}, {text: "枚"}, {text: "颗"}, {text: "根", not: "据本"},
			{text: "米"}, {text: "厘米"}, {text: "毫米"}, {text: "升", not: "级"}, {text: "毫升"},
			{text: "平米"}, {text: "平方米"}, {text: "位", not: "置数于"}, {text: "kg"}, {text: "ml"},
			{text: "cm"}, {text: "mm"}, {text: "pcs"},
		}),
		periods: longestFirst([]word{
			{text: "上午", value: "morning"}, {text: "早上", value: "morning"}, {text: "早晨", value: "morning"},
			{text: "清晨", value: "morning"}, {text: "清早", value: "morning"}, {text: "中午", value: "noon"},
			{text: "下午", value: "afternoon"}, {text: "傍晚", value: "evening"}, {text: "晚上", value: "evening"},
			{text: "晚间", value: "evening"}, {text: "夜里", value: "night"}, {text: "夜间", value: "night"},
			{text: "半夜", value: "night"}, {text: "深夜", value: "night"}, {text: "凌晨", value: "early_morning"},
		}),
		relDays: longestFirst([]word{
			{text: "大后天", n: 3}, {text: "后天", n: 2, not: "气"}, {text: "明天", n: 1}, {text: "明日", n: 1},
			{text: "明儿", n: 1}, {text: "今天", n: 0}, {text: "今日", n: 0}, {text: "今儿", n: 0},
			{text: "昨天", n: -1}, {text: "昨日", n: -1}, {text: "昨儿", n: -1}, {text: "前天", n: -2},
			{text: "大前天", n: -3},
			{text: "今早", value: "morning"}, {text: "今晨", value: "morning"}, {text: "今晚", value: "evening"},
			{text: "今夜", value: "night"}, {text: "明早", n: 1, value: "morning"}, {text: "明晨", n: 1, value: "morning"},
			{text: "明晚", n: 1, value: "evening"}, {text: "昨晚", n: -1, value: "evening"}, {text: "昨夜", n: -1, value: "night"},
		}),
		weekPrefix: longestFirst([]word{
			{text: "下下个", n: 2}, {text: "下下", n: 2}, {text: "下个", n: 1}, {text: "下", n: 1},
			{text: "上上个", n: -2}, {text: "上上", n: -2}, {text: "上个", n: -1}, {text: "上", n: -1},
			{text: "这个", n: 0}, {text: "这", n: 0}, {text: "本", n: 0},
		}),
		monthPrefix: longestFirst([]word{
			{text: "下个月", n: 1}, {text: "下月", n: 1}, {text: "这个月", n: 0}, {text: "这月", n: 0},
			{text: "本月", n: 0}, {text: "上个月", n: -1}, {text: "上月", n: -1},
		}),
		yearWords: longestFirst([]word{
			{text: "今年", n: 0}, {text: "明年", n: 1}, {text: "去年", n: -1}, {text: "后年", n: 2}, {text: "前年", n: -2},
		}),
		durUnits: longestFirst([]word{
			{text: "秒钟", value: "second"}, {text: "秒", value: "second"}, {text: "分钟", value: "minute"},
			{text: "刻钟", value: "quarter"}, {text: "小时", value: "hour"}, {text: "钟头", value: "hour"},
			{text: "天", value: "day"}, {text: "日", value: "day"}, {text: "星期", value: "week"},
			{text: "礼拜", value: "week"}, {text: "周", value: "week"}, {text: "月", value: "month"},
			{text: "年", value: "year"},
		}),
		durDirs: longestFirst([]word{
			{text: "以后", n: 1}, {text: "之后", n: 1}, {text: "后", n: 1}, {text: "以前", n: -1},
			{text: "之前", n: -1}, {text: "前", n: -1}, {text: "以内", n: 1, value: "within"},
			{text: "之内", n: 1, value: "within"}, {text: "内", n: 1, value: "within"},
		}),
		modifiers: longestFirst([]word{
			{text: "之前", value: "before"}, {text: "以前", value: "before"}, {text: "之后", value: "after"},
			{text: "以后", value: "after"}, {text: "左右", value: "around"}, {text: "前后", value: "around"},
			{text: "前", value: "before", not: "台面往来续天边门方期端者排头果年"},
			{text: "后", value: "after", not: "台面往来续天边门方期端者排头果悔年"},
		}),
	}
}

// matchWord returns the first (longest) entry of ws at rs[i] whose guard
// holds, and its end; -1 when none does.
func matchWord(rs []rune, i int, ws []word) (word, int) {
	if i < 0 || i >= len(rs) {
		return word{}, -1
	}
	for _, w := range ws {
		j := i + len(w.rs)
		if w.rs[0] != rs[i] || j > len(rs) || !slices.Equal(rs[i:j], w.rs) {
			continue
		}
		if w.not != "" && runeIn(rs, j, w.not) {
			continue
		}
		if isAlnum(w.rs[len(w.rs)-1]) && j < len(rs) && isAlnum(rs[j]) {
			continue // "kg" in "kgs", "usd" in "usdt"
		}
		return w, j
	}
	return word{}, -1
}
