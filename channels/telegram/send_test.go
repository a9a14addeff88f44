package telegram

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

func TestSend(t *testing.T) {
	f := newFakeAPI(t)
	a := newTestAdapter(t, testConfig(f.srv.URL))
	ctx := t.Context()

	r, err := a.Send(ctx, &channels.Outgoing{Conversation: "-1001", ConversationType: channels.Group, Thread: "3",
		ReplyTo: "-1001:77", Text: "Your parcel ships today.", Part: 1, Parts: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r.PlatformID != "-1001:1001" {
		t.Errorf("receipt %q", r.PlatformID)
	}
	p := f.calls("sendMessage")[0].params
	if string(p["chat_id"]) != "-1001" || strParam(p, "text") != "Your parcel ships today." ||
		string(p["message_thread_id"]) != "3" || p["parse_mode"] != nil ||
		string(p["reply_parameters"]) != `{"message_id":77,"allow_sending_without_reply":true}` {
		t.Errorf("first part %v", p)
	}
	// Only the first part quotes.
	if _, err := a.Send(ctx, &channels.Outgoing{Conversation: "-1001", ReplyTo: "-1001:77", Text: "Part two.", Part: 2, Parts: 2}); err != nil {
		t.Fatal(err)
	}
	if p := f.calls("sendMessage")[1].params; p["reply_parameters"] != nil || p["message_thread_id"] != nil {
		t.Errorf("second part %v", p)
	}
}

func TestSendMarkdown(t *testing.T) {
	f := newFakeAPI(t)
	a := newTestAdapter(t, testConfig(f.srv.URL))
	text := "**Order 42** ships on 1.2.2025 - see [tracking](https://t.example/42?a=b) (free!)"
	if _, err := a.Send(t.Context(), &channels.Outgoing{Conversation: "42", Text: text, Markdown: true, Part: 1, Parts: 1}); err != nil {
		t.Fatal(err)
	}
	p := f.calls("sendMessage")[0].params
	want := `*Order 42* ships on 1\.2\.2025 \- see [tracking](https://t.example/42?a=b) \(free\!\)`
	if strParam(p, "parse_mode") != "MarkdownV2" || strParam(p, "text") != want {
		t.Errorf("sent %s %q, want %q", p["parse_mode"], strParam(p, "text"), want)
	}
}

func TestSendMarkdownFallsBackToPlain(t *testing.T) {
	f := newFakeAPI(t)
	f.badMD = 1
	a := newTestAdapter(t, testConfig(f.srv.URL))
	text := "Total: 3.50 **EUR**"
	r, err := a.Send(t.Context(), &channels.Outgoing{Conversation: "42", Text: text, Markdown: true, Part: 1, Parts: 1})
	if err != nil {
		t.Fatal(err)
	}
	calls := f.calls("sendMessage")
	if len(calls) != 2 || strParam(calls[1].params, "parse_mode") != "" || strParam(calls[1].params, "text") != text {
		t.Fatalf("calls %v", calls)
	}
	if r.PlatformID != "42:1001" {
		t.Errorf("receipt %q", r.PlatformID)
	}
}

func TestSendErrors(t *testing.T) {
	f := newFakeAPI(t)
	a := newTestAdapter(t, testConfig(f.srv.URL))
	send := func(chat string) error {
		_, err := a.Send(t.Context(), &channels.Outgoing{Conversation: chat, Text: "hello", Part: 1, Parts: 1})
		return err
	}

	f.failNext("sendMessage", fakeFail{status: 429, desc: "Too Many Requests: retry after 7", retryAfter: 7})
	var ra *channels.RetryAfterError
	if err := send("42"); !errors.As(err, &ra) || ra.After != 7*time.Second {
		t.Errorf("429: %v, want RetryAfter 7s", err)
	}
	if err := send("404404"); !errors.Is(err, channels.ErrPermanent) || !strings.Contains(err.Error(), "chat not found") {
		t.Errorf("unknown chat: %v, want permanent", err)
	}
	if err := send("7"); !errors.Is(err, channels.ErrPermanent) || !strings.Contains(err.Error(), "blocked") {
		t.Errorf("blocked: %v, want permanent", err)
	}
	f.failNext("sendMessage", fakeFail{status: 500, desc: "Internal Server Error"})
	if err := send("42"); err == nil || errors.Is(err, channels.ErrPermanent) || errors.As(err, &ra) {
		t.Errorf("500: %v, want a plain error", err)
	}
	if _, err := a.Send(t.Context(), &channels.Outgoing{Conversation: "42", Text: " \n", Part: 1, Parts: 1}); !errors.Is(err, channels.ErrPermanent) {
		t.Errorf("empty text: %v, want permanent", err)
	}
	if st := a.State(); st.LastError == "" {
		t.Error("send errors not in the state")
	}

	// The group became a supergroup: sent to the new id.
	f.failNext("sendMessage", fakeFail{status: 400, desc: "Bad Request: group chat was upgraded to a supergroup chat", migrateTo: -1001})
	if r, err := a.Send(t.Context(), &channels.Outgoing{Conversation: "-55", Text: "hi", Part: 1, Parts: 1}); err != nil || r.PlatformID != "-1001:1001" {
		t.Errorf("migrated: %v %v", r, err)
	}

	// A token the server refuses: permanent.
	f.setToken("999:other")
	if err := send("42"); !errors.Is(err, channels.ErrPermanent) {
		t.Errorf("401: %v, want permanent", err)
	}

	// Network: plain, and the token is not in the message.
	f.srv.Close()
	err := send("42")
	if err == nil || errors.Is(err, channels.ErrPermanent) || strings.Contains(err.Error(), testToken) {
		t.Errorf("network: %v", err)
	}
}

func TestLimits(t *testing.T) {
	a := newTestAdapter(t, testConfig("http://127.0.0.1:1"))
	l := a.Limits()
	if l.MaxText != 4096 || l.Unit != channels.UTF16 || l.PerChat != (channels.Rate{N: 1, Per: time.Second}) ||
		l.Global != (channels.Rate{N: 30, Per: time.Second}) {
		t.Errorf("limits %+v", l)
	}
	if a.Name() != "telegram" {
		t.Errorf("name %q", a.Name())
	}
}
