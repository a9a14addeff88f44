// Package ratelimit holds token buckets keyed by a string (an API key id, a
// client IP). It does no I/O and keeps no global state.
package ratelimit

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Rate is one limit: a sustained rate and the burst allowed above it.
type Rate struct {
	// PerSecond is the sustained rate; 0 disables the limit.
	PerSecond float64 `yaml:"per_second"`
	// Burst is how many requests may arrive at once after a quiet spell.
	Burst int `yaml:"burst"`
}

// Validate implements config.Validatable.
func (r *Rate) Validate(v *config.Validator) {
	if r.PerSecond < 0 || math.IsNaN(r.PerSecond) || math.IsInf(r.PerSecond, 0) {
		v.Errorf("per_second", "must be 0 (off) or a positive number, got %v", r.PerSecond)
	}
	if r.PerSecond > 0 && r.Burst < 1 {
		v.Errorf("burst", "must be at least 1 when per_second is set, got %d", r.Burst)
	}
}

// Limiter is a set of token buckets with the same rate, one per key. The
// number of buckets is bounded: when it reaches maxKeys, buckets that have
// refilled completely (and so carry no state) are dropped, and if none can be
// dropped the oldest-touched half is. Safe for concurrent use.
type Limiter struct {
	mu      sync.Mutex
	rate    Rate
	maxKeys int
	buckets map[string]*bucket
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter; maxKeys bounds its memory (at least 1).
func New(rate Rate, maxKeys int) *Limiter {
	if maxKeys < 1 {
		maxKeys = 1
	}
	return &Limiter{rate: rate, maxKeys: maxKeys, buckets: map[string]*bucket{}, now: time.Now}
}

// SetRate changes the rate for every key (configuration reload); existing
// buckets keep their tokens, capped at the new burst.
func (l *Limiter) SetRate(rate Rate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate = rate
	for _, b := range l.buckets {
		b.tokens = math.Min(b.tokens, float64(rate.Burst))
	}
}

// Allow takes one token for key. When none is left it returns false and how
// long until one will be.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate.PerSecond <= 0 {
		return true, 0
	}
	now := l.now()
	burst := float64(l.rate.Burst)
	b, found := l.buckets[key]
	if !found {
		if len(l.buckets) >= l.maxKeys {
			l.evictLocked(now)
		}
		b = &bucket{tokens: burst, last: now}
		l.buckets[key] = b
	} else {
		elapsed := now.Sub(b.last).Seconds()
		if elapsed > 0 {
			b.tokens = math.Min(burst, b.tokens+elapsed*l.rate.PerSecond)
			b.last = now
		}
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := (1 - b.tokens) / l.rate.PerSecond
	return false, time.Duration(math.Ceil(wait * float64(time.Second)))
}

// evictLocked drops buckets that are full again; if that frees nothing, it
// drops the least recently used half.
func (l *Limiter) evictLocked(now time.Time) {
	burst := float64(l.rate.Burst)
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate.PerSecond >= burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.maxKeys {
		return
	}
	var cutoff time.Time
	times := make([]time.Time, 0, len(l.buckets))
	for _, b := range l.buckets {
		times = append(times, b.last)
	}
	cutoff = medianTime(times)
	for k, b := range l.buckets {
		if !b.last.After(cutoff) {
			delete(l.buckets, k)
		}
	}
}

func medianTime(ts []time.Time) time.Time {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts[len(ts)/2]
}

// Len returns the number of buckets held (metrics, tests).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
