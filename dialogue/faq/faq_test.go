package faq

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// shopFAQ is a realistic e-commerce FAQ, several variants per entry.
func shopFAQ() []Entry {
	return []Entry{
		{ID: "shipping_fee", Intent: "shipping_fee", Questions: []string{"运费怎么算", "包邮吗", "邮费多少钱", "满多少包邮", "偏远地区运费多少"}, Answer: "单笔订单满99元包邮，不满收取8元运费；新疆、西藏等偏远地区另计。"},
		{ID: "ship_time", Intent: "delivery_time", Questions: []string{"多久能发货", "什么时候发货", "下单后几天发货", "发货时间是多久"}, Answer: "现货商品付款后48小时内发货，预售商品以商品页时间为准。"},
		{ID: "arrival_time", Intent: "delivery_time", Questions: []string{"几天能到", "快递多久能送到", "一般几天送达", "发货后多久收到"}, Answer: "发货后江浙沪一般1-2天送达，其他地区2-4天。"},
		{ID: "return_policy", Intent: "return_goods", Questions: []string{"怎么退货", "支持七天无理由退货吗", "退货流程是什么", "可以退货吗", "退货运费谁承担"}, Answer: "签收后7天内可申请无理由退货，在「我的订单」点击「申请售后」即可。"},
		{ID: "refund_time", Intent: "refund_status", Questions: []string{"退款多久到账", "退款什么时候到", "钱什么时候退回来", "退款一直没到账怎么办"}, Answer: "退款审核通过后原路退回，一般1-3个工作日到账。"},
		{ID: "invoice", Intent: "invoice", Questions: []string{"能开发票吗", "怎么开发票", "发票抬头怎么填", "可以开增值税专用发票吗"}, Answer: "可以开具电子普通发票和增值税专用发票，下单时填写抬头和税号即可。"},
		{ID: "change_address", Intent: "change_address", Questions: []string{"怎么修改收货地址", "地址填错了怎么办", "下单后能改地址吗"}, Answer: "订单发货前可以在订单详情里修改收货地址，发货后请联系快递员。"},
		{ID: "payment", Intent: "payment", Questions: []string{"支持哪些支付方式", "可以用信用卡付款吗", "能货到付款吗", "支持花呗分期吗"}, Answer: "支持微信、支付宝、银联卡和花呗分期，暂不支持货到付款。"},
		{ID: "warranty", Intent: "warranty", Questions: []string{"保修多久", "东西坏了怎么保修", "售后维修电话是多少"}, Answer: "电器类商品全国联保一年，可拨打400-123-4567报修。"},
		{ID: "coupon", Intent: "coupon", Questions: []string{"优惠券怎么用", "优惠券为什么用不了", "在哪里领优惠券"}, Answer: "优惠券在结算页自动抵扣，请检查是否满足使用门槛和有效期。"},
		{ID: "membership", Intent: "membership", Questions: []string{"会员有什么权益", "怎么成为会员", "积分怎么用"}, Answer: "累计消费满500元自动成为会员，享95折和积分抵现。"},
		{ID: "size", Intent: "size", Questions: []string{"尺码怎么选", "衣服偏大还是偏小", "有尺码表吗"}, Answer: "商品详情页有尺码表，按平时尺码选择即可，介于两码之间建议选大一码。"},
		{ID: "cancel", Intent: "cancel_order", Questions: []string{"怎么取消订单", "下错单了能取消吗", "订单可以撤销吗"}, Answer: "未发货的订单可以在订单详情里直接取消，款项原路退回。"},
		{ID: "service_hours", Intent: "contact", Questions: []string{"客服工作时间", "人工客服几点上班", "客服几点下班"}, Answer: "人工客服每天9:00-22:00在线。"},
		{ID: "exchange", Intent: "exchange", Questions: []string{"可以换货吗", "尺码不合适能换吗", "换货流程是什么"}, Answer: "签收后15天内可申请换货，在「申请售后」里选择换货。"},
	}
}

func TestSearchParaphrases(t *testing.T) {
	x := Build(shopFAQ())
	for _, tc := range []struct {
		text, want string
	}{
		{"请问你们包不包邮啊", "shipping_fee"},
		{"我买的东西运费是多少", "shipping_fee"},
		{"下单之后大概多久发货？", "ship_time"},
		{"退货的话要怎么操作", "return_policy"},
		{"退款要多久才能到账", "refund_time"},
		{"我想开个发票", "invoice"},
		{"收货地址写错了可以改吗", "change_address"},
		{"可以用花呗付款吗", "payment"},
		{"优惠券用不了是怎么回事", "coupon"},
		{"衣服尺码不知道怎么选", "size"},
		{"我想取消这个订单", "cancel"},
		{"你们客服几点下班", "service_hours"},
		{"尺码小了能换吗", "exchange"},
		{"快递几天能送到我这", "arrival_time"},
		{"ＶＩＰ会员有什么权益", "membership"},
		{"东西坏了，怎么保修？", "warranty"},
	} {
		t.Run(tc.text, func(t *testing.T) {
			h, ok := x.Search(tc.text, "")
			if !ok {
				t.Fatalf("no hit")
			}
			if h.Entry.ID != tc.want {
				t.Fatalf("hit %s (%q, %.3f), want %s", h.Entry.ID, h.Question, h.Score, tc.want)
			}
			if h.Score < 0.45 {
				t.Errorf("score %.3f below the default threshold 0.45 (%q)", h.Score, h.Question)
			}
			t.Logf("%s %.3f %q", h.Entry.ID, h.Score, h.Question)
		})
	}
}

func TestSearchExact(t *testing.T) {
	x := Build(shopFAQ())
	for _, text := range []string{"包邮吗", "包邮吗？", " 包邮 吗 ", "包邮吗!!", "怎么开发票"} {
		h, ok := x.Search(text, "")
		if !ok || h.Score != 1 {
			t.Fatalf("Search(%q) = %+v %v, want score 1", text, h, ok)
		}
	}
	h, _ := x.Search("ＶＩＰ", "")
	if h.Entry != nil && h.Score == 1 {
		t.Fatalf("unexpected exact hit %+v", h)
	}
}

func TestSearchUnrelated(t *testing.T) {
	x := Build(shopFAQ())
	for _, text := range []string{
		"今天天气怎么样",
		"给我讲个笑话",
		"你是机器人吗",
		"hello world",
		"我喜欢吃苹果",
		"周末一起去爬山吧",
		"北京到上海的高铁票",
		"1234567890",
	} {
		h, ok := x.Search(text, "")
		if ok && h.Score >= 0.3 {
			t.Errorf("Search(%q) = %s %.3f (%q), want < 0.3", text, h.Entry.ID, h.Score, h.Question)
		}
		if ok {
			t.Logf("%q → %s %.3f", text, h.Entry.ID, h.Score)
		}
	}
}

func TestSearchEmpty(t *testing.T) {
	x := Build(shopFAQ())
	for _, text := range []string{"", "   ", "？！。，", "\u200b\u3000", "😀😀"} {
		if h, ok := x.Search(text, ""); ok {
			t.Errorf("Search(%q) = %+v, want no hit", text, h)
		}
	}
	empty := Build(nil)
	if h, ok := empty.Search("包邮吗", ""); ok || empty.Len() != 0 {
		t.Errorf("empty index: %+v %v len %d", h, ok, empty.Len())
	}
	noQ := Build([]Entry{{ID: "a", Questions: []string{"", "？？"}, Answer: "x"}})
	if _, ok := noQ.Search("？？", ""); ok || noQ.Len() != 1 {
		t.Errorf("entry without usable questions was found or not counted")
	}
}

func TestSearchPreferIntent(t *testing.T) {
	entries := []Entry{
		{ID: "fee", Intent: "shipping_fee", Questions: []string{"退货运费多少钱"}, Answer: "a"},
		{ID: "ret", Intent: "return_goods", Questions: []string{"退货的运费谁出"}, Answer: "b"},
		{ID: "far", Intent: "other", Questions: []string{"发票怎么开"}, Answer: "c"},
	}
	x := Build(entries)
	q := "退货运费"
	plain, _ := x.Search(q, "")
	for _, tc := range []struct {
		prefer, want string
	}{
		{"shipping_fee", "fee"},
		{"return_goods", "ret"},
		{"other", plain.Entry.ID}, // far behind: no help from preferring
		{"nonexistent", plain.Entry.ID},
	} {
		h, ok := x.Search(q, tc.prefer)
		if !ok || h.Entry.ID != tc.want {
			t.Errorf("prefer %q: got %+v, want %s", tc.prefer, h, tc.want)
		}
	}
	// A tie goes to the preferred entry, and without preference to the
	// entry given first.
	tie := Build([]Entry{
		{ID: "one", Intent: "x", Questions: []string{"怎么退款"}},
		{ID: "two", Intent: "y", Questions: []string{"怎么退款"}},
	})
	if h, _ := tie.Search("怎么退款", ""); h.Entry.ID != "one" {
		t.Errorf("tie without preference: %s", h.Entry.ID)
	}
	if h, _ := tie.Search("怎么退款", "y"); h.Entry.ID != "two" || h.Score != 1 {
		t.Errorf("tie preferring y: %+v", h)
	}
}

func TestBuildCopies(t *testing.T) {
	entries := shopFAQ()
	x := Build(entries)
	entries[0].Questions[1] = "完全不同的问题"
	entries[0].Answer = "changed"
	h, ok := x.Search("包邮吗", "")
	if !ok || h.Entry.ID != "shipping_fee" || h.Score != 1 || h.Entry.Answer == "changed" || h.Question != "包邮吗" {
		t.Fatalf("index changed with its input: %+v", h)
	}
	if x.Len() != len(entries) {
		t.Fatalf("Len = %d", x.Len())
	}
}

func TestSearchConcurrent(t *testing.T) {
	x := Build(shopFAQ())
	want, _ := x.Search("退款几天能到账", "")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				h, ok := x.Search("退款几天能到账", "")
				if !ok || h != want {
					t.Errorf("concurrent search differs: %+v", h)
					return
				}
				x.Search("运费怎么算", "shipping_fee")
			}
		}()
	}
	wg.Wait()
}

func FuzzSearch(f *testing.F) {
	for _, s := range []string{"包邮吗", "请问你们包不包邮啊", "", "？？", "ＶＩＰ会员", "\xff\xfe", "a", "退款退款退款退款", "1234567890", "\u200b包\u200b邮"} {
		f.Add(s, "")
		f.Add(s, "shipping_fee")
	}
	x := Build(shopFAQ())
	f.Fuzz(func(t *testing.T, text, prefer string) {
		h, ok := x.Search(text, prefer)
		if !ok {
			if h.Entry != nil {
				t.Fatal("no hit but an entry")
			}
			return
		}
		if h.Entry == nil || h.Score <= 0 || h.Score > 1 {
			t.Fatalf("bad hit %+v", h)
		}
		found := false
		for _, q := range h.Entry.Questions {
			found = found || q == h.Question
		}
		if !found {
			t.Fatalf("question %q not in entry %s", h.Question, h.Entry.ID)
		}
		if h2, _ := x.Search(text, prefer); h2 != h {
			t.Fatalf("not deterministic: %+v vs %+v", h, h2)
		}
		// A question searched for itself scores 1.
		if h3, ok := x.Search(h.Question, ""); !ok || h3.Score != 1 {
			t.Fatalf("variant %q does not match itself: %+v", h.Question, h3)
		}
	})
}

// benchFAQ builds n entries of 5 variants each from realistic pieces.
func benchFAQ(n int) []Entry {
	r := rand.New(rand.NewPCG(1, 2))
	subjects := []string{"运费", "退货", "退款", "发票", "地址", "优惠券", "会员", "积分", "尺码", "快递", "订单", "售后", "保修", "花呗", "发货", "换货", "赠品", "预售", "定金", "价保"}
	products := []string{"手机", "耳机", "电视", "冰箱", "洗衣机", "空调", "连衣裙", "运动鞋", "羽绒服", "奶粉", "纸尿裤", "口红", "面膜", "笔记本电脑", "平板", "路由器", "电饭煲", "床垫", "沙发", "行李箱"}
	forms := []string{"%s的%s怎么处理", "%s%s多久能好", "买%s的%s规则是什么", "%s可以%s吗", "请问%s有没有%s", "%s%s需要多少钱", "%s的%s在哪里看"}
	var out []Entry
	for i := range n {
		p, s := products[r.IntN(len(products))], subjects[r.IntN(len(subjects))]
		e := Entry{ID: fmt.Sprintf("e%d", i), Intent: s, Answer: "答案"}
		for j := range 5 {
			q := fmt.Sprintf(forms[(i+j)%len(forms)], p, s)
			e.Questions = append(e.Questions, q+strings.Repeat("呢", j%2))
		}
		out = append(out, e)
	}
	return out
}

func BenchmarkSearch(b *testing.B) {
	x := Build(benchFAQ(1000))
	for _, q := range []string{"请问买冰箱的退货规则是什么", "手机多久能发货呢", "今天天气怎么样"} {
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				x.Search(q, "退货")
			}
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	entries := benchFAQ(1000)
	b.ReportAllocs()
	for b.Loop() {
		Build(entries)
	}
}
