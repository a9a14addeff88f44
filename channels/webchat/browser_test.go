package webchat

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zhiyin/zhiyin/channels"
)

const chromiumPath = "/usr/bin/chromium"

// TestBrowser drives the real widget in headless Chromium over the Chrome
// DevTools Protocol: the /chat page, then the floating widget embedded in
// a page of another origin.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("needs Chromium at %s (Debian package chromium) to run the widget in a browser: %v", chromiumPath, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

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

	b := startChromium(t, ctx)
	page := b.newPage(ctx)

	// 1. The /chat page.
	page.navigate(ctx, s.http()+"/chat")
	page.waitTrue(ctx, `!!window.ZhiyinChat && window.ZhiyinChat.connected()`)
	if got := page.eval(ctx, `document.title + "|" + document.querySelector('.zy-title').textContent`); got != "知音在线客服|知音在线客服" {
		t.Fatalf("titles %q", got)
	}
	page.eval(ctx, `(() => {
		const i = document.querySelector('.zy-input');
		i.value = '你好，我的快递到哪了？';
		document.querySelector('.zy-send').click();
		return true;
	})()`)
	page.waitTrue(ctx, `Array.from(document.querySelectorAll('.zy-bot .zy-bubble')).some(e => e.textContent === '你说：你好，我的快递到哪了？')`)
	page.waitTrue(ctx, `document.querySelector('.zy-me .zy-meta').textContent === '✓'`)
	visitor := page.eval(ctx, `window.ZhiyinChat.visitor()`)
	msgs := s.sink.Messages()
	if len(msgs) != 1 || msgs[0].Conversation != visitor || msgs[0].Text != "你好，我的快递到哪了？" {
		t.Fatalf("delivered %+v for visitor %q", msgs, visitor)
	}

	// A reply while the page is away waits in the buffer; the transcript
	// survives a reload (localStorage) and the buffered reply arrives.
	page.navigate(ctx, "about:blank")
	waitVisitorGone(t, ctx, s.a, visitor)
	if _, err := s.a.Send(ctx, outgoing("later-1", visitor, "**稍等**，已为您查询", true)); err != nil {
		t.Fatal(err)
	}
	page.navigate(ctx, s.http()+"/chat")
	page.waitTrue(ctx, `Array.from(document.querySelectorAll('.zy-bot .zy-bubble strong')).some(e => e.textContent === '稍等')`)
	if got := page.eval(ctx, `String(document.querySelectorAll('.zy-bot').length) + "/" + document.querySelectorAll('.zy-me').length`); got != "2/1" {
		t.Fatalf("bot/me bubbles after reload: %s", got)
	}
	// The same reply again (a retried send) is shown once.
	if _, err := s.a.Send(ctx, outgoing("later-1", visitor, "**稍等**，已为您查询", true)); err != nil {
		t.Fatal(err)
	}
	page.eval(ctx, `(() => { window.ZhiyinChat.send('再问一次'); return true; })()`)
	page.waitTrue(ctx, `Array.from(document.querySelectorAll('.zy-bot .zy-bubble')).some(e => e.textContent === '你说：再问一次')`)
	if got := page.eval(ctx, `String(document.querySelectorAll('.zy-bot').length)`); got != "3" {
		t.Fatalf("bot bubbles %s, want 3 (a repeated reply shown twice?)", got)
	}

	// 2. The floating widget on another site.
	page.navigate(ctx, site+"/")
	page.waitTrue(ctx, `!!document.querySelector('.zy-launcher') && !!window.ZhiyinChat`)
	if got := page.eval(ctx, `getComputedStyle(document.querySelector('.zy-float')).position`); got != "fixed" {
		t.Fatalf("widget css not applied: position %q", got)
	}
	page.eval(ctx, `(() => { document.querySelector('.zy-launcher').click(); return true; })()`)
	page.waitTrue(ctx, `window.ZhiyinChat.connected() && !document.querySelector('.zy-panel').hidden`)
	if got := page.eval(ctx, `document.querySelector('.zy-title').textContent`); got != "小店客服" {
		t.Fatalf("widget title %q", got)
	}
	page.eval(ctx, `(() => {
		const i = document.querySelector('.zy-input');
		i.value = '有优惠吗';
		i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
		return true;
	})()`)
	page.waitTrue(ctx, `Array.from(document.querySelectorAll('.zy-bot .zy-bubble')).some(e => e.textContent === '你说：有优惠吗')`)
	other := page.eval(ctx, `window.ZhiyinChat.visitor()`)
	var found bool
	for _, m := range s.sink.Messages() {
		if m.Conversation == other && m.Text == "有优惠吗" && m.Sender.Name == "访客甲" {
			found = true
		}
	}
	if !found {
		t.Fatalf("embedded widget's message not delivered as visitor %q: %+v", other, s.sink.Messages())
	}
	if errs := b.errors(); len(errs) > 0 {
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

// browser is a headless Chromium driven over CDP.
type browser struct {
	t   *testing.T
	c   *websocket.Conn
	mu  sync.Mutex
	id  int
	res map[int]chan cdpMessage
	bad []string // exceptions and security errors the pages reported
}

type cdpMessage struct {
	ID        int             `json:"id"`
	SessionID string          `json:"sessionId"`
	Method    string          `json:"method"`
	Params    json.RawMessage `json:"params"`
	Result    json.RawMessage `json:"result"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"error"`
}

var devtoolsRe = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

func startChromium(t *testing.T, ctx context.Context) *browser {
	t.Helper()
	cmd := exec.Command(chromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--user-data-dir="+t.TempDir(), "--remote-debugging-port=0", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the browser and its helpers
		cmd.Wait()
	})
	found := make(chan string, 1)
	var tail []string
	var tailMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := devtoolsRe.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			tailMu.Lock()
			if tail = append(tail, line); len(tail) > 20 {
				tail = tail[1:]
			}
			tailMu.Unlock()
		}
	}()
	var url string
	select {
	case url = <-found:
	case <-ctx.Done():
		tailMu.Lock()
		defer tailMu.Unlock()
		t.Fatalf("chromium did not print its DevTools address:\n%s", strings.Join(tail, "\n"))
	}
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("devtools: %v", err)
	}
	c.SetReadLimit(64 << 20)
	b := &browser{t: t, c: c, res: map[int]chan cdpMessage{}}
	go b.read()
	t.Cleanup(func() { c.CloseNow() })
	return b
}

func (b *browser) read() {
	for {
		_, data, err := b.c.Read(context.Background())
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch := b.res[m.ID]; ch != nil {
				ch <- m
				delete(b.res, m.ID)
			}
		} else {
			switch m.Method {
			case "Runtime.exceptionThrown":
				b.bad = append(b.bad, string(m.Params))
			case "Log.entryAdded":
				var e struct {
					Entry struct{ Source, Level, Text string } `json:"entry"`
				}
				json.Unmarshal(m.Params, &e)
				if e.Entry.Source == "security" || strings.Contains(e.Entry.Text, "Content Security Policy") {
					b.bad = append(b.bad, e.Entry.Text)
				}
			}
		}
		b.mu.Unlock()
	}
}

func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.bad...)
}

// call sends one CDP command (to a page session, or the browser when
// session is "") and returns its result.
func (b *browser) call(ctx context.Context, session, method string, params any) json.RawMessage {
	b.t.Helper()
	ch := make(chan cdpMessage, 1)
	b.mu.Lock()
	b.id++
	id := b.id
	b.res[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if err := b.c.Write(ctx, websocket.MessageText, data); err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			b.t.Fatalf("%s: %s", method, m.Error.Message)
		}
		return m.Result
	case <-ctx.Done():
		b.t.Fatalf("%s: no answer: %v", method, ctx.Err())
		return nil
	}
}

type page struct {
	b       *browser
	session string
}

func (b *browser) newPage(ctx context.Context) *page {
	var target struct {
		TargetID string `json:"targetId"`
	}
	json.Unmarshal(b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}), &target)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	json.Unmarshal(b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}), &att)
	p := &page{b: b, session: att.SessionID}
	b.call(ctx, p.session, "Runtime.enable", map[string]any{})
	b.call(ctx, p.session, "Log.enable", map[string]any{})
	b.call(ctx, p.session, "Page.enable", map[string]any{})
	return p
}

func (p *page) navigate(ctx context.Context, url string) {
	p.b.t.Helper()
	var r struct {
		ErrorText string `json:"errorText"`
	}
	json.Unmarshal(p.b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url}), &r)
	if r.ErrorText != "" {
		p.b.t.Fatalf("navigate %s: %s", url, r.ErrorText)
	}
	if url != "about:blank" {
		p.waitTrue(ctx, `document.readyState === 'complete' && location.href.startsWith(`+jsString(url)+`)`)
	}
}

// eval evaluates a JavaScript expression and returns its value as text.
func (p *page) eval(ctx context.Context, expr string) string {
	p.b.t.Helper()
	var r struct {
		Result struct {
			Type  string `json:"type"`
			Value any    `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	json.Unmarshal(p.b.call(ctx, p.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}), &r)
	if r.ExceptionDetails != nil {
		p.b.t.Fatalf("evaluate %s: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	switch v := r.Result.Value.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// waitTrue polls a boolean expression until it is true or ctx ends.
func (p *page) waitTrue(ctx context.Context, expr string) {
	p.b.t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.eval(ctx, "!!("+expr+")") == "true" {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			dump, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			p.b.t.Fatalf("waiting for %s: %v\npage errors: %v\nbody: %s", expr, ctx.Err(), p.b.errors(),
				p.eval(dump, `document.body ? document.body.innerText.slice(0, 2000) : ''`))
		}
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func outgoing(key, visitor, text string, md bool) *channels.Outgoing {
	return &channels.Outgoing{Key: key, Conversation: visitor, ConversationType: channels.Direct, Text: text, Markdown: md, Part: 1, Parts: 1}
}
