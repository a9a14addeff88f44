package orders

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/zhiyin/zhiyin/dialogue/skill"
	"github.com/zhiyin/zhiyin/internal/store"
	"github.com/zhiyin/zhiyin/internal/store/storetest"
)

// openDB opens a fresh database with the demo migrations applied.
func openDB(t testing.TB) *store.DB {
	t.Helper()
	return storetest.Open(t, storetest.Fast(), store.MigrationSet{Component: MigrationComponent, FS: Migrations()})
}

func handle(t *testing.T, s *Skill, req *skill.Request) *skill.Response {
	t.Helper()
	if !s.CanHandle(req) {
		t.Fatalf("CanHandle(%+v) = false", req)
	}
	resp, err := s.Handle(context.Background(), req)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if resp == nil {
		t.Fatal("nil response")
	}
	return resp
}

func text(r *skill.Response) string {
	var parts []string
	for _, rp := range r.Replies {
		parts = append(parts, rp.Text)
	}
	return strings.Join(parts, "\n")
}

func mustContain(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("reply %q does not contain %q", got, w)
		}
	}
}

func TestMigrationRows(t *testing.T) {
	db := openDB(t)
	count := func(q string) int {
		var n int
		if err := db.Read().QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM demo_orders`); n < 20 {
		t.Errorf("orders = %d", n)
	}
	if n := count(`SELECT count(*) FROM demo_parcels`); n < 20 {
		t.Errorf("parcels = %d", n)
	}
	for _, st := range []string{"待发货", "已发货", "已签收", "退款中", "已退款", "已取消"} {
		if count(`SELECT count(*) FROM demo_orders WHERE status = '`+st+`'`) == 0 {
			t.Errorf("no order with status %s", st)
		}
	}
	for _, st := range []string{"运输中", "派送中", "已签收"} {
		if count(`SELECT count(*) FROM demo_parcels WHERE status = '`+st+`'`) == 0 {
			t.Errorf("no parcel with status %s", st)
		}
	}
	// Every shipped order's parcel exists, and pending orders have none.
	if n := count(`SELECT count(*) FROM demo_orders o WHERE tracking_no <> '' AND NOT EXISTS (SELECT 1 FROM demo_parcels p WHERE p.tracking_no = o.tracking_no)`); n != 0 {
		t.Errorf("%d orders point to missing parcels", n)
	}
	if n := count(`SELECT count(*) FROM demo_orders WHERE status = '待发货' AND tracking_no <> ''`); n != 0 {
		t.Errorf("%d pending orders have a tracking number", n)
	}
	if n := count(`SELECT count(*) FROM demo_orders WHERE length(order_id) <> 14`); n != 0 {
		t.Errorf("%d order ids are not 14 digits", n)
	}
}

func TestTrackParcel(t *testing.T) {
	s := New(openDB(t))
	for _, tc := range []struct {
		name string
		req  skill.Request
		want []string
	}{
		{"entity", skill.Request{Intent: "track_parcel", Text: "我的快递SF1234567890到哪了",
			Entities: []skill.Entity{{Type: "tracking_no", Value: "sf1234567890", Normalized: "SF1234567890"}}},
			[]string{"顺丰", "SF1234567890", "运输中", "杭州转运中心", "2024-11-21"}},
		{"text only, full-width and lower case", skill.Request{Intent: "track_parcel", Text: "帮我查下快递 ｓｆ１２３４５６７８９０"},
			[]string{"SF1234567890", "杭州转运中心"}},
		{"slot", skill.Request{Intent: "track_parcel", Text: "到哪了", Slots: map[string]string{"tracking_no": "JDVA00012345678"}},
			[]string{"京东", "正在派送中", "王师傅"}},
		{"zto digits", skill.Request{Intent: "track_parcel", Text: "中通快递单号：75312345678901"},
			[]string{"中通", "广州白云转运中心"}},
		{"delivered", skill.Request{Intent: "track_parcel", Text: "SF1122334455667 显示签收了但我没收到"},
			[]string{"已签收", "转人工"}},
		{"exception", skill.Request{Intent: "track_parcel", Text: "75311122233344 怎么不动了"},
			[]string{"异常", "地址不详"}},
		{"by order", skill.Request{Intent: "track_parcel", Text: "订单20241100000003的快递到哪了",
			Entities: []skill.Entity{{Type: "order_no", Value: "20241100000003", Normalized: "20241100000003"}}},
			[]string{"订单 20241100000003 的京东快递 JDVA00012345678", "派送中"}},
		{"by order in slot", skill.Request{Intent: "track_parcel", Text: "查物流", Slots: map[string]string{"order_id": "20241234567890"}},
			[]string{"订单 20241234567890", "SF1234567890", "杭州转运中心"}},
		{"order not shipped", skill.Request{Intent: "track_parcel", Text: "20241100000001 发货了吗"},
			[]string{"还没有发货", "48小时"}},
		{"order cancelled", skill.Request{Intent: "track_parcel", Text: "20241100000006 的物流"},
			[]string{"已取消", "没有物流信息"}},
		{"unknown SF", skill.Request{Intent: "track_parcel", Text: "SF9999999999 到哪了"},
			[]string{"没有查到快递单号 SF9999999999", "顺丰单号是 SF 开头", "转人工"}},
		{"unknown JD", skill.Request{Intent: "track_parcel", Entities: []skill.Entity{{Type: "tracking_no", Value: "JD0000000000001"}}},
			[]string{"JD0000000000001", "京东单号"}},
		{"unknown digits", skill.Request{Intent: "track_parcel", Text: "123456789012345"},
			[]string{"没有查到 123456789012345 对应的订单或包裹", "14位数字", "纯数字"}},
		{"unknown order", skill.Request{Intent: "track_parcel", Entities: []skill.Entity{{Type: "order_id", Value: "20990000000000"}}},
			[]string{"没有找到订单 20990000000000", "我的订单"}},
		{"missing", skill.Request{Intent: "track_parcel", Text: "我的快递到哪了"},
			[]string{"请把快递单号或订单号发给我"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Purpose = skill.Answer
			r := handle(t, s, &tc.req)
			mustContain(t, text(r), tc.want...)
			if r.Valid != nil || r.Handoff {
				t.Errorf("unexpected verdict/handoff: %+v", r)
			}
		})
	}
}

func TestRefundStatus(t *testing.T) {
	s := New(openDB(t))
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"订单20241100000004退款到哪一步了", []string{"20241100000004", "商家已同意退货"}},
		{"20241100000005 退款到账了吗", []string{"已退款 ¥129.00"}},
		{"20241234567890 的退款", []string{"没有退款申请", "已发货"}},
		{"SF4455667788990 这个退款怎么样了", []string{"20241100000012", "退款审核中"}}, // by the order's tracking number
		{"20990000000000 退款", []string{"没有找到订单 20990000000000"}},
		{"我的退款怎么还没到", []string{"请提供您的订单号"}},
	} {
		t.Run(tc.text, func(t *testing.T) {
			mustContain(t, text(handle(t, s, &skill.Request{Purpose: skill.Answer, Intent: "refund_status", Text: tc.text})), tc.want...)
		})
	}
}

func TestCancelOrder(t *testing.T) {
	db := openDB(t)
	s := New(db)
	cancel := func(id string) string {
		return text(handle(t, s, &skill.Request{Purpose: skill.Answer, Intent: "cancel_order", Text: "取消订单" + id}))
	}
	mustContain(t, cancel("20241100000001"), "已为您取消订单 20241100000001", "¥158.00")
	var status, refund string
	if err := db.Read().QueryRow(`SELECT status, refund_status FROM demo_orders WHERE order_id = '20241100000001'`).Scan(&status, &refund); err != nil {
		t.Fatal(err)
	}
	if status != "已取消" || !strings.Contains(refund, "原路退回") {
		t.Fatalf("after cancel: %s / %s", status, refund)
	}
	mustContain(t, cancel("20241100000001"), "已经取消了")
	mustContain(t, cancel("20241234567890"), "已经发货", "SF1234567890", "拒收")
	mustContain(t, cancel("20241100000002"), "已签收", "退货")
	mustContain(t, cancel("20241100000004"), "不需要再取消")
	mustContain(t, cancel("20990000000000"), "没有找到订单")
	mustContain(t, cancel(""), "请提供您的订单号")

	// Two customers cancelling the same order at once: one cancels, the
	// other is told it is already cancelled.
	var wg sync.WaitGroup
	out := make([]string, 2)
	for i := range out {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = cancel("20241100000009") }()
	}
	wg.Wait()
	joined := strings.Join(out, "|")
	if strings.Count(joined, "已为您取消") != 1 || strings.Count(joined, "已经取消了") != 1 {
		t.Fatalf("concurrent cancels: %q", out)
	}
}

func TestOrderSummary(t *testing.T) {
	s := New(openDB(t))
	r := handle(t, s, &skill.Request{Purpose: skill.Answer, Intent: "order_status", Text: "帮我看看订单 20241100000007"})
	mustContain(t, text(r), "20241100000007", "2024-11-17", "空气炸锅", "¥329.00", "已发货", "中通 75312345678901")
	r = handle(t, s, &skill.Request{Purpose: skill.Answer, Intent: "greet", Text: "你好"})
	mustContain(t, text(r), "请提供您的订单号")
}

func TestValidate(t *testing.T) {
	s := New(openDB(t))
	for _, tc := range []struct {
		name, form, slot, value string
		valid                   bool
		want                    []string
	}{
		{"order ok", "return_goods", "order_id", "20241100000002", true, nil},
		{"order normalized", "invoice", "order_id", " 20241100000002 ", true, nil},
		{"order missing", "return_goods", "order_id", "20990000000000", false, []string{"没有找到订单 20990000000000", "重新输入"}},
		{"return before shipping", "return_goods", "order_id", "20241100000001", false, []string{"还没有发货", "取消订单"}},
		{"return refunded", "return_goods", "order_id", "20241100000005", false, []string{"不能再申请退货"}},
		{"address shipped", "change_address", "order_id", "20241234567890", false, []string{"无法在线修改", "SF1234567890"}},
		{"address pending", "change_address", "order_id", "20241100000009", true, nil},
		{"invoice cancelled", "invoice", "order_id", "20241100000006", false, []string{"无法开具发票"}},
		{"tracking ok", "", "tracking_no", "sf1234567890", true, nil},
		{"tracking missing", "", "tracking_no", "SF0000000000", false, []string{"没有查到快递单号 SF0000000000", "顺丰"}},
		{"empty", "return_goods", "order_id", "  ", false, []string{"请输入单号"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := handle(t, s, &skill.Request{Purpose: skill.Validate, Form: tc.form, Slot: tc.slot, Value: tc.value})
			if got := r.Valid == nil || *r.Valid; got != tc.valid {
				t.Fatalf("valid = %v, want %v (%q)", got, tc.valid, text(r))
			}
			mustContain(t, text(r), tc.want...)
			if !tc.valid && len(r.Replies) == 0 {
				t.Error("an invalid verdict must say why")
			}
			if tc.name == "order normalized" && (r.Slots["order_id"] == nil || *r.Slots["order_id"] != "20241100000002") {
				t.Errorf("normalized slot = %v", r.Slots)
			}
		})
	}
	if s.CanHandle(&skill.Request{Purpose: skill.Validate, Slot: "reason"}) {
		t.Error("CanHandle must refuse slots it cannot check")
	}
	if s.CanHandle(nil) {
		t.Error("CanHandle(nil)")
	}
}

func TestSubmit(t *testing.T) {
	db := openDB(t)
	s := New(db)
	submit := func(form string, slots map[string]string) string {
		return text(handle(t, s, &skill.Request{Purpose: skill.Submit, Form: form, Slots: slots}))
	}
	mustContain(t, submit("return_goods", map[string]string{"order_id": "20241100000002", "reason": "质量问题"}),
		"退货申请已提交", "R20241100000002", "质量问题")
	mustContain(t, submit("invoice", map[string]string{"order_id": "20241100000002", "invoice_title": "杭州知音科技有限公司", "tax_id": "91330100MA2XXXXX1X"}),
		"发票申请已提交", "杭州知音科技有限公司", "91330100MA2XXXXX1X")
	mustContain(t, submit("invoice", map[string]string{"order_id": "20241100000002"}), "抬头“个人”")
	mustContain(t, submit("feedback", map[string]string{"content": "包装破损", "requested_slot": "content"}), "feedback", "content：包装破损")

	addr := "上海市闵行区七宝镇漕宝路1号 李女士 139****0002"
	mustContain(t, submit("change_address", map[string]string{"order_id": "20241100000009", "address": addr}), "已将订单 20241100000009 的收货地址修改为", addr)
	var got string
	if err := db.Read().QueryRow(`SELECT address FROM demo_orders WHERE order_id = '20241100000009'`).Scan(&got); err != nil || got != addr {
		t.Fatalf("address = %q, %v", got, err)
	}
	mustContain(t, submit("change_address", map[string]string{"order_id": "20241234567890", "address": addr}), "无法在线修改", "SF1234567890")
	if err := db.Read().QueryRow(`SELECT address FROM demo_orders WHERE order_id = '20241234567890'`).Scan(&got); err != nil || got == addr {
		t.Fatalf("shipped order's address changed: %q %v", got, err)
	}
	mustContain(t, submit("change_address", map[string]string{"order_id": "20990000000000", "address": addr}), "没有找到订单")
	mustContain(t, submit("change_address", map[string]string{"order_id": "20241100000009"}), "新的收货地址")
}

func TestHandleErrors(t *testing.T) {
	db := openDB(t)
	s := New(db)
	if _, err := s.Handle(context.Background(), nil); err == nil {
		t.Error("nil request")
	}
	if _, err := s.Handle(context.Background(), &skill.Request{Purpose: "dance"}); err == nil {
		t.Error("unknown purpose")
	}
	if s.Name() != "order_lookup" {
		t.Error(s.Name())
	}
	// A database failure is an error, not an answer.
	db.Close()
	if _, err := s.Handle(context.Background(), &skill.Request{Purpose: skill.Answer, Intent: "track_parcel", Text: "SF1234567890"}); err == nil {
		t.Error("closed database: no error")
	}
}

func TestNumbers(t *testing.T) {
	got := numbers(&skill.Request{
		Text:     "订单 2024-1100-0000-03，快递 sf1234567890，还有 JDVA00012345678",
		Entities: []skill.Entity{{Type: "order_no", Value: "2024-1100-0000-03", Normalized: "2024-1100-0000-03"}},
		Slots:    map[string]string{"tracking_no": "SF1234567890", "order_id": "20241234567890"},
	})
	want := []number{
		{"20241100000003", kindOrder},
		{"SF1234567890", kindTracking},
		{"JDVA00012345678", kindTracking},
		{"20241234567890", kindOrder},
	}
	if len(got) != len(want) {
		t.Fatalf("numbers = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("numbers[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func BenchmarkTrackParcel(b *testing.B) {
	s := New(openDB(b))
	req := &skill.Request{Purpose: skill.Answer, Intent: "track_parcel", Text: "我的快递SF1234567890到哪了"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Handle(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzNumbers(f *testing.F) {
	for _, s := range []string{"我的快递SF1234567890到哪了", "ｓｆ１２３４５６７８９０", "订单 2024-1100-0000-03", "75312345678901 JDVA00012345678 EA123456789CN", "", "\xff\xfe", "SF SF SF 1 2 3"} {
		f.Add(s, "2024-1100-0000-03", "sf1234567890")
	}
	f.Fuzz(func(t *testing.T, text, entity, slot string) {
		nums := numbers(&skill.Request{
			Text:     text,
			Entities: []skill.Entity{{Type: "order_no", Value: entity}},
			Slots:    map[string]string{"tracking_no": slot},
		})
		seen := map[string]bool{}
		for _, n := range nums {
			if n.no == "" || seen[n.no] || strings.ContainsAny(n.no, " -") || strings.ToUpper(n.no) != n.no {
				t.Fatalf("bad number list %v", nums)
			}
			seen[n.no] = true
		}
	})
}
