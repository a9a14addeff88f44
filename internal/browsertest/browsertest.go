package browsertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// ChromiumPath is where the browser is expected (Debian package chromium).
const ChromiumPath = "/usr/bin/chromium"

// Browser is a headless Chromium driven over CDP. It is killed at the
// test's cleanup.
type Browser struct {
	t   testing.TB
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

// Start launches headless Chromium and connects to its DevTools socket.
// It skips the test when Chromium is not installed; ctx bounds the
// start-up.
func Start(t testing.TB, ctx context.Context) *Browser {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Skipf("chromium not installed: run scripts/setup.sh test (%v)", err)
	}
	cmd := exec.Command(ChromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
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
	b := &Browser{t: t, c: c, res: map[int]chan cdpMessage{}}
	go b.read()
	t.Cleanup(func() { c.CloseNow() })
	return b
}

func (b *Browser) read() {
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

// Errors returns the uncaught exceptions and security (CSP) errors the
// pages have reported so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.bad...)
}

// call sends one CDP command (to a page session, or the browser when
// session is "") and returns its result.
func (b *Browser) call(ctx context.Context, session, method string, params any) json.RawMessage {
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

// Page is one browser tab.
type Page struct {
	b       *Browser
	session string
}

// NewPage opens a blank tab with Runtime, Log and Page events enabled.
func (b *Browser) NewPage(ctx context.Context) *Page {
	b.t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	json.Unmarshal(b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}), &target)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	json.Unmarshal(b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}), &att)
	p := &Page{b: b, session: att.SessionID}
	b.call(ctx, p.session, "Runtime.enable", map[string]any{})
	b.call(ctx, p.session, "Log.enable", map[string]any{})
	b.call(ctx, p.session, "Page.enable", map[string]any{})
	return p
}

// Navigate loads url and, unless it is about:blank, waits until the
// document is complete.
func (p *Page) Navigate(ctx context.Context, url string) {
	p.b.t.Helper()
	var r struct {
		ErrorText string `json:"errorText"`
	}
	json.Unmarshal(p.b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url}), &r)
	if r.ErrorText != "" {
		p.b.t.Fatalf("navigate %s: %s", url, r.ErrorText)
	}
	if url != "about:blank" {
		p.WaitTrue(ctx, `document.readyState === 'complete' && location.href.startsWith(`+JSString(url)+`)`)
	}
}

// Eval evaluates a JavaScript expression and returns its value as text
// ("" for null or undefined). A thrown exception fails the test.
func (p *Page) Eval(ctx context.Context, expr string) string {
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

// WaitTrue polls a boolean expression until it is true; when ctx ends
// first it fails the test, showing the page's errors and text.
func (p *Page) WaitTrue(ctx context.Context, expr string) {
	p.b.t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.Eval(ctx, "!!("+expr+")") == "true" {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			dump, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			p.b.t.Fatalf("waiting for %s: %v\npage errors: %v\nbody: %s", expr, ctx.Err(), p.b.Errors(),
				p.Eval(dump, `document.body ? document.body.innerText.slice(0, 2000) : ''`))
		}
	}
}

// JSString quotes s as a JavaScript string literal.
func JSString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
