package dialogue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/zhiyin/zhiyin/dialogue/domain"
	"github.com/zhiyin/zhiyin/dialogue/lanes"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/dialogue/skill"
	"github.com/zhiyin/zhiyin/internal/store"
)

func (h *harness) say(t *testing.T, user, text, intent string) *Result {
	t.Helper()
	h.parser.set(text, &nlu.Result{Text: text, Intent: nlu.Intent{Name: intent, Confidence: 1}})
	res, err := h.e.Handle(context.Background(), Message{User: user, Client: "key:test", Text: text})
	if err != nil {
		t.Fatalf("Handle(%q): %v", text, err)
	}
	return res
}

// A locked database fails the turn with ErrBusy and leaves nothing of it:
// no turn row, no state change, not even in the engine's cache.
func TestBusyDatabaseWritesNothing(t *testing.T) {
	scfg := store.DefaultConfig()
	scfg.BusyTimeout = 50 * time.Millisecond
	h := newHarnessWith(t, lanes.DefaultConfig(), scfg)
	first := h.say(t, "bob", "我要退货", "return_goods")

	other, err := sql.Open("sqlite3", "file:"+h.db.Path()+"?_busy_timeout=10")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	h.parser.set("20241234567890", &nlu.Result{Text: "20241234567890", Intent: nlu.Intent{Name: nlu.FallbackIntent, Confidence: 0.1}})
	_, err = h.e.Handle(context.Background(), Message{User: "bob", Client: "key:test", Text: "20241234567890"})
	if !errors.Is(err, store.ErrBusy) {
		t.Fatalf("turn on a locked database: %v, want ErrBusy", err)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	v, err := h.e.View(context.Background(), first.SessionID, 10)
	if err != nil || v.Turns != 1 || len(v.History) != 1 || v.Slots["order_id"] != "" {
		t.Fatalf("after the failed turn: %+v %v", v, err)
	}
	// The failed turn left no trace in memory either: the form still asks
	// for the order number, and the retry fills it.
	res := h.say(t, "bob", "20241234567890", nlu.FallbackIntent)
	if res.Slots["order_id"] != "20241234567890" || !strings.Contains(res.Replies[0].Text, "原因") {
		t.Fatalf("retry: %+v", res)
	}
}

// Turns of one conversation sent at once all land, one after another.
func TestConcurrentTurnsOfOneSession(t *testing.T) {
	h := newHarness(t, lanes.DefaultConfig())
	const n = 24
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		text := fmt.Sprintf("运费怎么算%d", i)
		h.parser.set(text, &nlu.Result{Text: text, Intent: nlu.Intent{Name: "shipping_fee", Confidence: 1}})
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := h.e.Handle(context.Background(), Message{User: "carol", Client: "key:test", Text: text})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[res.SessionID] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("%d sessions for one conversation", len(ids))
	}
	for id := range ids {
		v, err := h.e.View(context.Background(), id, 100)
		if err != nil || v.Turns != n || len(v.History) != n {
			t.Fatalf("view: %+v %v", v, err)
		}
		for i, tv := range v.History {
			if tv.Seq != i+1 || !strings.HasPrefix(tv.User, "运费怎么算") {
				t.Fatalf("turn %d: %+v", i, tv)
			}
		}
	}
}

// An urgent message is answered while the normal lane is saturated: its
// workers are all stuck in a slow skill and more normal work is queued.
func TestUrgentLanePreemptsUnderLoad(t *testing.T) {
	lc := lanes.DefaultConfig()
	lc.Normal.Workers, lc.Batch.Workers, lc.Urgent.Workers = 2, 1, 1
	h := newHarness(t, lc)
	h.orders.block, h.orders.started = make(chan struct{}), make(chan struct{}, 64)
	const normal = 10
	var wg sync.WaitGroup
	for i := 0; i < normal; i++ {
		text := fmt.Sprintf("我的快递SF12345678%02d到哪了", i)
		h.parser.set(text, &nlu.Result{Text: text, Intent: nlu.Intent{Name: "track_parcel", Confidence: 1}})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.e.Handle(context.Background(), Message{User: fmt.Sprintf("n%d", i), Client: "key:test", Text: text}); err != nil {
				t.Error(err)
			}
		}()
	}
	// Both normal workers are inside the skill: the lane is saturated and
	// the rest is queued.
	for i := 0; i < lc.Normal.Workers; i++ {
		<-h.orders.started
	}
	res := h.say(t, "urgent-user", "太差了，我要投诉", "complaint")
	if res.Lane != "urgent" || len(res.Replies) == 0 || !res.Handoff {
		t.Fatalf("urgent turn: %+v", res)
	}
	if d := h.e.deps.Pool.Depth(lanes.Normal); d == 0 {
		t.Errorf("normal queue drained before the urgent answer; the test proves nothing")
	}
	close(h.orders.block)
	go func() {
		for range h.orders.started { // later calls must not block on the signal
		}
	}()
	wg.Wait()
}

// A real action webhook that errors or is too slow: the customer gets an
// apology, the form goes on.
func TestActionWebhookFailure(t *testing.T) {
	var mu sync.Mutex
	mode := "slow"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		m := mode
		mu.Unlock()
		if m == "slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		http.Error(w, "boom", 500)
	}))
	defer srv.Close()
	h := newHarness(t, lanes.DefaultConfig())
	wh, err := skill.NewWebhook(skill.WebhookConfig{Name: "crm", URL: srv.URL, Timeout: 30 * time.Millisecond, Retries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := skill.NewRegistry()
	_ = reg.Register(h.orders)
	_ = reg.Register(wh)
	h.e.deps.Skills = reg
	dom := h.e.Domain()
	clone := *dom
	clone.Intents = map[string]*domain.Intent{}
	for k, v := range dom.Intents {
		c := *v
		clone.Intents[k] = &c
	}
	clone.Intents["track_parcel"].Skill = "crm"
	if err := h.e.SetDomain(&clone); err != nil {
		t.Fatal(err)
	}
	h.say(t, "dan", "我要退货", "return_goods")
	for _, m := range []string{"slow", "error"} {
		mu.Lock()
		mode = m
		mu.Unlock()
		res := h.say(t, "dan", "快递到哪了"+m, "track_parcel")
		if len(res.Replies) < 2 || !strings.Contains(res.Replies[0].Text, "抱歉") || !strings.Contains(res.Replies[1].Text, "继续") {
			t.Errorf("%s webhook: %q", m, texts(res.Replies))
		}
		if len(res.Stack) != 1 {
			t.Errorf("%s webhook: stack %v", m, res.Stack)
		}
	}
}

// A reloaded domain that lost a form drops it from open stacks; one that
// names an unknown skill is refused and the old one stays.
func TestSetDomain(t *testing.T) {
	h := newHarness(t, lanes.DefaultConfig())
	h.say(t, "erin", "我要开发票", "invoice")
	dom := h.e.Domain()
	clone := *dom
	clone.Forms = map[string]*domain.Form{"return_goods": dom.Forms["return_goods"]}
	clone.Intents = map[string]*domain.Intent{}
	for k, v := range dom.Intents {
		if k != "invoice" {
			clone.Intents[k] = v
		}
	}
	if err := h.e.SetDomain(&clone); err != nil {
		t.Fatal(err)
	}
	res := h.say(t, "erin", "你好", "greet")
	if len(res.Stack) != 0 || res.Replies[0].Text != "您好，请问有什么可以帮您？" {
		t.Fatalf("after reload: %+v", res)
	}
	bad := &domain.Domain{Name: "bad", Slots: clone.Slots, Responses: clone.Responses, Policy: clone.Policy,
		Intents: map[string]*domain.Intent{"greet": {Name: "greet", Skill: "nope"}}}
	if err := h.e.SetDomain(bad); err == nil {
		t.Fatal("a domain naming an unknown skill was accepted")
	}
	if h.e.Domain() != &clone {
		t.Fatal("a refused domain replaced the running one")
	}
}

// Bad messages are client mistakes with their own errors, never a panic.
func TestBadMessages(t *testing.T) {
	h := newHarness(t, lanes.DefaultConfig())
	for _, c := range []struct {
		m    Message
		want error
	}{
		{Message{Text: "你好"}, ErrBadMessage},
		{Message{User: "u", Text: "  "}, nlu.ErrEmpty},
		{Message{User: "u", Text: strings.Repeat("长", 300)}, nlu.ErrTooLong},
		{Message{User: strings.Repeat("u", 300), Text: "你好"}, ErrBadMessage},
		{Message{User: "u\xff", Text: "你好"}, ErrBadMessage},
	} {
		if _, err := h.e.Handle(context.Background(), c.m); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.m, err, c.want)
		}
	}
	h.e.deps.NLU = func() Parser { return nil }
	if _, err := h.e.Handle(context.Background(), Message{User: "u", Text: "你好"}); !errors.Is(err, ErrNoNLU) {
		t.Errorf("no NLU: %v", err)
	}
}

// Whatever a client sends, Handle answers or refuses; it never panics and
// the stored session stays readable.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{"你好", "算了", "继续刚才的问题", "转人工", "20241234567890", "{order_id}", "\x00", "運費"} {
		f.Add("u1", "", s)
	}
	f.Add("u2", "0123456789abcdef0123456789abcdef", "我要退货")
	h := newHarness(f, lanes.DefaultConfig())
	f.Fuzz(func(t *testing.T, user, sid, text string) {
		res, err := h.e.Handle(context.Background(), Message{User: user, SessionID: sid, Client: "key:fuzz", Text: text})
		if err != nil {
			for _, known := range []error{ErrBadMessage, nlu.ErrEmpty, nlu.ErrTooLong, nlu.ErrInvalidUTF8} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("Handle(%q, %q, %q): %v", user, sid, text, err)
		}
		if _, err := h.e.View(context.Background(), res.SessionID, 5); err != nil {
			t.Fatalf("view after the turn: %v", err)
		}
	})
}
