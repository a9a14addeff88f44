package telegram

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

const (
	testToken = "123456:TEST-token_abc"
	testBotID = 123456
	waitLong  = 10 * time.Second
)

// fakeAPI is an in-process Bot API that enforces what the real one does:
// the token in the path, JSON bodies, getUpdates offsets (confirmed updates
// are gone; unconfirmed ones come again), one poller at a time and none
// while a webhook is set (409), known chats, blocked users, MarkdownV2
// parsing, the 4096-character limit, and scripted failures (429 with
// retry_after, 5xx …).
type fakeAPI struct {
	t     testing.TB
	srv   *httptest.Server
	token string
	me    user

	mu       sync.Mutex
	updates  []fakeUpdate
	polling  bool
	webhook  map[string]json.RawMessage
	chats    map[int64]string // chat id → "" (ok) or "blocked"
	fails    map[string][]fakeFail
	badMD    int // MarkdownV2 sends to refuse with "can't parse entities"
	requests []fakeRequest
	sent     []map[string]json.RawMessage
	nextID   int64
	changed  chan struct{} // closed and replaced on every change
}

type fakeUpdate struct {
	id  int64
	raw json.RawMessage
}

type fakeRequest struct {
	method string
	params map[string]json.RawMessage
}

// fakeFail is a scripted answer for the next call of a method.
type fakeFail struct {
	status     int
	desc       string
	retryAfter int
	migrateTo  int64
}

func newFakeAPI(t testing.TB) *fakeAPI {
	f := &fakeAPI{
		t: t, token: testToken,
		me:      user{ID: testBotID, IsBot: true, FirstName: "Shop", Username: "ShopBot"},
		chats:   map[int64]string{42: "", -1001: "", 7: "blocked"},
		fails:   map[string][]fakeFail{},
		nextID:  1000,
		changed: make(chan struct{}),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// addUpdate queues an update (raw JSON with its update_id).
func (f *fakeAPI) addUpdate(raw string) {
	var u struct {
		UpdateID int64 `json:"update_id"`
	}
	if err := json.Unmarshal([]byte(raw), &u); err != nil {
		f.t.Fatalf("bad test update %s: %v", raw, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, fakeUpdate{u.UpdateID, json.RawMessage(raw)})
	f.notify()
}

func (f *fakeAPI) setToken(tok string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = tok
}

func (f *fakeAPI) failNext(method string, ff fakeFail) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[method] = append(f.fails[method], ff)
}

func (f *fakeAPI) setWebhook(url string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.webhook = map[string]json.RawMessage{"url": json.RawMessage(strconv.Quote(url))}
}

// calls returns the requests of method so far.
func (f *fakeAPI) calls(method string) []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRequest
	for _, r := range f.requests {
		if r.method == method {
			out = append(out, r)
		}
	}
	return out
}

// waitCalls waits until method was called at least n times.
func (f *fakeAPI) waitCalls(method string, n int) []fakeRequest {
	f.t.Helper()
	deadline := time.After(waitLong)
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if c := f.calls(method); len(c) >= n {
			return c
		}
		select {
		case <-ch:
		case <-deadline:
			f.t.Fatalf("%s called %d times, want %d", method, len(f.calls(method)), n)
		}
	}
}

// waitOffset waits for a getUpdates call with the given offset.
func (f *fakeAPI) waitOffset(offset int64) {
	f.t.Helper()
	deadline := time.After(waitLong)
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		for _, r := range f.calls("getUpdates") {
			if intParam(r.params, "offset") == offset {
				return
			}
		}
		select {
		case <-ch:
		case <-deadline:
			f.t.Fatalf("no getUpdates with offset %d; offsets: %v", offset, f.offsets())
		}
	}
}

func (f *fakeAPI) offsets() []int64 {
	var out []int64
	for _, r := range f.calls("getUpdates") {
		out = append(out, intParam(r.params, "offset"))
	}
	return out
}

func intParam(p map[string]json.RawMessage, k string) int64 {
	n, _ := strconv.ParseInt(string(p[k]), 10, 64)
	return n
}

func strParam(p map[string]json.RawMessage, k string) string {
	var s string
	_ = json.Unmarshal(p[k], &s)
	return s
}

func (f *fakeAPI) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAPI) fail(w http.ResponseWriter, ff fakeFail) {
	body := map[string]any{"ok": false, "error_code": ff.status, "description": ff.desc}
	params := map[string]any{}
	if ff.retryAfter > 0 {
		params["retry_after"] = ff.retryAfter
	}
	if ff.migrateTo != 0 {
		params["migrate_to_chat_id"] = ff.migrateTo
	}
	if len(params) > 0 {
		body["parameters"] = params
	}
	f.reply(w, ff.status, body)
}

func (f *fakeAPI) ok(w http.ResponseWriter, result any) {
	f.reply(w, http.StatusOK, map[string]any{"ok": true, "result": result})
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	tok, method, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		f.fail(w, fakeFail{status: 404, desc: "Not Found"})
		return
	}
	f.mu.Lock()
	want := f.token
	f.mu.Unlock()
	if tok != want {
		f.mu.Lock()
		f.requests = append(f.requests, fakeRequest{method: method})
		f.notify()
		f.mu.Unlock()
		f.fail(w, fakeFail{status: 401, desc: "Unauthorized"})
		return
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		f.fail(w, fakeFail{status: 400, desc: "Bad Request: this fake wants POST with a JSON body"})
		return
	}
	body, _ := io.ReadAll(r.Body)
	params := map[string]json.RawMessage{}
	if err := json.Unmarshal(body, &params); err != nil {
		f.fail(w, fakeFail{status: 400, desc: "Bad Request: invalid JSON"})
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{method, params})
	f.notify()
	if q := f.fails[method]; len(q) > 0 {
		f.fails[method] = q[1:]
		f.mu.Unlock()
		f.fail(w, q[0])
		return
	}
	f.mu.Unlock()
	switch method {
	case "getMe":
		f.ok(w, f.me)
	case "getUpdates":
		f.getUpdates(w, r, params)
	case "setWebhook":
		if !secretRe.MatchString(strParam(params, "secret_token")) || strParam(params, "url") == "" {
			f.fail(w, fakeFail{status: 400, desc: "Bad Request: bad webhook: secret token contains unallowed characters"})
			return
		}
		f.mu.Lock()
		f.webhook = params
		f.mu.Unlock()
		f.ok(w, true)
	case "deleteWebhook":
		f.mu.Lock()
		f.webhook = nil
		f.mu.Unlock()
		f.ok(w, true)
	case "sendMessage":
		f.sendMessage(w, params)
	default:
		f.fail(w, fakeFail{status: 404, desc: "Not Found"})
	}
}

func (f *fakeAPI) getUpdates(w http.ResponseWriter, r *http.Request, params map[string]json.RawMessage) {
	offset := intParam(params, "offset")
	timeout := time.Duration(intParam(params, "timeout")) * time.Second
	var allowed []string
	_ = json.Unmarshal(params["allowed_updates"], &allowed)
	f.mu.Lock()
	if f.webhook != nil {
		f.mu.Unlock()
		f.fail(w, fakeFail{status: 409, desc: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"})
		return
	}
	if f.polling {
		f.mu.Unlock()
		f.fail(w, fakeFail{status: 409, desc: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"})
		return
	}
	if !strings.Contains(strings.Join(allowed, ","), "message") {
		f.mu.Unlock()
		f.fail(w, fakeFail{status: 400, desc: "Bad Request: this fake wants allowed_updates with message"})
		return
	}
	f.polling = true
	// Confirm: updates below offset are gone for good.
	if offset > 0 {
		keep := f.updates[:0]
		for _, u := range f.updates {
			if u.id >= offset {
				keep = append(keep, u)
			}
		}
		f.updates = keep
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(f.updates) == 0 {
		ch := f.changed
		f.mu.Unlock()
		done := false
		select {
		case <-ch:
		case <-deadline.C:
			done = true
		case <-r.Context().Done():
			done = true
		}
		f.mu.Lock()
		if done {
			break
		}
	}
	batch := make([]json.RawMessage, 0, len(f.updates))
	for _, u := range f.updates {
		batch = append(batch, u.raw)
	}
	f.polling = false
	f.notify()
	f.mu.Unlock()
	f.ok(w, batch)
}

func (f *fakeAPI) sendMessage(w http.ResponseWriter, p map[string]json.RawMessage) {
	chatID := intParam(p, "chat_id")
	text := strParam(p, "text")
	mode := strParam(p, "parse_mode")
	f.mu.Lock()
	defer f.mu.Unlock()
	state, known := f.chats[chatID]
	switch {
	case strings.TrimSpace(text) == "":
		f.fail(w, fakeFail{status: 400, desc: "Bad Request: message text is empty"})
		return
	case !known:
		f.fail(w, fakeFail{status: 400, desc: "Bad Request: chat not found"})
		return
	case state == "blocked":
		f.fail(w, fakeFail{status: 403, desc: "Forbidden: bot was blocked by the user"})
		return
	}
	shown := text
	if mode == "MarkdownV2" {
		if f.badMD > 0 {
			f.badMD--
			f.fail(w, fakeFail{status: 400, desc: "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'"})
			return
		}
		if err := checkMarkdownV2(text); err != nil {
			f.fail(w, fakeFail{status: 400, desc: "Bad Request: can't parse entities: " + err.Error()})
			return
		}
		shown = plainMarkdownV2(text)
	} else if mode != "" {
		f.fail(w, fakeFail{status: 400, desc: "Bad Request: unsupported parse_mode " + mode})
		return
	}
	if len(utf16.Encode([]rune(shown))) > 4096 {
		f.fail(w, fakeFail{status: 400, desc: "Bad Request: message is too long"})
		return
	}
	f.nextID++
	f.sent = append(f.sent, p)
	f.ok(w, map[string]any{"message_id": f.nextID, "date": time.Now().Unix(), "chat": map[string]any{"id": chatID, "type": "private"}, "text": shown})
}

// testConfig is a valid enabled configuration against base.
func testConfig(base string) Config {
	c := DefaultConfig()
	c.Enabled = true
	c.Token = config.NewSecret(testToken)
	c.BaseURL = base
	c.PollTimeout = 5 * time.Second
	return c
}

// newTestAdapter builds an adapter with short retry delays.
func newTestAdapter(t testing.TB, cfg Config) *Adapter {
	t.Helper()
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a.backoff = channels.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	a.slowRetry = 20 * time.Millisecond
	a.idleDelay = 20 * time.Millisecond
	return a
}

func startAdapter(t testing.TB, a *Adapter, sink channels.Sink) {
	t.Helper()
	if err := a.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

// flakySink fails Deliver for the keys in failKeys (each once) and counts
// every call; the rest goes to a channelstest.Sink.
type flakySink struct {
	*channelstest.Sink
	mu       sync.Mutex
	failKeys map[string]int
	calls    int
	called   chan struct{}
}

func newFlakySink() *flakySink {
	return &flakySink{Sink: channelstest.NewSink(), failKeys: map[string]int{}, called: make(chan struct{}, 100)}
}

func (s *flakySink) Deliver(ctx context.Context, m *channels.Message) error {
	s.mu.Lock()
	s.calls++
	fail := s.failKeys[m.Key()] > 0
	if fail {
		s.failKeys[m.Key()]--
	}
	s.mu.Unlock()
	defer func() {
		select {
		case s.called <- struct{}{}:
		default: // a wake-up is already pending
		}
	}()
	if fail {
		return fmt.Errorf("store busy")
	}
	return s.Sink.Deliver(ctx, m)
}

// waitCalls waits for n Deliver calls in all.
func (s *flakySink) waitCalls(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(waitLong)
	for {
		s.mu.Lock()
		c := s.calls
		s.mu.Unlock()
		if c >= n {
			return
		}
		select {
		case <-s.called:
		case <-deadline:
			t.Fatalf("Deliver called %d times, want %d", c, n)
		}
	}
}
