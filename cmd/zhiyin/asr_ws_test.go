package main

import (
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/asr"
)

// TestOnlineDelta: the online messages of a segment add up to its final
// text when the partials' last words change, and send nothing twice.
func TestOnlineDelta(t *testing.T) {
	type ev struct {
		final bool
		text  string
	}
	for _, c := range []struct {
		name   string
		events []ev
		want   []string // the deltas sent
		joined string   // what a FunASR client shows at the end
	}{
		{"partials that grow", []ev{{false, "我的"}, {false, "我的快递"}, {false, "我的快递到"}, {true, "我的快递到哪了"}},
			[]string{"我的", "快递", "到哪了"}, "我的快递到哪了"},
		{"last word of a partial revised", []ev{{false, "我要推"}, {false, "我要退货"}, {true, "我要退货"}},
			[]string{"我要", "退货"}, "我要退货"},
		{"no partial", []ev{{true, "帮我转人工"}}, []string{"帮我转人工"}, "帮我转人工"},
		{"one partial", []ev{{false, "帮我"}, {true, "帮我转人工"}}, []string{"帮我转人工"}, "帮我转人工"},
		{"agreed text revised by the final", []ev{{false, "我要退款"}, {false, "我要退款吗"}, {true, "我要退货了"}},
			[]string{"我要退款", "了"}, "我要退款了"},
		{"final shorter than the text sent", []ev{{false, "你好啊"}, {false, "你好啊"}, {true, "你好"}},
			[]string{"你好啊"}, "你好啊"},
		{"latin", []ev{{false, "hello wor"}, {false, "hello world"}, {true, "hello world"}},
			[]string{"hello wor", "ld"}, "hello world"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &wsSession{sent: map[int]*onlineText{}}
			var got []string
			for _, e := range c.events {
				kind := asr.Partial
				if e.final {
					kind = asr.Final
				}
				if d := s.delta(asr.Event{Kind: kind, Index: 0, Segment: asr.Segment{Text: e.text}}); d != "" {
					got = append(got, d)
				}
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") || strings.Join(got, "") != c.joined {
				t.Errorf("deltas %q (%q), want %q (%q)", got, strings.Join(got, ""), c.want, c.joined)
			}
		})
	}
	// Segments are independent.
	s := &wsSession{sent: map[int]*onlineText{}}
	s.delta(asr.Event{Kind: asr.Final, Index: 0, Segment: asr.Segment{Text: "一"}})
	if d := s.delta(asr.Event{Kind: asr.Final, Index: 1, Segment: asr.Segment{Text: "二"}}); d != "二" {
		t.Errorf("second segment: %q", d)
	}
}

func TestCommonPrefix(t *testing.T) {
	for _, c := range [][3]string{
		{"", "", ""}, {"abc", "abd", "ab"}, {"我要退款", "我要退货", "我要退"},
		{"快", "忙", ""}, // same first byte, different runes
		{"ab", "abc", "ab"}, {"\xff\xfe", "\xff\xfd", "\xff"},
	} {
		if got := commonPrefix(c[0], c[1]); got != c[2] {
			t.Errorf("commonPrefix(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}
