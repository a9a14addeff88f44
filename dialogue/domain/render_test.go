package domain

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestCompile(t *testing.T) {
	lit := func(s string) segment { return segment{text: s} }
	slot := func(s string) segment { return segment{text: s, slot: true} }
	tests := []struct {
		in      string
		want    []segment
		holes   []hole
		errAt   int // -1: no error
		errPart string
	}{
		{"", nil, nil, -1, ""},
		{"您好", []segment{lit("您好")}, nil, -1, ""},
		{"{a}", []segment{slot("a")}, []hole{{"a", 0}}, -1, ""},
		{"订单{ order_id }已发货，运单{tracking_no}", []segment{lit("订单"), slot("order_id"), lit("已发货，运单"), slot("tracking_no")},
			[]hole{{"order_id", 6}, {"tracking_no", 36}}, -1, ""},
		{"{{a}}", []segment{lit("{a}")}, nil, -1, ""},
		{"x{{{a}}}y", []segment{lit("x{"), slot("a"), lit("}y")}, []hole{{"a", 3}}, -1, ""},
		{"{{}}", []segment{lit("{}")}, nil, -1, ""},
		{"{a}{b}", []segment{slot("a"), slot("b")}, []hole{{"a", 0}, {"b", 3}}, -1, ""},
		{"a {b", nil, nil, 2, `unbalanced "{"`},
		{"a {b {c}", nil, nil, 2, `unbalanced "{"`},
		{"a }", nil, nil, 2, `unbalanced "}"`},
		{"{a}}", nil, nil, 3, `unbalanced "}"`},
		{"{ }", nil, nil, 0, "empty placeholder"},
		{"{", nil, nil, 0, `unbalanced "{"`},
	}
	for _, tt := range tests {
		segs, holes, err := compile(tt.in)
		if tt.errAt >= 0 {
			if err == nil || err.off != tt.errAt || !strings.Contains(err.msg, tt.errPart) {
				t.Errorf("compile(%q) error = %+v, want at %d %q", tt.in, err, tt.errAt, tt.errPart)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(segs, tt.want) || !reflect.DeepEqual(holes, tt.holes) {
			t.Errorf("compile(%q) = %+v, %+v, %+v; want %+v, %+v", tt.in, segs, holes, err, tt.want, tt.holes)
		}
	}
}

// loadResponses loads responses (YAML under responses:) with slots a, b.
func loadResponses(t testing.TB, responses string) *Domain {
	t.Helper()
	d, err := LoadFS(fstest.MapFS{
		"base.yml": {Data: []byte(minimal)},
		"r.yml":    {Data: []byte("slots:\n  a: {}\n  b: {}\nresponses:\n" + responses)},
	}, "r")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRender(t *testing.T) {
	d := loadResponses(t, `  utter_greet:
    - text: 通用一
    - text: 通用二
    - text: "**钉钉**"
      channels: [dingtalk, feishu]
      markdown: true
    - text: 企业微信
      channels: [WeCom]
  utter_only_chat:
    - text: 只给网页
      channels: [webchat]
    - text: 只给电话
      channels: [sip]
  utter_fill:
    - text: "订单 {a}，原因：{b}。{{原样}}"
  utter_slot:
    - text: "{a}"
`)
	fixed := func(i int) func(int) int { return func(int) int { return i } }
	var asked []int
	record := func(n int) int { asked = append(asked, n); return n - 1 }
	slots := map[string]string{"a": "12345678", "b": "不想要了"}
	tests := []struct {
		resp, channel string
		pick          func(int) int
		want          string
		markdown      bool
	}{
		{"utter_greet", "dingtalk", nil, "**钉钉**", true},
		{"utter_greet", "feishu", fixed(0), "**钉钉**", true},
		{"utter_greet", "DingTalk", nil, "**钉钉**", true}, // case-insensitive
		{"utter_greet", "wecom", nil, "企业微信", false},
		{"utter_greet", "telegram", fixed(0), "通用一", false},
		{"utter_greet", "telegram", fixed(1), "通用二", false},
		{"utter_greet", "", fixed(1), "通用二", false},
		{"utter_greet", "telegram", fixed(2), "通用一", false},  // out of range: the first
		{"utter_greet", "telegram", fixed(-1), "通用一", false}, // out of range: the first
		{"utter_greet", "telegram", nil, "通用一", false},
		{"utter_only_chat", "sip", fixed(0), "只给电话", false},
		{"utter_only_chat", "telegram", fixed(1), "只给电话", false}, // no generic variant: any
		{"utter_fill", "api", nil, "订单 12345678，原因：不想要了。{原样}", false},
		{"utter_slot", "api", nil, "12345678", false},
	}
	for _, tt := range tests {
		text, md := d.Responses[tt.resp].Render(tt.channel, slots, tt.pick)
		if text != tt.want || md != tt.markdown {
			t.Errorf("%s on %q = %q, %v; want %q, %v", tt.resp, tt.channel, text, md, tt.want, tt.markdown)
		}
	}

	// pick is asked only when there is a choice, with the number of
	// candidates.
	d.Responses["utter_greet"].Render("telegram", nil, record)
	d.Responses["utter_greet"].Render("dingtalk", nil, record)
	d.Responses["utter_only_chat"].Render("other", nil, record)
	if !reflect.DeepEqual(asked, []int{2, 2}) {
		t.Errorf("pick asked %v, want [2 2]", asked)
	}

	// Missing and empty slots render empty.
	if got, _ := d.Responses["utter_fill"].Render("", map[string]string{"b": ""}, nil); got != "订单 ，原因：。{原样}" {
		t.Errorf("missing slots: %q", got)
	}
	if got, _ := d.Responses["utter_slot"].Render("", nil, nil); got != "" {
		t.Errorf("nil slots: %q", got)
	}

	// A nil or empty response, and one built by hand.
	var nilResp *Response
	if got, md := nilResp.Render("x", slots, nil); got != "" || md {
		t.Errorf("nil response: %q %v", got, md)
	}
	if got, _ := (&Response{Name: "utter_empty"}).Render("x", slots, nil); got != "" {
		t.Errorf("empty response: %q", got)
	}
	hand := &Response{Variants: []Variant{{Text: "订单{a}{{ok}}", Markdown: true}, {Text: "坏{", Channels: []string{"x"}}}}
	if got, md := hand.Render("api", slots, nil); got != "订单12345678{ok}" || !md {
		t.Errorf("hand-built: %q %v", got, md)
	}
	many := &Response{Variants: []Variant{{Text: "{a}-{b}-{a}-{b}-{a}-{b}-{a}-{b}-{a}-{b}-{c}"}}}
	if got, _ := many.Render("", map[string]string{"a": "1", "b": "2", "c": "3"}, nil); got != "1-2-1-2-1-2-1-2-1-2-3" {
		t.Errorf("more slots than the stack holds: %q", got)
	}
	if got, _ := hand.Render("x", slots, nil); got != "坏{" {
		t.Errorf("hand-built with a brace error: %q", got)
	}
}

func TestRenderAllocs(t *testing.T) {
	d := loadResponses(t, "  utter_lit:\n    - text: \"您好{{}}\"\n  utter_fill:\n    - text: \"订单 {a}，原因：{b}。\"\n      channels: [x]\n    - text: 通用\n")
	slots := map[string]string{"a": "12345678", "b": "不想要了"}
	pick := func(n int) int { return n - 1 }
	for _, tt := range []struct {
		resp, channel string
		max           float64
	}{
		{"utter_lit", "x", 0},
		{"utter_fill", "y", 0},
		{"utter_fill", "x", 1},
	} {
		r := d.Responses[tt.resp]
		if n := testing.AllocsPerRun(100, func() { r.Render(tt.channel, slots, pick) }); n > tt.max {
			t.Errorf("%s on %s: %v allocations per Render, want at most %v", tt.resp, tt.channel, n, tt.max)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	d := loadResponses(b, `  utter_fill:
    - text: "您好，您的订单 {a} 已提交退货，原因：{b}。我们会在1到3个工作日内处理，请留意短信通知。"
    - text: "订单 {a} 的退货申请已受理（{b}）。"
    - text: "**订单 {a}** 已受理"
      channels: [dingtalk]
      markdown: true
  utter_lit:
    - text: 抱歉，我没有理解您的意思，可以换个说法吗？
    - text: 不好意思，请换个说法再试一次。
`)
	slots := map[string]string{"a": "20240511000123", "b": "质量问题"}
	pick := func(n int) int { return n - 1 }
	for _, bc := range []struct{ name, resp, channel string }{
		{"placeholders", "utter_fill", "webchat"},
		{"channel", "utter_fill", "dingtalk"},
		{"literal", "utter_lit", "webchat"},
	} {
		r := d.Responses[bc.resp]
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Render(bc.channel, slots, pick)
			}
		})
	}
}
