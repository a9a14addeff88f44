package rules

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNow is Sunday 2026-11-22 10:17:43 in Shanghai.
var testNow = time.Date(2026, 11, 22, 2, 17, 43, 0, time.UTC)

func mustNew(t testing.TB, cfg Config) *Extractor {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// summary writes entities as "type:value=normalized".
func summary(ents []Entity) []string {
	out := make([]string, 0, len(ents))
	for _, en := range ents {
		out = append(out, en.Type+":"+en.Value+"="+en.Normalized)
	}
	return out
}

type extractCase struct {
	text string
	want []string // summary of every entity found, in order
}

func runCases(t *testing.T, e *Extractor, cases []extractCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			ents := e.Extract(tc.text, testNow)
			checkEntities(t, tc.text, ents)
			got := summary(ents)
			if strings.Join(got, " | ") != strings.Join(tc.want, " | ") {
				t.Errorf("Extract(%q)\n got  %q\n want %q", tc.text, got, tc.want)
			}
		})
	}
}

// checkEntities asserts what every Extract result must hold.
func checkEntities(t testing.TB, text string, ents []Entity) {
	t.Helper()
	orig := []rune(text)
	prevEnd := 0
	for i, en := range ents {
		if en.Start < 0 || en.End > len(orig) || en.Start >= en.End {
			t.Fatalf("entity %d %+v: span out of bounds (text has %d runes)", i, en, len(orig))
		}
		if en.Start < prevEnd {
			t.Fatalf("entity %d %+v overlaps or is out of order (previous end %d)", i, en, prevEnd)
		}
		prevEnd = en.End
		if want := string(orig[en.Start:en.End]); en.Value != want {
			t.Fatalf("entity %d: Value %q, original text of the span is %q", i, en.Value, want)
		}
		if en.Type == "" || en.Extractor == "" || en.Confidence <= 0 || en.Confidence > 1 {
			t.Fatalf("entity %d incomplete: %+v", i, en)
		}
	}
}

func TestPhone(t *testing.T) {
	runCases(t, mustNew(t, Config{}), []extractCase{
		{"我的手机号是13812345678", []string{"phone_number:13812345678=13812345678"}},
		{"电话+86 138 1234 5678谢谢", []string{"phone_number:+86 138 1234 5678=13812345678"}},
		{"+8613812345678", []string{"phone_number:+8613812345678=13812345678"}},
		{"(+86)13812345678", []string{"phone_number:(+86)13812345678=13812345678"}},
		{"（＋８６）１３８１２３４５６７８", []string{"phone_number:（＋８６）１３８１２３４５６７８=13812345678"}},
		{"0086-13812345678", []string{"phone_number:0086-13812345678=13812345678"}},
		{"打138-1234-5678找我", []string{"phone_number:138-1234-5678=13812345678"}},
		{"联系 159 8765 4321", []string{"phone_number:159 8765 4321=15987654321"}},
		{"tel:19912345678,", []string{"phone_number:19912345678=19912345678"}},
		{"13812345678 2件", []string{"phone_number:13812345678=13812345678", "quantity:2件=2"}},
		// Not phone numbers.
		{"12812345678", nil},  // second digit 2
		{"138123456789", nil}, // twelve digits
		{"订单338123456789012", []string{"order_no:338123456789012=338123456789012"}}, // inside a longer run
		{"卡号6222 1381 2345 6789", nil},                                              // a group of a longer grouped number
		{"abc13812345678", nil},                                                     // runs into letters
		{"13812345678abc", nil},                                                     // runs into letters
		{"1381234567", nil},                                                         // ten digits
		{"138 12 345678", nil},                                                      // odd grouping
	})
}

func TestLandline(t *testing.T) {
	e := mustNew(t, Config{})
	runCases(t, e, []extractCase{
		{"座机010-12345678", []string{"landline:010-12345678=010-12345678"}},
		{"座机010-12345678转123", []string{"landline:010-12345678转123=010-12345678"}},
		{"010-12345678-8001", []string{"landline:010-12345678-8001=010-12345678"}},
		{"(010)12345678", []string{"landline:(010)12345678=010-12345678"}},
		{"（０２１）６２３４５６７８", []string{"landline:（０２１）６２３４５６７８=021-62345678"}},
		{"0755-8888 6666", []string{"landline:0755-8888 6666=0755-88886666"}},
		{"0755 88886666", []string{"landline:0755 88886666=0755-88886666"}},
		{"075588886666", []string{"landline:075588886666=0755-88886666"}},
		{"01012345678", []string{"landline:01012345678=010-12345678"}},
		{"0571-8765432", []string{"landline:0571-8765432=0571-8765432"}},
		{"客服400-123-4567", []string{"landline:400-123-4567=400-1234567"}},
		{"8008208820", []string{"landline:8008208820=800-8208820"}},
		{"400 1234 567", []string{"landline:400 1234 567=400-1234567"}},
		{"分机 021-62345678 分机 8001", []string{"landline:021-62345678 分机 8001=021-62345678"}},
		// Not landlines.
		{"0012345678", nil},     // area code 00
		{"010-0234567", nil},    // local number starts with 0
		{"010-123456", nil},     // local number too short
		{"0755-123456789", nil}, // too long
		{"0301234567", nil},     // 030 is not an area code and 0301 + 6 digits is too short
	})
	ents := e.Extract("电话010-12345678转123", testNow)
	if len(ents) != 1 || ents[0].Attrs["extension"] != "123" {
		t.Errorf("extension: %+v", ents)
	}
}

func TestEmail(t *testing.T) {
	runCases(t, mustNew(t, Config{}), []extractCase{
		{"邮箱 Zhang.San@Example.COM 谢谢", []string{"email:Zhang.San@Example.COM=zhang.san@example.com"}},
		{"发到ｔｅｓｔ＠ｑｑ．ｃｏｍ吧", []string{"email:ｔｅｓｔ＠ｑｑ．ｃｏｍ=test@qq.com"}},
		{"13812345678@qq.com", []string{"email:13812345678@qq.com=13812345678@qq.com"}},
		{"我的邮箱是a_b+c@mail.example.cn。", []string{"email:a_b+c@mail.example.cn=a_b+c@mail.example.cn"}},
		{"x@y.z", nil},
		{"@qq.com", nil},
		{"foo@bar", nil},
		{"foo@.com", nil},
		{"foo@bar..com", nil},
		{"价格@100元", []string{"amount:100元=100"}},
	})
}

func TestIDCard(t *testing.T) {
	runCases(t, mustNew(t, Config{}), []extractCase{
		{"身份证11010519491231002X", []string{"id_card:11010519491231002X=11010519491231002X"}},
		{"身份证号11010519491231002x。", []string{"id_card:11010519491231002x=11010519491231002X"}},
		{"310115198510124564", []string{"id_card:310115198510124564=310115198510124564"}},
		{"证件 44030419900307123X 请核对", []string{"id_card:44030419900307123X=44030419900307123X"}},
		{"510107200002297896", []string{"id_card:510107200002297896=510107200002297896"}}, // 2000-02-29
		{"身份证：１１０１０５１９４９１２３１００２Ｘ", []string{"id_card:１１０１０５１９４９１２３１００２Ｘ=11010519491231002X"}},
		// A phone number inside an ID number is not a phone number.
		{"我的身份证是310115198510124564", []string{"id_card:310115198510124564=310115198510124564"}},
		// Bad checksum: not an ID; the digit run is an order-like number.
		{"310115198510124565", []string{"order_no:310115198510124565=310115198510124565"}},
		// Birth date in the future, bad province, impossible date.
		{"440304203001011232", []string{"order_no:440304203001011232=440304203001011232"}},
		{"990105194912310021", []string{"order_no:990105194912310021=990105194912310021"}},
		{"11010519491331002X", nil},
		{"A11010519491231002X", nil},
		{"11010519491231002XY", nil},
	})
}

func TestTrackingNo(t *testing.T) {
	e := mustNew(t, Config{})
	runCases(t, e, []extractCase{
		{"我的快递SF1234567890123到哪了", []string{"tracking_no:SF1234567890123=SF1234567890123"}},
		{"顺丰单号sf123456789012", []string{"tracking_no:sf123456789012=SF123456789012"}},
		{"ＳＦ１２３４５６７８９０１２３", []string{"tracking_no:ＳＦ１２３４５６７８９０１２３=SF1234567890123"}},
		{"YT1234567890123", []string{"tracking_no:YT1234567890123=YT1234567890123"}},
		{"圆通 1234567890", []string{"tracking_no:1234567890=1234567890"}},
		{"中通快递单号：75312345678901", []string{"tracking_no:75312345678901=75312345678901"}},
		{"中通 753123456789", []string{"tracking_no:753123456789=753123456789"}},
		{"申通773012345678901", []string{"tracking_no:773012345678901=773012345678901"}},
		{"韵达4312345678901", []string{"tracking_no:4312345678901=4312345678901"}},
		{"京东JDVA12345678901", []string{"tracking_no:JDVA12345678901=JDVA12345678901"}},
		{"JD0012345678901", []string{"tracking_no:JD0012345678901=JD0012345678901"}},
		{"EMS单号EA123456789CN", []string{"tracking_no:EA123456789CN=EA123456789CN"}},
		{"邮政 1234567890123", []string{"tracking_no:1234567890123=1234567890123"}},
		{"极兔JT1234567890123", []string{"tracking_no:JT1234567890123=JT1234567890123"}},
		// Too long, too short, glued to letters, bare digits without a carrier.
		{"SF12345678901234", nil},
		{"SF123456789", nil},
		{"SF1234567890", []string{"tracking_no:SF1234567890=SF1234567890"}},
		{"XSF1234567890123", nil},
		{"中通 7531234567890", nil},
		{"75312345678901", nil},
	})
	ents := e.Extract("中通75312345678901", testNow)
	if len(ents) != 1 || ents[0].Attrs["carrier"] != "ZTO" {
		t.Errorf("carrier attr: %+v", ents)
	}
}

func TestOrderNo(t *testing.T) {
	runCases(t, mustNew(t, Config{}), []extractCase{
		{"订单号2026112212345678", []string{"order_no:2026112212345678=2026112212345678"}},
		{"订单号：ab12345678901", []string{"order_no:ab12345678901=AB12345678901"}},
		{"订单编号 DD20261122001", []string{"order_no:DD20261122001=DD20261122001"}},
		{"订单号：SO-2026-000123 有问题", []string{"order_no:SO-2026-000123=SO-2026-000123"}},
		{"我的订单 1234567890 还没发货", []string{"order_no:1234567890=1234567890"}},
		{"4200001234567890123456 这个单", nil},                                             // 22 digits: too long for a bare run
		{"单号 4200001234567890", []string{"order_no:4200001234567890=4200001234567890"}}, // bare 16
		// With 订单号 context, eleven digits are an order number, not a phone.
		{"订单号13812345678", []string{"order_no:13812345678=13812345678"}},
		// A phone number alone is never an order number.
		{"13812345678", []string{"phone_number:13812345678=13812345678"}},
		{"订单号abcdefghijkl", nil},
		{"订单123", nil},
	})
}

func TestAmount(t *testing.T) {
	e := mustNew(t, Config{})
	runCases(t, e, []extractCase{
		{"退款三百五十元", []string{"amount:三百五十元=350"}},
		{"一共350元", []string{"amount:350元=350"}},
		{"¥350", []string{"amount:¥350=350"}},
		{"￥ 99.9", []string{"amount:￥ 99.9=99.9"}},
		{"350.5块", []string{"amount:350.5块=350.5"}},
		{"1,200元", []string{"amount:1,200元=1200"}},
		{"3.5万元", []string{"amount:3.5万元=35000"}},
		{"两千零五块", []string{"amount:两千零五块=2005"}},
		{"三块五", []string{"amount:三块五=3.5"}},
		{"三块五毛钱", []string{"amount:三块五毛钱=3.5"}},
		{"3元5角6分", []string{"amount:3元5角6分=3.56"}},
		{"两块零五", []string{"amount:两块零五=2.05"}},
		{"十块钱", []string{"amount:十块钱=10"}},
		{"五毛钱", []string{"amount:五毛钱=0.5"}},
		{"五分钱", []string{"amount:五分钱=0.05"}},
		{"壹佰元整", []string{"amount:壹佰元整=100"}},
		{"一千二百万元", []string{"amount:一千二百万元=12000000"}},
		{"人民币350元", []string{"amount:人民币350元=350"}},
		{"RMB 1,200", []string{"amount:RMB 1,200=1200"}},
		{"350rmb", []string{"amount:350rmb=350"}},
		{"$20", []string{"amount:$20=20"}},
		{"100美元", []string{"amount:100美元=100"}},
		{"三块五的那个", []string{"amount:三块五=3.5"}},
		// A money word before a bare number: confidence 0.9.
		{"退款一万二", []string{"amount:一万二=12000"}},
		{"运费是12", []string{"amount:12=12"}},
		{"价格：99", []string{"amount:99=99"}},
		{"金额3.5万", []string{"amount:3.5万=35000"}},
		// Bare numbers are not amounts.
		{"我要350", nil},
		{"3块5件", []string{"amount:3块=3", "quantity:5件=5"}},
		{"退款3件", []string{"quantity:3件=3"}},
		{"八角星", nil},
		{"$5k", nil},
		{"第二件半价", nil},
	})
	for _, tc := range []struct {
		text, currency string
		conf           float64
	}{
		{"350元", "CNY", 1}, {"$20", "USD", 1}, {"20港币", "HKD", 1}, {"退款350", "CNY", 0.9},
	} {
		ents := e.Extract(tc.text, testNow)
		if len(ents) != 1 || ents[0].Attrs["currency"] != tc.currency || ents[0].Confidence != tc.conf {
			t.Errorf("%s: %+v, want currency %s confidence %v", tc.text, ents, tc.currency, tc.conf)
		}
	}
}

func TestQuantity(t *testing.T) {
	e := mustNew(t, Config{})
	runCases(t, e, []extractCase{
		{"两件", []string{"quantity:两件=2"}},
		{"我买了3件，一共299元", []string{"quantity:3件=3", "amount:299元=299"}},
		{"十二瓶", []string{"quantity:十二瓶=12"}},
		{"5kg", []string{"quantity:5kg=5"}},
		{"1.5 公斤", []string{"quantity:1.5 公斤=1.5"}},
		{"一斤半", []string{"quantity:一斤半=1.5"}},
		{"半箱", []string{"quantity:半箱=0.5"}},
		{"要两双鞋", []string{"quantity:两双=2"}},
		{"3 pcs", []string{"quantity:3 pcs=3"}},
		// Not quantities.
		{"第二件", nil},
		{"两个小时", nil},
		{"一个月", nil},
		{"3kgs", nil},
		{"一只是", nil},
		{"包邮吗", nil},
		{"一部分", nil},
		{"住在3号楼2单元", nil},
		{"少了一个配件", []string{"quantity:一个=1"}},
	})
	ents := e.Extract("我要两件", testNow)
	if len(ents) != 1 || ents[0].Attrs["unit"] != "件" {
		t.Errorf("unit attr: %+v", ents)
	}
	ents = e.Extract("我有一个问题", testNow)
	if len(ents) != 1 || ents[0].Confidence != 0.8 {
		t.Errorf("一个: %+v, want one quantity with confidence 0.8", ents)
	}
}

func TestOffsetsFullWidth(t *testing.T) {
	e := mustNew(t, Config{})
	text := "我的手机号是１３８１２３４５６７８"
	ents := e.Extract(text, testNow)
	if len(ents) != 1 {
		t.Fatalf("got %+v", ents)
	}
	en := ents[0]
	if en.Type != TypePhone || en.Start != 6 || en.End != 17 || en.Normalized != "13812345678" || en.Value != "１３８１２３４５６７８" {
		t.Errorf("got %+v", en)
	}
	// Collapsed whitespace and removed characters before the entity shift
	// nothing in the original offsets.
	text = "\u3000\u3000你好 \t 订单号\u200b：ＡＢ１２３４５６７８９０１　谢谢"
	ents = e.Extract(text, testNow)
	if len(ents) != 1 {
		t.Fatalf("got %+v", ents)
	}
	rs := []rune(text)
	if got := string(rs[ents[0].Start:ents[0].End]); got != "ＡＢ１２３４５６７８９０１" || ents[0].Normalized != "AB12345678901" {
		t.Errorf("span %q normalized %q", got, ents[0].Normalized)
	}
}

func TestOverlapResolution(t *testing.T) {
	e := mustNew(t, Config{
		Lookups: map[string][]string{"product": {"两件套", "SF"}},
		Regexes: []NamedRegex{{Name: "member_id", Pattern: `\d{11}`}},
	})
	runCases(t, e, []extractCase{
		// Longer span wins: the lookup over the quantity.
		{"买两件套", []string{"product:两件套=两件套"}},
		// Equal spans: the built-in phone number over the operator regex.
		{"13812345678", []string{"phone_number:13812345678=13812345678"}},
		// The tracking number over the lookup inside it.
		{"SF1234567890123", []string{"tracking_no:SF1234567890123=SF1234567890123"}},
		// The e-mail address over the phone number in it.
		{"13812345678@qq.com", []string{"email:13812345678@qq.com=13812345678@qq.com"}},
		// Valid ID over the bare order number of the same span.
		{"11010519491231002X", []string{"id_card:11010519491231002X=11010519491231002X"}},
		// The regex where nothing built-in matches.
		{"会员 00012345678", []string{"member_id:00012345678=00012345678"}},
	})
}

func TestLookupsAndSynonyms(t *testing.T) {
	e := mustNew(t, Config{
		Lookups: map[string][]string{
			"product": {"iPhone 15", "iPhone 15 Pro", "小米手环", "手环"},
			"city":    {"上海", "北京"},
		},
		Synonyms: map[string]string{"苹果15": "iPhone 15", "IPHONE15": "iPhone 15", "帝都": "北京"},
	})
	runCases(t, e, []extractCase{
		{"我想买ＩＰＨＯＮＥ  15 pro", []string{"product:ＩＰＨＯＮＥ  15 pro=iPhone 15 Pro"}},
		{"iphone 15坏了", []string{"product:iphone 15=iPhone 15"}},
		{"苹果15和小米手环", []string{"product:苹果15=iPhone 15", "product:小米手环=小米手环"}},
		{"iphone15", []string{"product:iphone15=iPhone 15"}},
		{"寄到上海", []string{"city:上海=上海"}},
		{"帝都", []string{"city:帝都=北京"}},
		{"iphone 150", nil}, // does not end at a word edge
		{"myiphone 15", nil},
	})
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"苹果15", "iPhone 15", true},
		{" iPhone15 ", "iPhone 15", true},
		{"ＩＰＨＯＮＥ１５", "iPhone 15", true},
		{"华为", "华为", false},
	} {
		got, ok := e.Canonical(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Canonical(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	ents := e.Extract("苹果15", testNow)
	if len(ents) != 1 || ents[0].Extractor != ExtractorLookup {
		t.Errorf("extractor: %+v", ents)
	}
}

func TestRegexes(t *testing.T) {
	e := mustNew(t, Config{
		Regexes: []NamedRegex{
			{Name: "coupon", Pattern: `券码(?P<value>[A-Z]{4}\d{4})`},
			{Name: "sku", Pattern: `SKU-\d+`},
		},
	})
	runCases(t, e, []extractCase{
		{"券码ABCD1234能用吗", []string{"coupon:ABCD1234=abcd1234"}},
		{"券码ａｂｃｄ１２３４", []string{"coupon:ａｂｃｄ１２３４=abcd1234"}},
		{"sku-778 没货", []string{"sku:sku-778=sku-778"}},
		{"xsku-778", nil},
	})
	ents := e.Extract("SKU-1", testNow)
	if len(ents) != 1 || ents[0].Extractor != ExtractorRegex {
		t.Errorf("extractor: %+v", ents)
	}
}

func TestCarrierConfig(t *testing.T) {
	e := mustNew(t, Config{
		Carriers:      map[string]string{"SF": "", "DBL": `DPK\d{12}`, "JD": `JD\d{13}`},
		OrderPatterns: []string{},
	})
	runCases(t, e, []extractCase{
		{"SF1234567890123", nil}, // removed
		{"DPK123456789012", []string{"tracking_no:DPK123456789012=DPK123456789012"}}, // added
		{"JDVA12345678901", nil}, // replaced
		{"JD1234567890123", []string{"tracking_no:JD1234567890123=JD1234567890123"}},
		{"订单号2026112212345678", nil}, // order patterns replaced by none
	})
}

func TestDisable(t *testing.T) {
	e := mustNew(t, Config{
		Disable: []string{TypePhone, TypeTime, "lookup"},
		Lookups: map[string][]string{"city": {"上海"}},
	})
	runCases(t, e, []extractCase{
		{"13812345678", nil},
		{"三点", nil},
		{"明天三点", []string{"datetime:明天三点=2026-11-23T03:00:00+08:00"}},
		{"上海", nil},
		{"两件", []string{"quantity:两件=2"}},
	})
	e = mustNew(t, Config{Disable: []string{"city"}, Lookups: map[string][]string{"city": {"上海"}, "brand": {"小米"}}})
	runCases(t, e, []extractCase{{"上海小米", []string{"brand:小米=小米"}}})
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"time zone", Config{TimeZone: "Mars/Olympus"}, "time_zone"},
		{"carrier pattern", Config{Carriers: map[string]string{"XX": "("}}, `carriers["XX"]`},
		{"empty carrier code", Config{Carriers: map[string]string{" ": `\d`}}, "carriers"},
		{"order pattern", Config{OrderPatterns: []string{`\d+`, "[a-"}}, "order_patterns[1]"},
		{"empty order pattern", Config{OrderPatterns: []string{""}}, "order_patterns[0]"},
		{"regex pattern", Config{Regexes: []NamedRegex{{Name: "x", Pattern: "a)(b"}}}, "regexes[0] (x)"},
		{"regex name", Config{Regexes: []NamedRegex{{Pattern: "a"}}}, "regexes[0]: name"},
		{"regex empty pattern", Config{Regexes: []NamedRegex{{Name: "x"}}}, "regexes[0] (x): pattern"},
		{"lookup value", Config{Lookups: map[string][]string{"city": {"上海", " \u3000"}}}, `lookups["city"][1]`},
		{"lookup type", Config{Lookups: map[string][]string{"": {"上海"}}}, "lookups: empty entity type"},
		{"synonym variant", Config{Synonyms: map[string]string{"\u200b": "x"}}, "synonyms"},
		{"synonym canonical", Config{Synonyms: map[string]string{"x": " "}}, `synonyms["x"]`},
		{"disable", Config{Disable: []string{"phone"}}, `disable[0]: unknown type "phone"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error does not wrap ErrInvalidConfig: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
		})
	}
	// Valid configurations.
	for _, cfg := range []Config{
		{},
		{TimeZone: "UTC"},
		{TimeZone: "America/New_York", Disable: []string{"regex", TypeDate}},
		{Regexes: []NamedRegex{{Name: "x", Pattern: `(?s)a.b`}}, Disable: []string{"x"}},
	} {
		if _, err := New(cfg); err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
	}
}

func TestDefaultsAreCopies(t *testing.T) {
	c := DefaultCarriers()
	c["SF"] = "changed"
	if DefaultCarriers()["SF"] == "changed" {
		t.Error("DefaultCarriers returns shared state")
	}
	o := DefaultOrderPatterns()
	o[0] = "changed"
	if DefaultOrderPatterns()[0] == "changed" {
		t.Error("DefaultOrderPatterns returns shared state")
	}
	// Every default compiles and has a prefilter that does not hide its
	// own examples.
	e := mustNew(t, Config{})
	if len(e.codes) != len(DefaultCarriers())+len(DefaultOrderPatterns()) {
		t.Errorf("%d patterns compiled", len(e.codes))
	}
}

func TestRequiredLiterals(t *testing.T) {
	tests := []struct {
		pattern string
		lits    []string
		digits  int
	}{
		{`SF\d{12,13}`, []string{"sf"}, 12},
		{`YT\d{13}|圆通[^0-9a-z]{0,8}(?P<value>\d{10})`, []string{"yt", "圆通"}, 10},
		{`\d{16,20}`, nil, 16},
		{`a?\d*`, nil, 0},
		{`(?:ab|c)d+`, []string{"ab", "c"}, 0},
		{`x(?:ab|)`, []string{"x"}, 0},
		{`[0-9a-z]{3}`, nil, 0},
		{`[0-9]+(12)`, []string{"12"}, 3},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(p.lits) != fmt.Sprint(tt.lits) || p.minDigits != tt.digits {
			t.Errorf("%s: lits %q digits %d, want %q %d", tt.pattern, p.lits, p.minDigits, tt.lits, tt.digits)
		}
	}
}

func TestPrefilterKeepsFoldedMatches(t *testing.T) {
	// (?i)SF matches the long s; the literal prefilter must not hide it.
	e := mustNew(t, Config{})
	if got := summary(e.Extract("ſf1234567890123", testNow)); len(got) != 1 || got[0] != "tracking_no:ſf1234567890123=SF1234567890123" {
		t.Errorf("got %q", got)
	}
}

func TestExtractEmpty(t *testing.T) {
	e := mustNew(t, Config{})
	for _, s := range []string{"", "   ", "\x00", "你好，请问在吗？", "hello"} {
		if ents := e.Extract(s, testNow); ents != nil {
			t.Errorf("Extract(%q) = %+v, want nil", s, ents)
		}
	}
}

func TestExtractConcurrent(t *testing.T) {
	e := mustNew(t, Config{Lookups: map[string][]string{"city": {"上海"}}})
	texts := []string{"明天下午三点前能送到吗", "退款三百五十元", "我的快递SF1234567890123到哪了", "寄到上海13812345678"}
	want := make([][]string, len(texts))
	for i, s := range texts {
		want[i] = summary(e.Extract(s, testNow))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(texts))
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i, s := range texts {
				if got := summary(e.Extract(s, testNow)); strings.Join(got, "|") != strings.Join(want[i], "|") {
					errs <- fmt.Sprintf("%s: %q != %q", s, got, want[i])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestAttrsNotShared(t *testing.T) {
	e := mustNew(t, Config{})
	a := e.Extract("SF1234567890123", testNow)
	maps.DeleteFunc(a[0].Attrs, func(string, string) bool { return true })
	b := e.Extract("SF1234567890123", testNow)
	if b[0].Attrs["carrier"] != "SF" {
		t.Error("Attrs are shared between calls")
	}
}
