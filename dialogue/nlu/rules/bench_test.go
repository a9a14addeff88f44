package rules

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// benchMessage is a 30-rune customer message with a tracking number, a
// date-time and an amount.
const benchMessage = "SF1234567890123明天下午三点前能到吗退款三百块"

func BenchmarkExtract(b *testing.B) {
	e, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	if n := utf8.RuneCountInString(benchMessage); n != 30 {
		b.Fatalf("bench message has %d runes, want 30", n)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		e.Extract(benchMessage, now)
	}
}

func BenchmarkNormalize(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Normalize(benchMessage)
	}
}

// BenchmarkExtractLong runs a 1,500-rune text full of entities, to keep
// the cost linear in the number of candidates.
func BenchmarkExtractLong(b *testing.B) {
	e, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	msg := strings.Repeat("订单号2026112212345678，手机13812345678，明天下午三点前送两件，退款三百五十元。", 30)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		e.Extract(msg, now)
	}
}
