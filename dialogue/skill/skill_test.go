package skill

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// fake is a Skill with function fields.
type fake struct {
	name   string
	handle func(ctx context.Context, req *Request) (*Response, error)
}

func (f *fake) Name() string                { return f.name }
func (f *fake) CanHandle(req *Request) bool { return true }
func (f *fake) Handle(ctx context.Context, req *Request) (*Response, error) {
	if f.handle == nil {
		return &Response{}, nil
	}
	return f.handle(ctx, req)
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	for _, n := range []string{"order_lookup", "action_weather", "faq_bot"} {
		if err := r.Register(&fake{name: n}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Register(&fake{name: "order_lookup"}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := r.Register(nil); err == nil {
		t.Fatal("nil skill registered")
	}
	if err := r.Register(&fake{}); err == nil {
		t.Fatal("empty name registered")
	}
	if got := r.Names(); !slices.Equal(got, []string{"action_weather", "faq_bot", "order_lookup"}) {
		t.Fatalf("Names = %v", got)
	}
	if s, ok := r.Get("faq_bot"); !ok || s.Name() != "faq_bot" {
		t.Fatalf("Get = %v %v", s, ok)
	}
	if _, ok := r.Get("nope"); ok || r.Has("nope") || !r.Has("order_lookup") {
		t.Fatal("Has/Get of unknown name")
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(2)
		go func() { defer wg.Done(); _ = r.Register(&fake{name: string(rune('a' + i%26))}) }()
		go func() { defer wg.Done(); r.Names(); r.Has("a") }()
	}
	wg.Wait()
	if len(r.Names()) != 26 {
		t.Fatalf("names: %v", r.Names())
	}
}
