package rules

import (
	"math"
	"testing"
)

func TestParseChineseNumber(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"零", 0, true},
		{"五", 5, true},
		{"十", 10, true},
		{"十二", 12, true},
		{"二十", 20, true},
		{"二十五", 25, true},
		{"一百零五", 105, true},
		{"一百一", 110, true},
		{"两百五", 250, true},
		{"三百五十", 350, true},
		{"两千", 2000, true},
		{"两千零五", 2005, true},
		{"一千零一十", 1010, true},
		{"三千五", 3500, true},
		{"一万二", 12000, true},
		{"十万", 100000, true},
		{"十万八千", 108000, true},
		{"一百二十万", 1200000, true},
		{"一千二百万", 12000000, true},
		{"一亿五千万", 150000000, true},
		{"一亿五", 150000000, true},
		{"3万5千", 35000, true},
		{"3万5", 35000, true},
		{"1.5万", 15000, true},
		{"3千", 3000, true},
		{"350", 350, true},
		{"350.5", 350.5, true},
		{"1,200", 1200, true},
		{"1,200,300.25", 1200300.25, true},
		{"１２", 12, true},
		{" 十二 ", 12, true},
		{"叁佰伍拾", 350, true},
		{"壹万贰仟", 12000, true},
		{"二〇二六", 2026, true},
		{"二零二六", 2026, true},
		{"一二", 12, true},
		{"", 0, false},
		{"   ", 0, false},
		{"万", 0, false},
		{"万一", 0, false},
		{"千万", 0, false},
		{"十十", 0, false},
		{"百十", 0, false},
		{"一万二万", 0, false},
		{"一亿一亿", 0, false},
		{"3.", 0, false},
		{"1,20", 0, false},
		{"1,2000", 0, false},
		{"3五", 0, false},
		{"两两", 0, false},
		{"abc", 0, false},
		{"三点五", 0, false},
		{"十几", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := ParseChineseNumber(tt.in)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("ParseChineseNumber(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestScanNumber(t *testing.T) {
	tests := []struct {
		in   string
		opts numOpts
		want float64
		end  int
		ok   bool
	}{
		{"三百五十元", numDecimal | numBig, 350, 4, true},
		{"3.5万元", numDecimal | numBig, 35000, 4, true},
		{"3.5万元", numDecimal, 3.5, 3, true},
		{"1,200元", numDecimal, 1200, 5, true},
		{"1,20元", numDecimal, 1, 1, true},
		{"12345", 0, 12345, 5, true},
		{"万一", numBig, 0, 0, false},
		{"二〇二六年", numSeq, 2026, 4, true},
		{"三五元", numDecimal | numBig, 3, 1, true}, // not 35: no digit sequences here
		{"十分", 0, 10, 1, true},
	}
	for _, tt := range tests {
		v, end, ok := scanNumber([]rune(tt.in), 0, tt.opts)
		if ok != tt.ok || (ok && (v != tt.want || end != tt.end)) {
			t.Errorf("scanNumber(%q) = %v, %d, %v; want %v, %d, %v", tt.in, v, end, ok, tt.want, tt.end, tt.ok)
		}
	}
	// A long digit run is bounded and never split.
	long := []rune("1234567890123456789012345678901234567890元")
	if _, end, ok := scanNumber(long, 0, numDecimal|numBig); ok && end < len(long)-1 && isDigit(long[end]) {
		t.Errorf("scanNumber split a digit run at %d", end)
	}
}

func FuzzParseChineseNumber(f *testing.F) {
	for _, s := range []string{"一万二", "3万5千", "1.5万", "一百零五", "二〇二六", "1,200.5", "万一", "十十", "亿亿亿", "9999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := ParseChineseNumber(s)
		if ok && (math.IsNaN(v) || v < 0) {
			t.Fatalf("ParseChineseNumber(%q) = %v", s, v)
		}
		rs := []rune(s)
		for i := range rs {
			if _, end, ok := scanNumber(rs, i, numDecimal|numBig|numSeq); ok && (end <= i || end > len(rs)) {
				t.Fatalf("scanNumber(%q, %d) end %d", s, i, end)
			}
		}
	})
}
