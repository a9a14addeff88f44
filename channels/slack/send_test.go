package slack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// fakeWebAPI is chat.postMessage and auth.test as Slack answers them: a
// wrong token is invalid_auth, the body must be JSON, and the test's
// channels choose the failure.
type fakeWebAPI struct {
	t  *testing.T
	mu sync.Mutex
	// posts are the accepted chat.postMessage bodies.
	posts []postMessage
	// limited counts 429s already given per channel.
	limited map[string]int
}

func newFakeWebAPI(t *testing.T) (*fakeWebAPI, *httptest.Server) {
	f := &fakeWebAPI{t: t, limited: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeWebAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(v)
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Authorization") != "Bearer xoxb-test" {
		reply(map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	switch r.URL.Path {
	case "/api/auth.test":
		reply(map[string]any{"ok": true, "user_id": "UFROMAUTH", "bot_id": "B1", "team_id": "T1"})
	case "/api/chat.postMessage":
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			reply(map[string]any{"ok": false, "error": "invalid_arguments"})
			return
		}
		var p postMessage
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			reply(map[string]any{"ok": false, "error": "invalid_json"})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		switch p.Channel {
		case "C429":
			if f.limited[p.Channel] == 0 {
				f.limited[p.Channel]++
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
		case "CRATE":
			w.Header().Set("Retry-After", "3")
			reply(map[string]any{"ok": false, "error": "ratelimited"})
			return
		case "CNOTFOUND":
			reply(map[string]any{"ok": false, "error": "channel_not_found"})
			return
		case "CARCHIVED":
			reply(map[string]any{"ok": false, "error": "is_archived"})
			return
		case "CINTERNAL":
			reply(map[string]any{"ok": false, "error": "internal_error"})
			return
		case "C500":
			http.Error(w, "oops", http.StatusBadGateway)
			return
		case "C403":
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		case "CHTML":
			_, _ = w.Write([]byte("<html>gateway</html>"))
			return
		}
		f.posts = append(f.posts, p)
		reply(map[string]any{"ok": true, "channel": p.Channel, "ts": "1700000000.000100", "message": map[string]any{"text": p.Text}})
	default:
		reply(map[string]any{"ok": false, "error": "unknown_method"})
	}
}

func newSendAdapter(t *testing.T, base, token string) *Adapter {
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.BotToken = config.NewSecret(token)
	cfg.SigningSecret = config.NewSecret(testSecret)
	cfg.APIBase = base
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSend(t *testing.T) {
	f, srv := newFakeWebAPI(t)
	a := newSendAdapter(t, srv.URL+"/api/", "xoxb-test")
	ctx := context.Background()

	rc, err := a.Send(ctx, &channels.Outgoing{Conversation: "C1", Thread: "1699999999.000001", Text: "**Order** <42> & [track](https://t.test/?a=1&b=2)", Markdown: true})
	if err != nil {
		t.Fatal(err)
	}
	if rc.PlatformID != "C1:1700000000.000100" {
		t.Fatalf("receipt %q", rc.PlatformID)
	}
	if _, err := a.Send(ctx, &channels.Outgoing{Conversation: "D1", Text: "a *b* <c>"}); err != nil {
		t.Fatal(err)
	}
	want := []postMessage{
		{Channel: "C1", Text: "*Order* &lt;42&gt; &amp; <https://t.test/?a=1&amp;b=2|track>", ThreadTS: "1699999999.000001", Mrkdwn: true},
		{Channel: "D1", Text: "a *b* &lt;c&gt;"},
	}
	if len(f.posts) != 2 || f.posts[0] != want[0] || f.posts[1] != want[1] {
		t.Fatalf("posts\n got %+v\nwant %+v", f.posts, want)
	}

	// 429 once, with Retry-After: the hub waits, then the next try passes.
	_, err = a.Send(ctx, &channels.Outgoing{Conversation: "C429", Text: "x"})
	var ra *channels.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 7*time.Second {
		t.Fatalf("429: %v", err)
	}
	if _, err := a.Send(ctx, &channels.Outgoing{Conversation: "C429", Text: "x"}); err != nil {
		t.Fatalf("after 429: %v", err)
	}
	if a.State().LastError == "" {
		t.Fatal("send error not in state")
	}
}

func TestSendErrors(t *testing.T) {
	_, srv := newFakeWebAPI(t)
	a := newSendAdapter(t, srv.URL+"/api", "xoxb-test")
	bad := newSendAdapter(t, srv.URL+"/api", "xoxb-wrong")
	ctx := context.Background()
	cases := []struct {
		name      string
		a         *Adapter
		chat      string
		permanent bool
		retry     time.Duration
		code      string
	}{
		{"ratelimited", a, "CRATE", false, 3 * time.Second, "ratelimited"},
		{"channel_not_found", a, "CNOTFOUND", true, 0, "channel_not_found"},
		{"is_archived", a, "CARCHIVED", true, 0, "is_archived"},
		{"invalid_auth", bad, "C1", true, 0, "invalid_auth"},
		{"internal_error", a, "CINTERNAL", false, 0, "internal_error"},
		{"5xx", a, "C500", false, 0, ""},
		{"403", a, "C403", true, 0, ""},
		{"not json", a, "CHTML", false, 0, ""},
		{"no conversation", a, "", true, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.a.Send(ctx, &channels.Outgoing{Conversation: c.chat, Text: "x"})
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, channels.ErrPermanent); got != c.permanent {
				t.Fatalf("permanent = %v: %v", got, err)
			}
			var ra *channels.RetryAfterError
			if got := errors.As(err, &ra); got != (c.retry > 0) || (got && ra.After != c.retry) {
				t.Fatalf("retry after: %v", err)
			}
			var ae *APIError
			if c.code != "" && (!errors.As(err, &ae) || ae.Code != c.code || ae.Method != "chat.postMessage") {
				t.Fatalf("api error: %v", err)
			}
		})
	}
	t.Run("network", func(t *testing.T) {
		down := newSendAdapter(t, "http://127.0.0.1:1/api", "xoxb-test")
		_, err := down.Send(ctx, &channels.Outgoing{Conversation: "C1", Text: "x"})
		var ra *channels.RetryAfterError
		if err == nil || errors.Is(err, channels.ErrPermanent) || errors.As(err, &ra) {
			t.Fatalf("network: %v", err)
		}
	})
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Unix(testNow, 0)
	for v, want := range map[string]time.Duration{
		"":     time.Second,
		"0":    time.Second,
		"12":   12 * time.Second,
		"x":    time.Second,
		"9999": time.Hour,
		now.Add(30 * time.Second).UTC().Format(http.TimeFormat): 30 * time.Second,
	} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		if got := retryAfter(h, now); got != want {
			t.Errorf("Retry-After %q = %s, want %s", v, got, want)
		}
	}
}

func TestFormatText(t *testing.T) {
	cases := []struct {
		in   string
		md   bool
		want string
	}{
		{"a < b & c > d", false, "a &lt; b &amp; c &gt; d"},
		{"**bold** *it*", false, "**bold** *it*"},
		{"**bold** and __also__", true, "*bold* and *also*"},
		{"*italic* ~~gone~~", true, "_italic_ ~gone~"},
		{"# Title\nbody", true, "*Title*\nbody"},
		{"see [docs](https://d.test/x)", true, "see <https://d.test/x|docs>"},
		{"`**not**` and ```\n**code**\n``` **yes**", true, "`**not**` and ```\n**code**\n``` *yes*"},
		{"* list item\n* two", true, "* list item\n* two"},
		{"5 * 3 * 2", true, "5 * 3 * 2"},
	}
	for _, c := range cases {
		if got := formatText(c.in, c.md); got != c.want {
			t.Errorf("formatText(%q, %v) = %q, want %q", c.in, c.md, got, c.want)
		}
	}
}

func TestStartAuthTest(t *testing.T) {
	_, srv := newFakeWebAPI(t)
	a := newSendAdapter(t, srv.URL+"/api", "xoxb-test")
	if err := a.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if a.botUser() != "UFROMAUTH" {
		t.Fatalf("bot user %q", a.botUser())
	}
	if err := a.Start(context.Background(), nil); !errors.Is(err, ErrAlreadyStarted) {
		t.Fatalf("second Start: %v", err)
	}
	_ = a.Stop(context.Background())

	bad := newSendAdapter(t, srv.URL+"/api", "xoxb-wrong")
	err := bad.Start(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "invalid_auth") || !strings.Contains(err.Error(), "bot_token") {
		t.Fatalf("bad token Start: %v", err)
	}
	_ = bad.Stop(context.Background())
}
