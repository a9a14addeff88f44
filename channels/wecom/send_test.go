package wecom

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

func sendHarness(t *testing.T) (*harness, *fakeAPI) {
	f := newFakeAPI(t)
	cfg := testConfig(f.srv.URL)
	cfg.GroupBotKey = config.NewSecret(f.botKey)
	return newHarness(t, cfg), f
}

func TestSendPayloads(t *testing.T) {
	h, f := sendHarness(t)
	ctx := context.Background()
	outs := []*channels.Outgoing{
		{Conversation: "zhangsan", ConversationType: channels.Direct, Recipient: "zhangsan", Text: "您好"},
		{Conversation: "lisi", ConversationType: channels.Direct, Text: "**加粗**", Markdown: true},
		{Conversation: "wrkChat1", ConversationType: channels.Group, Recipient: "u1", Text: "群里好", Handle: channels.Handle{Extra: map[string]string{"chat_id": "wrkChat1"}}},
		{Conversation: GroupBotConversation, Text: "告警", Markdown: true},
		{Conversation: GroupBotConversation, Text: strings.Repeat("字", 682)}, // 2046 bytes
	}
	var receipts []channels.Receipt
	for _, out := range outs {
		r, err := h.a.Send(ctx, out)
		if err != nil {
			t.Fatalf("Send(%q): %v", out.Text, err)
		}
		receipts = append(receipts, r)
	}
	tokenCalls, sends := f.snapshot()
	if tokenCalls != 1 {
		t.Errorf("gettoken called %d times, want 1 (cached)", tokenCalls)
	}
	want := []fakeSend{
		{"/cgi-bin/message/send", "token-1", payload{ToUser: "zhangsan", MsgType: "text", AgentID: testAgent, Text: &content{"您好"}}},
		{"/cgi-bin/message/send", "token-1", payload{ToUser: "lisi", MsgType: "markdown", AgentID: testAgent, Markdown: &content{"**加粗**"}}},
		{"/cgi-bin/appchat/send", "token-1", payload{ChatID: "wrkChat1", MsgType: "text", Text: &content{"群里好"}}},
		{"/cgi-bin/webhook/send", "", payload{MsgType: "markdown", Markdown: &content{"告警"}}},
		{"/cgi-bin/webhook/send", "", payload{MsgType: "text", Text: &content{strings.Repeat("字", 682)}}},
	}
	if len(sends) != len(want) {
		t.Fatalf("fake got %d sends, want %d", len(sends), len(want))
	}
	for i := range want {
		if !sameSend(sends[i], want[i]) {
			t.Errorf("send %d:\n got %s %s %+v\nwant %s %s %+v", i, sends[i].path, sends[i].token, sends[i].body, want[i].path, want[i].token, want[i].body)
		}
	}
	if receipts[0].PlatformID != "msgid-1" || receipts[1].PlatformID != "msgid-2" {
		t.Errorf("receipts %+v", receipts)
	}
	if l := h.a.Limits(); l.MaxText != 2048 || l.Unit != channels.Bytes || l.PerChat.N != 20 || l.Global.N != 20 {
		t.Errorf("Limits = %+v", l)
	}
}

func sameSend(a, b fakeSend) bool {
	eq := func(x, y *content) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.path == b.path && a.token == b.token && a.body.ToUser == b.body.ToUser && a.body.ChatID == b.body.ChatID &&
		a.body.MsgType == b.body.MsgType && a.body.AgentID == b.body.AgentID && eq(a.body.Text, b.body.Text) && eq(a.body.Markdown, b.body.Markdown)
}

func TestSendTokenRefresh(t *testing.T) {
	h, f := sendHarness(t)
	ctx := context.Background()
	out := &channels.Outgoing{Conversation: "u", Recipient: "u", Text: "x"}
	if _, err := h.a.Send(ctx, out); err != nil {
		t.Fatal(err)
	}
	// WeCom expires the token early (42001): refresh once, resend.
	f.expireAll()
	if _, err := h.a.Send(ctx, out); err != nil {
		t.Fatalf("Send after server-side expiry: %v", err)
	}
	tokenCalls, sends := f.snapshot()
	if tokenCalls != 2 || len(sends) != 2 || sends[1].token != "token-2" {
		t.Errorf("after 42001: %d gettoken, sends %+v", tokenCalls, sends)
	}
	// Our clock passes expiry minus the margin: refreshed before use.
	h.now = h.now.Add(7200*time.Second - tokenEarly + time.Second)
	if _, err := h.a.Send(ctx, out); err != nil {
		t.Fatal(err)
	}
	tokenCalls, sends = f.snapshot()
	if tokenCalls != 3 || sends[2].token != "token-3" {
		t.Errorf("after local expiry: %d gettoken, token %s", tokenCalls, sends[2].token)
	}
	// A token refused twice in a row is not refreshed forever: plain error.
	f.failNext(42001, 42001)
	_, err := h.a.Send(ctx, out)
	if err == nil || errors.Is(err, channels.ErrPermanent) || isRetryAfter(err) {
		t.Errorf("twice-refused token: %v, want a plain error", err)
	}
}

func TestSendTokenSingleFlight(t *testing.T) {
	h, f := sendHarness(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := h.a.Send(context.Background(), &channels.Outgoing{Conversation: "u", Text: "x"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if tokenCalls, sends := f.snapshot(); tokenCalls != 1 || len(sends) != 16 {
		t.Errorf("%d gettoken calls for 16 concurrent sends (want 1), %d sends", tokenCalls, len(sends))
	}
}

func isRetryAfter(err error) bool {
	var ra *channels.RetryAfterError
	return errors.As(err, &ra)
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name       string
		codes      []int
		status     int
		retryAfter string
		out        channels.Outgoing
		wantAfter  time.Duration // RetryAfter, when nonzero
		permanent  bool
	}{
		{name: "45009 api frequency", codes: []int{45009}, wantAfter: time.Minute},
		{name: "45033 concurrency", codes: []int{45033}, wantAfter: time.Second},
		{name: "-1 busy", codes: []int{-1}},
		{name: "81013 unknown user", codes: []int{81013}, permanent: true},
		{name: "HTTP 429", status: 429, retryAfter: "7", wantAfter: 7 * time.Second},
		{name: "HTTP 429 no header", status: 429, wantAfter: time.Second},
		{name: "HTTP 502", status: 502},
		{name: "HTTP 403", status: 403, permanent: true},
		{name: "group bot 45009", codes: []int{45009}, out: channels.Outgoing{Conversation: GroupBotConversation, Text: "x"}, wantAfter: time.Minute},
		{name: "empty text", out: channels.Outgoing{Conversation: "u", Text: " "}, permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, f := sendHarness(t)
			f.failNext(tt.codes...)
			if tt.status != 0 {
				f.failStatus(tt.status, tt.retryAfter)
			}
			out := tt.out
			if out.Conversation == "" {
				out = channels.Outgoing{Conversation: "u", Recipient: "u", Text: "x"}
			}
			_, err := h.a.Send(context.Background(), &out)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			var ra *channels.RetryAfterError
			switch {
			case tt.wantAfter != 0:
				if !errors.As(err, &ra) || ra.After != tt.wantAfter {
					t.Errorf("err %v, want RetryAfter %s", err, tt.wantAfter)
				}
			case tt.permanent:
				if !errors.Is(err, channels.ErrPermanent) {
					t.Errorf("err %v, want permanent", err)
				}
			default:
				if errors.Is(err, channels.ErrPermanent) || errors.As(err, &ra) {
					t.Errorf("err %v, want a plain (retried) error", err)
				}
			}
			if st := h.a.State(); st.LastError == "" || !st.Connected {
				t.Errorf("State = %+v", st)
			}
		})
	}
}

func TestSendConfigErrors(t *testing.T) {
	f := newFakeAPI(t)
	cfg := testConfig(f.srv.URL)
	cfg.Secret = config.NewSecret("wrong-secret")
	h := newHarness(t, cfg)
	_, err := h.a.Send(context.Background(), &channels.Outgoing{Conversation: "u", Text: "x"})
	if !errors.Is(err, channels.ErrPermanent) || !strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("bad secret: %v, want a permanent error naming the setting, not its value", err)
	}
	_, err = h.a.Send(context.Background(), &channels.Outgoing{Conversation: GroupBotConversation, Text: "x"})
	if !errors.Is(err, channels.ErrPermanent) {
		t.Errorf("group bot without key: %v, want permanent", err)
	}

	// Network errors are retried and never quote the secret or token.
	f.srv.Close()
	cfg.Secret = config.NewSecret("app-secret")
	h = newHarness(t, cfg)
	_, err = h.a.Send(context.Background(), &channels.Outgoing{Conversation: "u", Text: "x"})
	if err == nil || errors.Is(err, channels.ErrPermanent) || strings.Contains(err.Error(), "app-secret") || strings.Contains(err.Error(), "corpsecret") {
		t.Errorf("network error: %v", err)
	}
	if st := h.a.State(); strings.Contains(st.LastError, "app-secret") {
		t.Errorf("State leaks the secret: %s", st.LastError)
	}
}

func TestFetch(t *testing.T) {
	h, f := sendHarness(t)
	ctx := context.Background()
	read := func(key string) (string, error) {
		rc, err := h.a.Fetch(ctx, channels.Media{Kind: channels.Voice, Key: key})
		if err != nil {
			return "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return string(b), err
	}
	if got, err := read("m-voice"); err != nil || got != "#!AMR\n voice" {
		t.Fatalf("Fetch = %q, %v", got, err)
	}
	f.expireAll()
	if got, err := read("m-voice"); err != nil || got != "#!AMR\n voice" {
		t.Fatalf("Fetch after token expiry = %q, %v", got, err)
	}
	if tokenCalls, _ := f.snapshot(); tokenCalls != 2 {
		t.Errorf("gettoken called %d times, want 2", tokenCalls)
	}
	if _, err := read("nope"); !errors.Is(err, channels.ErrPermanent) {
		t.Errorf("unknown media: %v, want permanent", err)
	}
}
