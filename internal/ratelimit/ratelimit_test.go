package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLimiter(r Rate, max int) (*Limiter, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := New(r, max)
	l.now = c.now
	return l, c
}

func TestBurstThenRate(t *testing.T) {
	l, c := newTestLimiter(Rate{PerSecond: 2, Burst: 3}, 10)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, retry := l.Allow("k")
	if ok {
		t.Fatal("4th request allowed beyond burst")
	}
	if retry != 500*time.Millisecond {
		t.Errorf("retryAfter = %v, want 500ms at 2/s", retry)
	}
	c.advance(499 * time.Millisecond)
	if ok, _ := l.Allow("k"); ok {
		t.Error("allowed before a token refilled")
	}
	c.advance(2 * time.Millisecond)
	if ok, _ := l.Allow("k"); !ok {
		t.Error("refused after a token refilled")
	}
	// Another key has its own bucket.
	if ok, _ := l.Allow("other"); !ok {
		t.Error("independent key refused")
	}
}

func TestDisabled(t *testing.T) {
	l, _ := newTestLimiter(Rate{}, 1)
	for i := 0; i < 1000; i++ {
		if ok, _ := l.Allow(fmt.Sprint(i)); !ok {
			t.Fatal("disabled limiter refused")
		}
	}
	if l.Len() != 0 {
		t.Errorf("disabled limiter holds %d buckets", l.Len())
	}
}

func TestBoundedKeys(t *testing.T) {
	l, c := newTestLimiter(Rate{PerSecond: 1, Burst: 1}, 100)
	for i := 0; i < 1000; i++ {
		l.Allow(fmt.Sprint(i))
		c.advance(time.Millisecond)
		if l.Len() > 100 {
			t.Fatalf("holds %d buckets, bound is 100", l.Len())
		}
	}
	// A key that was just limited keeps its state across evictions of idle ones.
	l.Allow("hot")
	if ok, _ := l.Allow("hot"); ok {
		t.Error("hot key not limited")
	}
}

func TestSetRate(t *testing.T) {
	l, _ := newTestLimiter(Rate{PerSecond: 1, Burst: 100}, 10)
	l.Allow("k")
	l.SetRate(Rate{PerSecond: 1, Burst: 1})
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("capped bucket should still hold one token")
	}
	if ok, _ := l.Allow("k"); ok {
		t.Error("new burst of 1 not applied")
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := New(Rate{PerSecond: 1e9, Burst: 1 << 30}, 100000)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(fmt.Sprint(i & 1023))
			i++
		}
	})
}
