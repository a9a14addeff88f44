package tts

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplitSentences(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		max  int
		want []string
	}{
		{"empty", "", 40, nil},
		{"spaces", "  \n ", 40, nil},
		{"one", "你好。", 40, []string{"你好。"}},
		{"no mark", "你好", 40, []string{"你好"}},
		{"sentences", "您好！请问有什么可以帮您？我们在线。", 40, []string{"您好！", "请问有什么可以帮您？", "我们在线。"}},
		{"ascii marks", "Hi! OK? yes; no", 40, []string{"Hi!", "OK?", "yes;", "no"}},
		{"newline", "第一行\n第二行", 40, []string{"第一行", "第二行"}},
		{"punctuation joins", "好的。。。！", 40, []string{"好的。。。！"}},
		{"leading punctuation dropped", "。！好的", 40, []string{"好的"}},
		{"first piece cut at comma", "您的订单已经发货了，预计明天下午送达，请注意查收。", 20,
			[]string{"您的订单已经发货了，", "预计明天下午送达，请注意查收。"}},
		{"first short kept", "好的，收到。", 20, []string{"好的，收到。"}},
		{"long second at commas", "好。一二三四五，六七八九十，一二三四五，六七八九十。", 12,
			[]string{"好。", "一二三四五，六七八九十，", "一二三四五，六七八九十。"}},
		{"hard cut", "好。一二三四五六七八九十一二三四五", 6,
			[]string{"好。", "一二三四五六", "七八九十一二", "三四五"}},
		{"default max", strings.Repeat("字", 45), 0, []string{strings.Repeat("字", 40), strings.Repeat("字", 5)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SplitSentences(tc.text, tc.max)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("SplitSentences(%q, %d) = %q, want %q", tc.text, tc.max, got, tc.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"你好", "你好"},
		{"共2件", "共二件"},
		{"235元", "两百三十五元"},
		{"10", "十"},
		{"12", "十二"},
		{"20", "二十"},
		{"105", "一百零五"},
		{"110", "一百一十"},
		{"1005", "一千零五"},
		{"1050", "一千零五十"},
		{"2200", "两千两百"},
		{"0", "零"},
		{"订单号12345678", "订单号一二三四五六七八"},
		{"电话13812345678", "电话一三八一二三四五六七八"},
		{"拨打138-1234-5678", "拨打一三八一二三四五六七八"},
		{"区号0571", "区号零五七一"},
		{"3.14", "三点一四"},
		{"35%", "百分之三十五"},
		{"12.5％", "百分之十二点五"},
		{"¥99.90", "九十九点九零元"},
		{"￥1,299", "一千两百九十九元"},
		{"$5", "五美元"},
		{"2024年", "二零二四年"},
		{"**重要**：请看 [这里](https://example.com/x)", "重要：请看 这里"},
		{"# 标题\n- 第一\n- 第二", "标题\n第一\n第二"},
		{"详见 https://example.com/a?b=1，谢谢", "详见 ，谢谢"},
		{"好的😀👍🏻！", "好的！"},
		{"`code` ok", "code ok"},
		{"a\x00b", "a b"},
	} {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzSplitSentences(f *testing.F) {
	for _, s := range []string{"", "你好。世界！", "，，，。", strings.Repeat("字，", 50), "a\nb;c?d!", "\xff\xfe。"} {
		f.Add(s, 10)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max > 1000 || max < -5 {
			return
		}
		m := max
		if m <= 0 {
			m = DefaultMaxSentence
		}
		for i, p := range SplitSentences(s, max) {
			if strings.TrimSpace(p) == "" || !speakable(p) {
				t.Fatalf("piece %d %q is empty", i, p)
			}
			// A piece may exceed the limit only by trailing punctuation.
			if n := utf8.RuneCountInString(strings.TrimRightFunc(p, func(r rune) bool { return !isSpeech(r) })); n > m && speakable(p) {
				t.Fatalf("piece %d %q has %d runes, limit %d", i, p, n, m)
			}
		}
	})
}

// isSpeech is a letter, digit or anything else but punctuation and space.
func isSpeech(r rune) bool { return speakable(string(r)) }

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"", "订单12345", "¥1,234.56", "35%", "**x** [a](b) https://x.y", "😀", "0.5", "2024年", "1-2-3-4-5-6-7", "\xff9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Normalize(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 from %q", s)
		}
		if strings.ContainsAny(out, "0123456789") {
			t.Fatalf("digits left in %q (from %q)", out, s)
		}
	})
}
