// Package channelstest has fakes for adapter tests: a Sink that records
// what an adapter delivers and refuses.
package channelstest

import (
	"context"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// Sink records delivered messages (deduplicated on Channel+Key, like the
// hub) and refusals. Err, when set, is returned by Deliver instead. Safe
// for concurrent use.
type Sink struct {
	mu       sync.Mutex
	msgs     []*channels.Message
	keys     map[string]bool
	rejected map[channels.Reason]int
	changed  chan struct{}
	// Err is returned by Deliver when non-nil (set before use).
	Err error
}

// NewSink returns an empty sink.
func NewSink() *Sink {
	return &Sink{keys: map[string]bool{}, rejected: map[channels.Reason]int{}, changed: make(chan struct{})}
}

var _ channels.Sink = (*Sink)(nil)

// Deliver implements channels.Sink.
func (s *Sink) Deliver(ctx context.Context, m *channels.Message) error {
	if s.Err != nil {
		return s.Err
	}
	if m.ID == "" || m.Conversation == "" {
		return channels.ErrInvalid
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := m.Channel + "\x00" + m.Key()
	if !s.keys[k] {
		s.keys[k] = true
		c := *m
		s.msgs = append(s.msgs, &c)
	}
	s.notify()
	return nil
}

// Rejected implements channels.Sink.
func (s *Sink) Rejected(r channels.Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected[r]++
	s.notify()
}

func (s *Sink) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Messages returns what was delivered so far, in order.
func (s *Sink) Messages() []*channels.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*channels.Message(nil), s.msgs...)
}

// Rejections returns how many refusals of reason r were reported.
func (s *Sink) Rejections(r channels.Reason) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected[r]
}

// WaitMessages waits until at least n messages were delivered or d passed,
// and returns what was delivered.
func (s *Sink) WaitMessages(n int, d time.Duration) []*channels.Message {
	deadline := time.After(d)
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := append([]*channels.Message(nil), s.msgs...)
			s.mu.Unlock()
			return out
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return s.Messages()
		}
	}
}
