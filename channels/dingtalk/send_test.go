package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

func hookHandle(f *fakeDT, expires time.Time) channels.Handle {
	return channels.Handle{
		URL:     f.srv.URL + "/robot/sendBySession?session=s-1",
		Expires: expires,
		Extra:   map[string]string{ExtraRobotCode: testRobotCode, ExtraConversationType: "1", ExtraSenderStaffID: "staff-1"},
	}
}

func TestSendSessionWebhook(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeStream)
	ctx := context.Background()
	out := &channels.Outgoing{Conversation: "cid1", ConversationType: channels.Direct, Text: "您好", Handle: hookHandle(f, time.Now().Add(time.Hour))}
	rc, err := a.Send(ctx, out)
	if err != nil || rc.PlatformID != "" {
		t.Fatalf("send = %+v, %v", rc, err)
	}
	out.Markdown, out.Text = true, "## 订单状态：已发货，预计明天送达，请注意查收\n详情见下"
	if _, err := a.Send(ctx, out); err != nil {
		t.Fatal(err)
	}
	s := f.sends()
	if len(s) != 2 || s[0].path != "/robot/sendBySession" || s[0].body["text"].(map[string]any)["content"] != "您好" {
		t.Fatalf("sends %+v", s)
	}
	md := s[1].body["markdown"].(map[string]any)
	if md["title"] != "订单状态：已发货，预计明天送达，请注意查" || md["text"] != out.Text {
		t.Errorf("markdown %+v", md)
	}
	if f.tokenFetches() != 0 {
		t.Errorf("sessionWebhook send fetched a token")
	}
}

func TestSendOpenAPI(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeStream)
	ctx := context.Background()
	// The webhook expires within the margin: the OpenAPI is used. The fake
	// expires the first token on the first send: one refresh.
	out := &channels.Outgoing{Conversation: "cid1", ConversationType: channels.Direct, Text: "hi", Handle: hookHandle(f, time.Now().Add(30*time.Second))}
	if _, err := a.accessToken(ctx, ""); err != nil { // cache tok-1
		t.Fatal(err)
	}
	f.mu.Lock()
	f.expireNext = true
	f.mu.Unlock()
	rc, err := a.Send(ctx, out)
	if err != nil || rc.PlatformID != "pqk-1" {
		t.Fatalf("send = %+v, %v", rc, err)
	}
	if n := f.tokenFetches(); n != 2 {
		t.Errorf("token fetched %d times, want 2 (one refresh after 401)", n)
	}
	// Group chat, markdown, no handle at all.
	g := &channels.Outgoing{Conversation: "cidGROUP==", ConversationType: channels.Group, Text: "**hi**", Markdown: true}
	if rc, err := a.Send(ctx, g); err != nil || rc.PlatformID != "pqk-2" {
		t.Fatalf("group send = %+v, %v", rc, err)
	}
	s := f.sends()
	if len(s) != 2 {
		t.Fatalf("sends %+v", s)
	}
	if s[0].path != batchSendPath || s[0].token != "tok-2" || fmt.Sprint(s[0].body["userIds"]) != "[staff-1]" ||
		s[0].body["robotCode"] != testRobotCode || s[0].body["msgKey"] != "sampleText" || s[0].body["msgParam"] != `{"content":"hi"}` {
		t.Errorf("batchSend %+v", s[0])
	}
	if s[1].path != groupSendPath || s[1].body["openConversationId"] != "cidGROUP==" || s[1].body["msgKey"] != "sampleMarkdown" {
		t.Errorf("group send %+v", s[1])
	}
	var p map[string]string
	_ = json.Unmarshal([]byte(s[1].body["msgParam"].(string)), &p)
	if p["title"] == "" || p["text"] != "**hi**" {
		t.Errorf("msgParam %+v", p)
	}
	if n := f.tokenFetches(); n != 2 {
		t.Errorf("token fetched %d times, want 2 (cached)", n)
	}
}

func TestSendTokenSingleFlight(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeStream)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Send(context.Background(), &channels.Outgoing{Conversation: fmt.Sprintf("cid%d", i), ConversationType: channels.Group, Text: "x"})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.tokenFetches(); n != 1 {
		t.Errorf("token fetched %d times, want 1", n)
	}
}

func TestSendTokenRefreshBeforeExpiry(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeStream)
	now := time.Now()
	a.now = func() time.Time { return now }
	ctx := context.Background()
	if tok, _ := a.accessToken(ctx, ""); tok != "tok-1" {
		t.Fatalf("token %q", tok)
	}
	now = now.Add(2*time.Hour - 6*time.Minute)
	if tok, _ := a.accessToken(ctx, ""); tok != "tok-1" {
		t.Fatalf("token %q, want the cached one", tok)
	}
	now = now.Add(2 * time.Minute) // within 5 minutes of expiry
	if tok, _ := a.accessToken(ctx, ""); tok != "tok-2" {
		t.Fatalf("token %q, want a fresh one", tok)
	}
}

func TestSendErrors(t *testing.T) {
	group := func() *channels.Outgoing {
		return &channels.Outgoing{Conversation: "cidG", ConversationType: channels.Group, Text: "x"}
	}
	for _, tc := range []struct {
		name      string
		setup     func(f *fakeDT, a *Adapter)
		out       func(f *fakeDT) *channels.Outgoing
		retry     time.Duration // RetryAfter wanted
		permanent bool
	}{
		{name: "429", setup: func(f *fakeDT, a *Adapter) {
			f.failSend = &fakeAnswer{429, map[string]string{"Retry-After": "3"}, `{"code":"Throttling","message":"slow down"}`}
		}, out: func(*fakeDT) *channels.Outgoing { return group() }, retry: 3 * time.Second},
		{name: "qps limit", setup: func(f *fakeDT, a *Adapter) {
			f.failSend = &fakeAnswer{403, nil, `{"code":"Forbidden.AccessDenied.QpsLimitForApi","message":"qps"}`}
		}, out: func(*fakeDT) *channels.Outgoing { return group() }, retry: time.Second},
		{name: "400", setup: func(f *fakeDT, a *Adapter) {
			f.failSend = &fakeAnswer{400, nil, `{"code":"param.invalid","message":"bad openConversationId"}`}
		}, out: func(*fakeDT) *channels.Outgoing { return group() }, permanent: true},
		{name: "500", setup: func(f *fakeDT, a *Adapter) {
			f.failSend = &fakeAnswer{500, nil, `{"code":"InternalError"}`}
		}, out: func(*fakeDT) *channels.Outgoing { return group() }},
		{name: "bad app secret", setup: func(f *fakeDT, a *Adapter) {
			a.cfg.ClientSecret = channelsSecret("wrong")
		}, out: func(*fakeDT) *channels.Outgoing { return group() }, permanent: true},
		{name: "token 429", setup: func(f *fakeDT, a *Adapter) {
			f.failToken = &fakeAnswer{429, map[string]string{"Retry-After": "7"}, `{}`}
		}, out: func(*fakeDT) *channels.Outgoing { return group() }, retry: 7 * time.Second},
		{name: "webhook too fast", setup: func(f *fakeDT, a *Adapter) {
			f.failHook = &fakeAnswer{200, nil, `{"errcode":130101,"errmsg":"send too fast"}`}
		}, out: func(f *fakeDT) *channels.Outgoing {
			return &channels.Outgoing{Conversation: "c", ConversationType: channels.Direct, Text: "x", Handle: hookHandle(f, time.Now().Add(time.Hour))}
		}, retry: time.Minute},
		{name: "webhook 502", setup: func(f *fakeDT, a *Adapter) {
			f.failHook = &fakeAnswer{502, nil, `bad gateway`}
		}, out: func(f *fakeDT) *channels.Outgoing {
			return &channels.Outgoing{Conversation: "c", ConversationType: channels.Direct, Text: "x", Handle: hookHandle(f, time.Now().Add(time.Hour))}
		}},
		{name: "no route", out: func(*fakeDT) *channels.Outgoing {
			return &channels.Outgoing{Conversation: "c", ConversationType: channels.Direct, Text: "x"}
		}, permanent: true},
		{name: "empty", out: func(*fakeDT) *channels.Outgoing { return &channels.Outgoing{Conversation: "c", Text: " "} }, permanent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDT(t)
			a := newTestAdapter(t, f, ModeStream)
			if tc.setup != nil {
				f.mu.Lock()
				tc.setup(f, a)
				f.mu.Unlock()
			}
			_, err := a.Send(context.Background(), tc.out(f))
			if err == nil {
				t.Fatal("no error")
			}
			var ra *channels.RetryAfterError
			isRA := errors.As(err, &ra)
			switch {
			case tc.retry > 0 && (!isRA || ra.After != tc.retry):
				t.Errorf("err %v: want RetryAfter %s", err, tc.retry)
			case tc.retry == 0 && isRA:
				t.Errorf("err %v: unexpected RetryAfter", err)
			case errors.Is(err, channels.ErrPermanent) != tc.permanent:
				t.Errorf("err %v: permanent = %v, want %v", err, !tc.permanent, tc.permanent)
			}
			if strings.Contains(err.Error(), testClientSecret) || strings.Contains(err.Error(), "session=") {
				t.Errorf("error leaks a secret: %v", err)
			}
			if a.State().LastError == "" {
				t.Errorf("send error not in State")
			}
		})
	}
}

func TestSendWebhookFallback(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeStream)
	// The session is gone: DingTalk refuses; the OpenAPI delivers.
	f.failHook = &fakeAnswer{200, nil, `{"errcode":300001,"errmsg":"session not exist"}`}
	out := &channels.Outgoing{Conversation: "c", ConversationType: channels.Direct, Text: "x", Handle: hookHandle(f, time.Now().Add(time.Hour))}
	if rc, err := a.Send(context.Background(), out); err != nil || rc.PlatformID != "pqk-1" {
		t.Fatalf("send = %+v, %v", rc, err)
	}
	// A sessionWebhook on another host is never used.
	out.Handle.URL = "https://evil.example/robot/sendBySession?session=x"
	if rc, err := a.Send(context.Background(), out); err != nil || rc.PlatformID != "pqk-2" {
		t.Fatalf("send = %+v, %v", rc, err)
	}
	if s := f.sends(); len(s) != 2 || s[0].path != batchSendPath || s[1].path != batchSendPath {
		t.Fatalf("sends %+v", s)
	}
}

func TestSendCustomRobot(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeCustomRobot)
	ctx := context.Background()
	if err := a.Start(ctx, nopSink{}); err != nil {
		t.Fatal(err)
	}
	defer stopAdapter(t, a)
	out := &channels.Outgoing{Conversation: "anything", ConversationType: channels.Group, Text: "告警：磁盘满"}
	if _, err := a.Send(ctx, out); err != nil {
		t.Fatal(err)
	}
	if s := f.sends(); len(s) != 1 || s[0].path != customRobotPath {
		t.Fatalf("sends %+v", s)
	}
	f.mu.Lock()
	f.failHook = &fakeAnswer{200, nil, `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`}
	f.mu.Unlock()
	var ra *channels.RetryAfterError
	if _, err := a.Send(ctx, out); !errors.As(err, &ra) || ra.After != time.Minute {
		t.Fatalf("err %v, want RetryAfter 1m", err)
	}
	a.cfg.CustomRobot.Secret = channelsSecret("SECwrong")
	if _, err := a.Send(ctx, out); !errors.Is(err, channels.ErrPermanent) {
		t.Fatalf("bad sign: err %v, want permanent", err)
	}
	if l := a.Limits(); l.Global != (channels.Rate{N: 20, Per: time.Minute}) || l.MaxText != 5000 {
		t.Errorf("limits %+v", l)
	}
}

func TestSendExtraCustomRobot(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeStream)
	if _, err := a.Send(context.Background(), &channels.Outgoing{Conversation: CustomRobotConversation, Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if s := f.sends(); len(s) != 1 || s[0].path != customRobotPath {
		t.Fatalf("sends %+v", s)
	}
}

type nopSink struct{}

func (nopSink) Deliver(context.Context, *channels.Message) error { return nil }
func (nopSink) Rejected(channels.Reason)                         {}

func TestFetch(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeStream)
	f.srv.Config.Handler.(*http.ServeMux).HandleFunc("POST "+downloadPath, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		ok := f.tokens[r.Header.Get("x-acs-dingtalk-access-token")]
		f.mu.Unlock()
		if !ok {
			writeJSON(w, 401, map[string]string{"code": "InvalidAuthenticationToken"})
			return
		}
		if body["downloadCode"] != "dl-1" || body["robotCode"] != testRobotCode {
			writeJSON(w, 400, map[string]string{"code": "invalidDownloadCode"})
			return
		}
		writeJSON(w, 200, map[string]string{"downloadUrl": "http://" + r.Host + "/files/voice.amr?Expires=1&Signature=x"})
	})
	f.srv.Config.Handler.(*http.ServeMux).HandleFunc("GET /files/voice.amr", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("#!AMR\n"))
	})
	rc, err := a.Fetch(context.Background(), channels.Media{Kind: channels.Voice, Key: "dl-1"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "#!AMR\n" {
		t.Fatalf("fetched %q", b)
	}
	if _, err := a.Fetch(context.Background(), channels.Media{Kind: channels.Voice, Key: "other"}); !errors.Is(err, channels.ErrPermanent) {
		t.Fatalf("bad code: err %v", err)
	}
}
