package rules

import (
	"testing"
	"time"
)

func FuzzExtract(f *testing.F) {
	for _, s := range []string{
		"我的快递SF1234567890123到哪了",
		"明天下午三点前能送到吗",
		"退款三百五十元",
		"我的手机号是１３８１２３４５６７８",
		"（＋８６）１３８ １２３４ ５６７８",
		"座机010-12345678转123，邮箱 Zhang.San@Example.COM",
		"身份证11010519491231002X 订单号：ab12345678901",
		"中通快递单号：75312345678901 韵达4312345678901",
		"3.5万元 1,200元 ¥350 两千零五块 三块五毛五 十块钱 5kg 一斤半",
		"下周一 这周五 下个月5号 2026年3月5日 2026-03-05T15:30:00 三点一刻 十点零五分",
		"半小时后 一个半小时后 三天后 一年半后 10分钟内 下午3点到5点",
		"iPhone 15 苹果15 上海",
		"\xff\xfe\x00\u200b\u3000 ",
		"1,2,3,,4..5::6--7",
		"99999999999999999999999999999999万亿元",
		"一万亿亿亿千百十块",
		"2026-02-29 2028-02-29 2月30日 周8 25点 3点70分",
		"+86+86+86(+86)(",
		"@@@a@b.cc@",
	} {
		f.Add(s)
	}
	e, err := New(Config{
		Lookups:  map[string][]string{"product": {"iPhone 15", "小米手环"}, "city": {"上海"}},
		Synonyms: map[string]string{"苹果15": "iPhone 15"},
		Regexes:  []NamedRegex{{Name: "coupon", Pattern: `券码(?P<value>[a-z]{4}\d{4})`}, {Name: "any", Pattern: `x*`}},
	})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 2, 17, 43, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		ents := e.Extract(s, now)
		checkEntities(t, s, ents)
		for _, en := range ents {
			if en.Normalized == "" {
				t.Fatalf("empty Normalized: %+v", en)
			}
		}
	})
}
