package feishu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// fakeOpen is an in-process Feishu open platform: it issues expiring
// tenant_access_tokens, checks the bearer on every call, checks the message
// bodies and deduplicates on uuid like the real one.
type fakeOpen struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	expire     int // seconds, in token answers
	tokenCalls int
	tokens     map[string]bool
	byUUID     map[string]string // uuid → message_id
	sends      []map[string]any  // accepted request bodies (plus "path")
	limitOnce  int               // answer the next message call with this rate limit (429 or 99991400)
}

func newFakeOpen(t *testing.T) *fakeOpen {
	f := &fakeOpen{t: t, expire: 7200, tokens: map[string]bool{}, byUUID: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+tokenPath, f.token)
	mux.HandleFunc("POST /open-apis/im/v1/messages", f.message)
	mux.HandleFunc("POST /open-apis/im/v1/messages/{id}/reply", f.message)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeOpen) token(w http.ResponseWriter, r *http.Request) {
	var req map[string]string
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		answer(w, 400, map[string]any{"code": 9499, "msg": "bad json"})
		return
	}
	if req["app_id"] != testAppID || req["app_secret"] != testSecret {
		answer(w, 200, map[string]any{"code": 10014, "msg": "app secret invalid"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenCalls++
	tok := fmt.Sprintf("t-%d", f.tokenCalls)
	f.tokens[tok] = true
	answer(w, 200, map[string]any{"code": 0, "msg": "ok", "tenant_access_token": tok, "expire": f.expire})
}

// revoke makes every token issued so far invalid.
func (f *fakeOpen) revoke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]bool{}
}

func (f *fakeOpen) message(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !f.tokens[tok] {
		answer(w, 400, map[string]any{"code": codeTokenInvalid, "msg": "Invalid access token for authorization."})
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		answer(w, 400, map[string]any{"code": 9499, "msg": "bad json"})
		return
	}
	reply := r.PathValue("id") != ""
	if !reply {
		if typ := r.URL.Query().Get("receive_id_type"); typ != "chat_id" && typ != "open_id" {
			answer(w, 400, map[string]any{"code": 99992402, "msg": "field validation failed: receive_id_type"})
			return
		}
		switch body["receive_id"] {
		case nil, "":
			answer(w, 400, map[string]any{"code": 99992402, "msg": "receive_id required"})
			return
		case "oc_unknown":
			answer(w, 400, map[string]any{"code": 230001, "msg": "invalid receive_id"})
			return
		case "oc_boom":
			answer(w, 500, map[string]any{"code": 1, "msg": "internal error"})
			return
		}
	}
	uuid, _ := body["uuid"].(string)
	cont, _ := body["content"].(string)
	var c map[string]any
	if uuid == "" || len(uuid) > 50 || json.Unmarshal([]byte(cont), &c) != nil {
		answer(w, 400, map[string]any{"code": 230001, "msg": "bad uuid or content"})
		return
	}
	switch body["msg_type"] {
	case "text":
		if _, ok := c["text"].(string); !ok {
			answer(w, 400, map[string]any{"code": 230001, "msg": "text content without text"})
			return
		}
	case "post":
		if _, ok := c["zh_cn"].(map[string]any)["content"].([]any); !ok {
			answer(w, 400, map[string]any{"code": 230001, "msg": "post content without zh_cn.content"})
			return
		}
	default:
		answer(w, 400, map[string]any{"code": 230001, "msg": "msg_type"})
		return
	}
	switch f.limitOnce {
	case 429:
		f.limitOnce = 0
		w.Header().Set("x-ogw-ratelimit-reset", "3")
		answer(w, 429, map[string]any{"code": codeRateLimited, "msg": "too many requests"})
		return
	case codeRateLimited:
		f.limitOnce = 0
		answer(w, 200, map[string]any{"code": codeRateLimited, "msg": "too many requests"})
		return
	}
	id, dup := f.byUUID[uuid]
	if !dup {
		id = fmt.Sprintf("om_sent_%d", len(f.byUUID)+1)
		f.byUUID[uuid] = id
		body["path"] = r.URL.Path
		f.sends = append(f.sends, body)
	}
	answer(w, 200, map[string]any{"code": 0, "msg": "success", "data": map[string]string{"message_id": id}})
}

func (f *fakeOpen) counts() (tokenCalls, sends int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenCalls, len(f.sends)
}

// clock is an adjustable test clock.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return fixedNow.Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

func newSendAdapter(t *testing.T, f *fakeOpen) (*Adapter, *clock) {
	cfg := testConfig()
	cfg.BaseURL = f.srv.URL
	a := newTestAdapter(t, cfg)
	c := &clock{}
	a.now = c.now
	return a, c
}

func TestSendTextReplyAndMarkdown(t *testing.T) {
	f := newFakeOpen(t)
	a, _ := newSendAdapter(t, f)
	ctx := t.Context()
	rc, err := a.Send(ctx, &channels.Outgoing{Key: "k1", Conversation: "oc_chat", ConversationType: channels.Group, Text: "你好 \"world\""})
	if err != nil || rc.PlatformID != "om_sent_1" {
		t.Fatalf("send: %+v %v", rc, err)
	}
	rc, err = a.Send(ctx, &channels.Outgoing{Key: "k2", Conversation: "oc_chat", ReplyTo: "om_in", Text: "**bold**", Markdown: true})
	if err != nil || rc.PlatformID != "om_sent_2" {
		t.Fatalf("reply: %+v %v", rc, err)
	}
	long := strings.Repeat("k", 64)
	if _, err := a.Send(ctx, &channels.Outgoing{Key: long, Recipient: "ou_alice", Text: "dm"}); err != nil {
		t.Fatalf("to open_id: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sends
	if s[0]["path"] != "/open-apis/im/v1/messages" || s[0]["receive_id"] != "oc_chat" || s[0]["uuid"] != "k1" ||
		s[0]["msg_type"] != "text" || s[0]["content"] != `{"text":"你好 \"world\""}` {
		t.Fatalf("send body %+v", s[0])
	}
	if s[1]["path"] != "/open-apis/im/v1/messages/om_in/reply" || s[1]["msg_type"] != "post" || s[1]["uuid"] != "k2" ||
		s[1]["content"] != `{"zh_cn":{"content":[[{"tag":"md","text":"**bold**"}]]}}` {
		t.Fatalf("reply body %+v", s[1])
	}
	if u := s[2]["uuid"].(string); u == long || len(u) > 50 || s[2]["receive_id"] != "ou_alice" {
		t.Fatalf("open_id send %+v", s[2])
	}
}

func TestSendIdempotentOnKey(t *testing.T) {
	f := newFakeOpen(t)
	a, _ := newSendAdapter(t, f)
	if !a.IdempotentSend() {
		t.Fatal("app sends are idempotent")
	}
	out := &channels.Outgoing{Key: "same", Conversation: "oc_chat", Text: "once"}
	r1, err1 := a.Send(t.Context(), out)
	r2, err2 := a.Send(t.Context(), out)
	if err1 != nil || err2 != nil || r1 != r2 {
		t.Fatalf("%v %v %v %v", r1, r2, err1, err2)
	}
	if _, sends := f.counts(); sends != 1 {
		t.Fatalf("%d messages reached the chat", sends)
	}
}

func TestSendTokenLifecycle(t *testing.T) {
	f := newFakeOpen(t)
	a, c := newSendAdapter(t, f)
	send := func(key string) {
		t.Helper()
		if _, err := a.Send(t.Context(), &channels.Outgoing{Key: key, Conversation: "oc_chat", Text: "x"}); err != nil {
			t.Fatalf("send %s: %v", key, err)
		}
	}
	send("a")
	send("b")
	if calls, _ := f.counts(); calls != 1 {
		t.Fatalf("%d token fetches, want 1 (cached)", calls)
	}
	// 5 minutes before expiry the token is refreshed.
	c.advance(7200*time.Second - 5*time.Minute + time.Second)
	send("c")
	if calls, _ := f.counts(); calls != 2 {
		t.Fatalf("%d token fetches, want 2 (refreshed before expiry)", calls)
	}
	// The platform invalidates it early: one refresh and a retry.
	f.revoke()
	send("d")
	if calls, sends := f.counts(); calls != 3 || sends != 4 {
		t.Fatalf("%d token fetches / %d sends, want 3 / 4", calls, sends)
	}
	// Short-lived tokens refresh at 10% before expiry.
	f.mu.Lock()
	f.expire = 100
	f.mu.Unlock()
	f.revoke()
	send("e") // fetch 4 (expire 100 s)
	c.advance(89 * time.Second)
	send("f")
	c.advance(2 * time.Second) // 91 s: within the last 10 s
	send("g")
	if calls, _ := f.counts(); calls != 5 {
		t.Fatalf("%d token fetches, want 5", calls)
	}
}

func TestSendTokenSingleFlight(t *testing.T) {
	f := newFakeOpen(t)
	a, _ := newSendAdapter(t, f)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := a.Send(context.Background(), &channels.Outgoing{Key: fmt.Sprint("p", i), Conversation: "oc_chat", Text: "x"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if calls, sends := f.counts(); calls != 1 || sends != 20 {
		t.Fatalf("%d token fetches / %d sends, want 1 / 20", calls, sends)
	}
}

func TestSendErrorMapping(t *testing.T) {
	f := newFakeOpen(t)
	a, _ := newSendAdapter(t, f)
	send := func(conv string) error {
		_, err := a.Send(t.Context(), &channels.Outgoing{Key: "e-" + conv, Conversation: conv, Text: "x"})
		return err
	}
	f.mu.Lock()
	f.limitOnce = 429
	f.mu.Unlock()
	var ra *channels.RetryAfterError
	if err := send("oc_chat"); !errors.As(err, &ra) || ra.After != 3*time.Second {
		t.Fatalf("429: %v", err)
	}
	if err := send("oc_chat"); err != nil {
		t.Fatalf("after 429: %v", err)
	}
	f.mu.Lock()
	f.limitOnce = codeRateLimited
	f.mu.Unlock()
	if err := send("oc_chat2"); !errors.As(err, &ra) || ra.After != time.Second {
		t.Fatalf("99991400: %v", err)
	}
	if err := send("oc_unknown"); !errors.Is(err, channels.ErrPermanent) {
		t.Fatalf("230001: %v", err)
	}
	err := send("oc_boom")
	if err == nil || errors.Is(err, channels.ErrPermanent) || errors.As(err, &ra) {
		t.Fatalf("500: %v", err)
	}
	if _, err := a.Send(t.Context(), &channels.Outgoing{Key: "nowhere", Text: "x"}); !errors.Is(err, channels.ErrPermanent) {
		t.Fatalf("no destination: %v", err)
	}
	if st := a.State(); st.LastError == "" {
		t.Fatal("send errors not in State")
	}
	// Wrong credentials: permanent, with advice.
	cfg := testConfig()
	cfg.BaseURL, cfg.AppSecret = f.srv.URL, config.NewSecret("wrong")
	b := newTestAdapter(t, cfg)
	_, err = b.Send(t.Context(), &channels.Outgoing{Key: "x", Conversation: "oc_chat", Text: "x"})
	if !errors.Is(err, channels.ErrPermanent) || !strings.Contains(err.Error(), "app_secret") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("bad credentials: %v", err)
	}
	// Network failure: plain.
	f.srv.Close()
	if err := send("oc_chat3"); err == nil || errors.Is(err, channels.ErrPermanent) {
		t.Fatalf("network: %v", err)
	}
}

func TestLimits(t *testing.T) {
	a := newTestAdapter(t, testConfig())
	l := a.Limits()
	if l.MaxText != 4000 || l.Unit != channels.Runes || l.PerChat != (channels.Rate{N: 5, Per: time.Second}) || l.Global != (channels.Rate{N: 50, Per: time.Second}) {
		t.Fatalf("limits %+v", l)
	}
}

// fakeGroupBot checks a custom group bot's signature like Feishu.
func fakeGroupBot(t *testing.T, secret string) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var texts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Timestamp string `json:"timestamp"`
			Sign      string `json:"sign"`
			MsgType   string `json:"msg_type"`
			Content   struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		if r.URL.Path != "/open-apis/bot/v2/hook/hook-token" || json.NewDecoder(r.Body).Decode(&body) != nil || body.MsgType != "text" {
			answer(w, 400, map[string]any{"code": 9499, "msg": "Bad Request"})
			return
		}
		var ts int64
		fmt.Sscan(body.Timestamp, &ts)
		if d := fixedNow.Unix() - ts; d > 3600 || d < -3600 || body.Sign != groupBotSign(ts, secret) {
			answer(w, 200, map[string]any{"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"})
			return
		}
		if body.Content.Text == "flood" {
			answer(w, 200, map[string]any{"code": codeBotRateLimited, "msg": "frequency limited"})
			return
		}
		mu.Lock()
		texts = append(texts, body.Content.Text)
		mu.Unlock()
		answer(w, 200, map[string]any{"code": 0, "msg": "success", "data": map[string]any{}})
	}))
	t.Cleanup(srv.Close)
	return srv, &texts
}

func TestSendGroupBot(t *testing.T) {
	srv, texts := fakeGroupBot(t, "gb-secret")
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.GroupBot = GroupBot{WebhookURL: config.NewSecret(srv.URL + "/open-apis/bot/v2/hook/hook-token"), Secret: config.NewSecret("gb-secret")}
	a := newTestAdapter(t, cfg)
	if a.IdempotentSend() || len(a.Routes()) != 0 {
		t.Fatal("a group bot alone is neither idempotent nor has routes")
	}
	if _, err := a.Send(t.Context(), &channels.Outgoing{Key: "g1", Conversation: "anything", Text: "通知"}); err != nil {
		t.Fatal(err)
	}
	if len(*texts) != 1 || (*texts)[0] != "通知" {
		t.Fatalf("texts %q", *texts)
	}
	var ra *channels.RetryAfterError
	if _, err := a.Send(t.Context(), &channels.Outgoing{Key: "g2", Text: "flood"}); !errors.As(err, &ra) {
		t.Fatalf("rate limited: %v", err)
	}
	cfg.GroupBot.Secret = config.NewSecret("wrong")
	b := newTestAdapter(t, cfg)
	_, err := b.Send(t.Context(), &channels.Outgoing{Key: "g3", Text: "x"})
	if !errors.Is(err, channels.ErrPermanent) || strings.Contains(err.Error(), "hook-token") {
		t.Fatalf("bad sign: %v", err)
	}
	// With an app configured, GroupBotConversation picks the group bot.
	f := newFakeOpen(t)
	cfg2 := testConfig()
	cfg2.BaseURL = f.srv.URL
	cfg2.GroupBot = cfg.GroupBot
	cfg2.GroupBot.Secret = config.NewSecret("gb-secret")
	c := newTestAdapter(t, cfg2)
	if _, err := c.Send(t.Context(), &channels.Outgoing{Key: "g4", Conversation: GroupBotConversation, Text: "to the group"}); err != nil {
		t.Fatal(err)
	}
	if _, sends := f.counts(); sends != 0 || len(*texts) != 2 {
		t.Fatalf("app sends %d, bot texts %q", sends, *texts)
	}
}
