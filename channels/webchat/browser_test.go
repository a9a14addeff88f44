package webchat

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/browsertest"
)

// TestBrowser drives the real widget in headless Chromium over the Chrome
// DevTools Protocol: the /chat page, then the floating widget embedded in
// a page of another origin.
func TestBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := browsertest.Start(t, ctx)

	// A customer's site on another origin that embeds the widget.
	siteLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	site := "http://" + siteLn.Addr().String()
	cfg := DefaultConfig()
	cfg.AllowedOrigins = []string{site}
	s := startServer(t, cfg)
	siteSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>小店</title></head>
<body><h1>欢迎光临</h1>
<script src="%s/chat/widget.js" data-zhiyin-title="小店客服" data-zhiyin-name="访客甲"></script></body></html>`, s.http())
	})}
	go siteSrv.Serve(siteLn)
	t.Cleanup(func() { siteSrv.Close() })

	page := b.NewPage(ctx)

	// 1. The /chat page.
	page.Navigate(ctx, s.http()+"/chat")
	page.WaitTrue(ctx, `!!window.ZhiyinChat && window.ZhiyinChat.connected()`)
	if got := page.Eval(ctx, `document.title + "|" + document.querySelector('.zy-title').textContent`); got != "知音在线客服|知音在线客服" {
		t.Fatalf("titles %q", got)
	}
	page.Eval(ctx, `(() => {
		const i = document.querySelector('.zy-input');
		i.value = '你好，我的快递到哪了？';
		document.querySelector('.zy-send').click();
		return true;
	})()`)
	page.WaitTrue(ctx, `Array.from(document.querySelectorAll('.zy-bot .zy-bubble')).some(e => e.textContent === '你说：你好，我的快递到哪了？')`)
	page.WaitTrue(ctx, `document.querySelector('.zy-me .zy-meta').textContent === '✓'`)
	visitor := page.Eval(ctx, `window.ZhiyinChat.visitor()`)
	msgs := s.sink.Messages()
	if len(msgs) != 1 || msgs[0].Conversation != visitor || msgs[0].Text != "你好，我的快递到哪了？" {
		t.Fatalf("delivered %+v for visitor %q", msgs, visitor)
	}

	// A reply while the page is away waits in the buffer; the transcript
	// survives a reload (localStorage) and the buffered reply arrives.
	page.Navigate(ctx, "about:blank")
	waitVisitorGone(t, ctx, s.a, visitor)
	if _, err := s.a.Send(ctx, outgoing("later-1", visitor, "**稍等**，已为您查询", true)); err != nil {
		t.Fatal(err)
	}
	page.Navigate(ctx, s.http()+"/chat")
	page.WaitTrue(ctx, `Array.from(document.querySelectorAll('.zy-bot .zy-bubble strong')).some(e => e.textContent === '稍等')`)
	if got := page.Eval(ctx, `String(document.querySelectorAll('.zy-bot').length) + "/" + document.querySelectorAll('.zy-me').length`); got != "2/1" {
		t.Fatalf("bot/me bubbles after reload: %s", got)
	}
	// The same reply again (a retried send) is shown once.
	if _, err := s.a.Send(ctx, outgoing("later-1", visitor, "**稍等**，已为您查询", true)); err != nil {
		t.Fatal(err)
	}
	page.Eval(ctx, `(() => { window.ZhiyinChat.send('再问一次'); return true; })()`)
	page.WaitTrue(ctx, `Array.from(document.querySelectorAll('.zy-bot .zy-bubble')).some(e => e.textContent === '你说：再问一次')`)
	if got := page.Eval(ctx, `String(document.querySelectorAll('.zy-bot').length)`); got != "3" {
		t.Fatalf("bot bubbles %s, want 3 (a repeated reply shown twice?)", got)
	}

	// 2. The floating widget on another site.
	page.Navigate(ctx, site+"/")
	page.WaitTrue(ctx, `!!document.querySelector('.zy-launcher') && !!window.ZhiyinChat`)
	if got := page.Eval(ctx, `getComputedStyle(document.querySelector('.zy-float')).position`); got != "fixed" {
		t.Fatalf("widget css not applied: position %q", got)
	}
	page.Eval(ctx, `(() => { document.querySelector('.zy-launcher').click(); return true; })()`)
	page.WaitTrue(ctx, `window.ZhiyinChat.connected() && !document.querySelector('.zy-panel').hidden`)
	if got := page.Eval(ctx, `document.querySelector('.zy-title').textContent`); got != "小店客服" {
		t.Fatalf("widget title %q", got)
	}
	page.Eval(ctx, `(() => {
		const i = document.querySelector('.zy-input');
		i.value = '有优惠吗';
		i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
		return true;
	})()`)
	page.WaitTrue(ctx, `Array.from(document.querySelectorAll('.zy-bot .zy-bubble')).some(e => e.textContent === '你说：有优惠吗')`)
	other := page.Eval(ctx, `window.ZhiyinChat.visitor()`)
	var found bool
	for _, m := range s.sink.Messages() {
		if m.Conversation == other && m.Text == "有优惠吗" && m.Sender.Name == "访客甲" {
			found = true
		}
	}
	if !found {
		t.Fatalf("embedded widget's message not delivered as visitor %q: %+v", other, s.sink.Messages())
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Fatalf("browser errors:\n%s", strings.Join(errs, "\n"))
	}
}

// waitVisitorGone waits until the visitor has no open socket (the browser
// left the page and the server saw the close).
func waitVisitorGone(t *testing.T, ctx context.Context, a *Adapter, visitor string) {
	t.Helper()
	gone := make(chan struct{}, 1)
	check := func() bool {
		v := a.visitors[visitor]
		return v == nil || len(v.conns) == 0
	}
	a.mu.Lock()
	if check() {
		a.mu.Unlock()
		return
	}
	a.afterUnregister = func() {
		a.mu.Lock()
		ok := check()
		a.mu.Unlock()
		if ok {
			select {
			case gone <- struct{}{}:
			default:
			}
		}
	}
	a.mu.Unlock()
	defer func() { a.mu.Lock(); a.afterUnregister = nil; a.mu.Unlock() }()
	select {
	case <-gone:
	case <-ctx.Done():
		t.Fatal("the browser's socket did not close")
	}
}

func outgoing(key, visitor, text string, md bool) *channels.Outgoing {
	return &channels.Outgoing{Key: key, Conversation: visitor, ConversationType: channels.Direct, Text: text, Markdown: md, Part: 1, Parts: 1}
}
