package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

const (
	visitorA = "visitor-aaaa-0001"
	visitorB = "visitor-bbbb-0002"
	waitFor  = 10 * time.Second
)

func testLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// echoSink records like the hub and, for each new message, answers it
// through the adapter: "你说：<text>" with the key "r-<id>".
type echoSink struct {
	*channelstest.Sink
	a *Adapter
}

func (s *echoSink) Deliver(ctx context.Context, m *channels.Message) error {
	before := len(s.Messages())
	if err := s.Sink.Deliver(ctx, m); err != nil {
		return err
	}
	if len(s.Messages()) == before { // a duplicate: the hub does not answer again
		return nil
	}
	_, err := s.a.Send(ctx, &channels.Outgoing{
		Key: "r-" + m.ID, Channel: m.Channel, Conversation: m.Conversation, ConversationType: m.ConversationType,
		Recipient: m.Sender.ID, Text: "你说：" + m.Text, Part: 1, Parts: 1, Attempt: 1,
	})
	return err
}

type server struct {
	a    *Adapter
	sink *echoSink
	app  *fiber.App
	addr string // host:port
}

func (s *server) ws() string   { return "ws://" + s.addr + "/chat/ws" }
func (s *server) http() string { return "http://" + s.addr }

// startServer serves a started adapter on a fiber app on 127.0.0.1:0.
func startServer(t *testing.T, cfg Config) *server {
	t.Helper()
	cfg.Enabled = true
	a, err := New(cfg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	a.Mount(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); app.Listener(ln) }()
	sink := &echoSink{Sink: channelstest.NewSink(), a: a}
	if err := a.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		app.ShutdownWithTimeout(waitFor)
		<-served
	})
	return &server{a: a, sink: sink, app: app, addr: ln.Addr().String()}
}

type client struct {
	t *testing.T
	c *websocket.Conn
}

func dial(t *testing.T, url string, h http.Header) (*client, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &client{t: t, c: c}, resp, nil
}

func mustDial(t *testing.T, s *server) *client {
	t.Helper()
	c, _, err := dial(t, s.ws(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.MessageText, b)
}

func (c *client) sendRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.c.Write(ctx, typ, b); err != nil {
		c.t.Fatal(err)
	}
}

type frame struct {
	Type     string `json:"type"`
	Visitor  string `json:"visitor"`
	ID       string `json:"id"`
	Text     string `json:"text"`
	Markdown bool   `json:"markdown"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

func (c *client) read() (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	typ, b, err := c.c.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	if typ != websocket.MessageText {
		c.t.Fatalf("server sent a %v frame", typ)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("server frame %s: %v", b, err)
	}
	return f, nil
}

// expect reads the next frame and checks its type (and id, when given).
func (c *client) expect(typ, id string) frame {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if f.Type != typ || (id != "" && f.ID != id) {
		c.t.Fatalf("got %+v, want type %s id %q", f, typ, id)
	}
	return f
}

func (c *client) expectError(code string) frame {
	c.t.Helper()
	f := c.expect("error", "")
	if f.Code != code || f.Message == "" {
		c.t.Fatalf("error %+v, want code %s", f, code)
	}
	return f
}

func (c *client) hello(visitor, name string) {
	c.t.Helper()
	c.send(map[string]string{"type": "hello", "visitor": visitor, "name": name})
	if f := c.expect("ready", ""); f.Visitor != visitor {
		c.t.Fatalf("ready for %q", f.Visitor)
	}
}

// closedWith waits for the server to close the socket and returns the
// close status.
func (c *client) closedWith() websocket.StatusCode {
	c.t.Helper()
	for {
		if _, err := c.read(); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func TestConversation(t *testing.T) {
	s := startServer(t, DefaultConfig())
	c := mustDial(t, s)
	c.hello(visitorA, " 小王\u200b\n ")
	c.send(map[string]string{"type": "message", "id": "m1", "text": "  我的快递到哪了？ "})
	// The echo sink answers inside Deliver: the reply comes before the ack.
	if f := c.expect("reply", "r-m1"); f.Text != "你说：我的快递到哪了？" || f.Markdown {
		t.Fatalf("reply %+v", f)
	}
	c.expect("ack", "m1")
	msgs := s.sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("delivered %d", len(msgs))
	}
	m := msgs[0]
	if m.Channel != "webchat" || m.Platform != "webchat" || m.ID != "m1" || m.DedupKey != visitorA+":m1" ||
		m.Conversation != visitorA || m.ConversationType != channels.Direct ||
		m.Sender != (channels.Sender{ID: visitorA, Name: "小王"}) || m.Text != "我的快递到哪了？" ||
		m.Time.IsZero() || m.Time.Location() != time.UTC || m.Mentioned || len(m.Media) != 0 {
		t.Fatalf("message %+v", m)
	}
	var raw map[string]string
	if err := json.Unmarshal(m.Raw, &raw); err != nil || raw["id"] != "m1" {
		t.Fatalf("raw %s", m.Raw)
	}
	// Keepalive.
	c.send(map[string]string{"type": "ping"})
	c.expect("pong", "")
	if st := s.a.State(); !st.Connected || !strings.Contains(st.Detail, "1 sockets") {
		t.Fatalf("state %+v", st)
	}
}

func TestResendIsDeduplicated(t *testing.T) {
	s := startServer(t, DefaultConfig())
	c := mustDial(t, s)
	c.hello(visitorA, "")
	msg := map[string]string{"type": "message", "id": "m1", "text": "你好"}
	c.send(msg)
	c.expect("reply", "r-m1")
	c.expect("ack", "m1")
	c.send(msg) // the ack was lost: the widget sends it again
	c.expect("ack", "m1")
	c.c.Close(websocket.StatusNormalClosure, "")

	// After a reconnect, the same message once more.
	c2 := mustDial(t, s)
	c2.hello(visitorA, "")
	c2.send(msg)
	c2.expect("ack", "m1")
	if n := len(s.sink.Messages()); n != 1 {
		t.Fatalf("delivered %d, want 1", n)
	}
	// The same id from another visitor is another message.
	c3 := mustDial(t, s)
	c3.hello(visitorB, "")
	c3.send(msg)
	c3.expect("reply", "r-m1")
	c3.expect("ack", "m1")
	if n := len(s.sink.Messages()); n != 2 {
		t.Fatalf("delivered %d, want 2", n)
	}
}

func TestRepliesReachEveryTab(t *testing.T) {
	s := startServer(t, DefaultConfig())
	tab1, tab2, other := mustDial(t, s), mustDial(t, s), mustDial(t, s)
	tab1.hello(visitorA, "")
	tab2.hello(visitorA, "")
	other.hello(visitorB, "")
	out := &channels.Outgoing{Key: "k1", Conversation: visitorA, Text: "**您好**", Markdown: true}
	if _, err := s.a.Send(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{tab1, tab2} {
		if f := c.expect("reply", "k1"); f.Text != "**您好**" || !f.Markdown {
			t.Fatalf("reply %+v", f)
		}
	}
	// The other visitor got nothing: its next frame is its own pong.
	other.send(map[string]string{"type": "ping"})
	other.expect("pong", "")
}

func TestBufferedReplies(t *testing.T) {
	s := startServer(t, DefaultConfig())
	var mu sync.Mutex
	now := time.Date(2024, 6, 10, 8, 0, 0, 0, time.UTC)
	s.a.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	send := func(vid, key string) {
		t.Helper()
		if _, err := s.a.Send(context.Background(), &channels.Outgoing{Key: key, Conversation: vid, Text: "text of " + key}); err != nil {
			t.Fatal(err)
		}
	}
	// No socket: buffered; 55 replies keep the last 50.
	for i := range 55 {
		send(visitorA, "k"+itoa(i))
	}
	c := mustDial(t, s)
	c.hello(visitorA, "")
	for i := 5; i < 55; i++ {
		if f := c.expect("reply", "k"+itoa(i)); f.Text != "text of k"+itoa(i) {
			t.Fatalf("reply %+v", f)
		}
	}
	// Live now: the next reply comes straight away, after the buffered ones.
	send(visitorA, "live")
	c.expect("reply", "live")
	c.c.Close(websocket.StatusNormalClosure, "")

	// Expired replies are dropped at the next hello...
	send(visitorB, "old")
	advance(bufferTTL + time.Second)
	send(visitorB, "new")
	c2 := mustDial(t, s)
	c2.hello(visitorB, "")
	c2.expect("reply", "new")
	c2.send(map[string]string{"type": "ping"})
	c2.expect("pong", "")

	// ...and by the sweeper.
	send("visitor-cccc-0003", "gone")
	advance(bufferTTL + time.Second)
	s.a.sweep()
	s.a.mu.Lock()
	_, kept := s.a.visitors["visitor-cccc-0003"]
	buffered := s.a.buffered
	s.a.mu.Unlock()
	if kept || buffered != 0 {
		t.Fatalf("after sweep: visitor kept %v, buffered %d", kept, buffered)
	}
}

func TestBufferedVisitorsBounded(t *testing.T) {
	a, err := New(DefaultConfig(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	for i := range bufferVisitors + 5 {
		if _, err := a.Send(context.Background(), &channels.Outgoing{Key: "k", Conversation: "visitor-" + itoa(i), Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if a.buffered != bufferVisitors || len(a.visitors) != bufferVisitors {
		t.Fatalf("buffered %d visitors %d", a.buffered, len(a.visitors))
	}
}

func TestFrameErrors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxText = 10
	s := startServer(t, cfg)
	tickingClock(s.a) // these frames are not about the rate limit
	c := mustDial(t, s)
	// Before hello.
	c.send(map[string]string{"type": "message", "id": "m1", "text": "hi"})
	if f := c.expectError(codeHelloRequired); f.ID != "m1" {
		t.Fatalf("error id %q", f.ID)
	}
	c.send(map[string]string{"type": "hello", "visitor": "short"})
	c.expectError(codeBadVisitor)
	c.send(map[string]string{"type": "hello", "visitor": "has space in it"})
	c.expectError(codeBadVisitor)
	c.sendRaw(websocket.MessageText, []byte(`{"type":"hello",`))
	c.expectError(codeBadJSON)
	c.sendRaw(websocket.MessageText, []byte(`[1,2]`))
	c.expectError(codeBadJSON)
	c.sendRaw(websocket.MessageBinary, []byte(`{"type":"ping"}`))
	c.expectError(codeBadFrame)
	c.send(map[string]string{"type": "dance"})
	c.expectError(codeUnknownType)
	c.send(map[string]string{"visitor": visitorA})
	c.expectError(codeUnknownType)
	c.hello(visitorA, "")
	c.send(map[string]string{"type": "hello", "visitor": visitorA})
	c.expectError(codeHelloTwice)
	c.send(map[string]string{"type": "message", "id": "bad id!", "text": "hi"})
	c.expectError(codeBadID)
	c.send(map[string]string{"type": "message", "text": "hi"})
	c.expectError(codeBadID)
	c.send(map[string]string{"type": "message", "id": "m2", "text": " \n "})
	if f := c.expectError(codeEmptyText); f.ID != "m2" {
		t.Fatalf("error id %q", f.ID)
	}
	c.send(map[string]string{"type": "message", "id": "m3", "text": "一二三四五六七八九十壹"})
	c.expectError(codeTextTooLong)
	// The socket survived all of it.
	c.send(map[string]string{"type": "message", "id": "m4", "text": "一二三四五六七八九十"})
	c.expect("reply", "r-m4")
	c.expect("ack", "m4")
	if n := len(s.sink.Messages()); n != 1 {
		t.Fatalf("delivered %d", n)
	}
}

// tickingClock makes the adapter's clock advance a second at every
// reading, so that the rate limit never bites.
func tickingClock(a *Adapter) {
	var mu sync.Mutex
	t := time.Date(2024, 6, 10, 8, 0, 0, 0, time.UTC)
	a.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// fixClock stops the adapter's clock, so that rate tokens never refill.
func fixClock(a *Adapter) {
	t0 := time.Date(2024, 6, 10, 8, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return t0 }
}

func TestRateLimit(t *testing.T) {
	s := startServer(t, DefaultConfig())
	fixClock(s.a)
	c := mustDial(t, s)
	c.hello(visitorA, "") // one token
	for i := range 9 {
		c.send(map[string]string{"type": "message", "id": "m" + itoa(i), "text": "hi"})
		c.expect("reply", "r-m"+itoa(i))
		c.expect("ack", "m"+itoa(i))
	}
	c.send(map[string]string{"type": "message", "id": "over", "text": "hi"})
	if f := c.expectError(codeRateLimited); f.ID != "over" {
		t.Fatalf("error %+v", f)
	}
	if n := len(s.sink.Messages()); n != 9 {
		t.Fatalf("delivered %d, want 9", n)
	}
	// A client that keeps flooding is cut off.
	for range maxViolations - 1 {
		c.send(map[string]string{"type": "ping"})
		c.expectError(codeRateLimited)
	}
	c.send(map[string]string{"type": "ping"})
	if st := c.closedWith(); st != websocket.StatusPolicyViolation {
		t.Fatalf("close status %v, want 1008", st)
	}
}

func TestFrameTooBig(t *testing.T) {
	s := startServer(t, DefaultConfig())
	c := mustDial(t, s)
	c.hello(visitorA, "")
	big := `{"type":"message","id":"m1","text":"` + strings.Repeat("x", maxFrame) + `"}`
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c.c.Write(ctx, websocket.MessageText, []byte(big)) // may fail once the server closes
	if st := c.closedWith(); st != websocket.StatusMessageTooBig {
		t.Fatalf("close status %v, want 1009", st)
	}
	if len(s.sink.Messages()) != 0 {
		t.Fatal("delivered")
	}
}

func TestDeliverErrors(t *testing.T) {
	s := startServer(t, DefaultConfig())
	c := mustDial(t, s)
	c.hello(visitorA, "")
	s.sink.Err = channels.ErrInvalid
	c.send(map[string]string{"type": "message", "id": "m1", "text": "hi"})
	if f := c.expectError(codeInvalid); f.ID != "m1" {
		t.Fatalf("%+v", f)
	}
	s.sink.Err = errors.New("database is busy")
	c.send(map[string]string{"type": "message", "id": "m2", "text": "hi"})
	if f := c.expectError(codeUnavailable); f.ID != "m2" || strings.Contains(f.Message, "busy") {
		t.Fatalf("%+v", f)
	}
}

func TestOrigins(t *testing.T) {
	cases := []struct {
		name    string
		allowed []string
		origin  string // "" sends none; "SELF" sends the server's own
		ok      bool
	}{
		{"no origin", nil, "", true},
		{"same host", nil, "SELF", true},
		{"foreign", nil, "https://evil.example", false},
		{"null", nil, "null", false},
		{"listed", []string{"https://shop.example.com"}, "https://shop.example.com", true},
		{"listed other case", []string{"https://Shop.Example.com"}, "https://shop.example.com", true},
		{"unlisted", []string{"https://shop.example.com"}, "https://shop.example.com:8443", false},
		{"star", []string{"*"}, "https://anything.example", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.AllowedOrigins = c.allowed
			s := startServer(t, cfg)
			h := http.Header{}
			switch c.origin {
			case "":
			case "SELF":
				h.Set("Origin", s.http())
			default:
				h.Set("Origin", c.origin)
			}
			cl, resp, err := dial(t, s.ws(), h)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				cl.hello(visitorA, "")
				return
			}
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("dial: %v %v", err, resp)
			}
		})
	}
}

func TestMaxConnections(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConnections = 2
	s := startServer(t, cfg)
	c1, c2 := mustDial(t, s), mustDial(t, s)
	c1.hello(visitorA, "") // both sockets are counted once serving
	c2.hello(visitorB, "")
	_, resp, err := dial(t, s.ws(), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third socket: %v %v", err, resp)
	}
	released := make(chan struct{}, 1)
	s.a.mu.Lock()
	s.a.afterUnregister = func() {
		select {
		case released <- struct{}{}:
		default:
		}
	}
	s.a.mu.Unlock()
	c1.c.Close(websocket.StatusNormalClosure, "")
	select { // the slot frees once the server has seen the close
	case <-released:
	case <-time.After(waitFor):
		t.Fatal("socket not released")
	}
	c3 := mustDial(t, s)
	c3.hello(visitorA, "")
}

func TestNotAWebsocket(t *testing.T) {
	s := startServer(t, DefaultConfig())
	resp, err := http.Get(s.http() + "/chat/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestStop(t *testing.T) {
	s := startServer(t, DefaultConfig())
	c := mustDial(t, s)
	c.hello(visitorA, "")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	status := make(chan websocket.StatusCode, 1)
	go func() { // a client reading, as browsers do: it answers the close
		for {
			if _, _, err := c.c.Read(ctx); err != nil {
				status <- websocket.CloseStatus(err)
				return
			}
		}
	}()
	if err := s.a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := <-status; st != websocket.StatusGoingAway {
		t.Fatalf("close status %v, want 1001", st)
	}
	if _, err := s.a.Send(ctx, &channels.Outgoing{Key: "k", Conversation: visitorA, Text: "x"}); !errors.Is(err, ErrStopped) {
		t.Fatalf("send after stop: %v", err)
	}
	_, resp, err := dial(t, s.ws(), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after stop: %v %v", err, resp)
	}
	if err := s.a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if s.a.State().Connected {
		t.Fatal("connected after stop")
	}
	// Never started: Stop is fine, Send buffers.
	a, _ := New(DefaultConfig(), testLog())
	if _, err := a.Send(ctx, &channels.Outgoing{Key: "k", Conversation: visitorA, Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx, channelstest.NewSink()); err == nil {
		t.Fatal("start after stop")
	}
}

func get(t *testing.T, url string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAssets(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Title = `小<b>店</b>客服`
	s := startServer(t, cfg)
	for _, c := range []struct {
		path, ctype string
		has         []string
	}{
		{"/chat", "text/html; charset=utf-8", []string{`<title>小&lt;b&gt;店&lt;/b&gt;客服</title>`, `src="/chat/widget.js"`, `data-zhiyin-mode="page"`, `href="/chat/widget.css"`}},
		{"/chat/widget.js", "application/javascript; charset=utf-8", []string{`var DEFAULT_TITLE = "小\u003cb\u003e店\u003c/b\u003e客服";`, "new WebSocket"}},
		{"/chat/widget.css", "text/css; charset=utf-8", []string{".zy-root"}},
	} {
		t.Run(c.path, func(t *testing.T) {
			resp, body := get(t, s.http()+c.path, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.ctype {
				t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			for _, h := range c.has {
				if !strings.Contains(body, h) {
					t.Errorf("body lacks %q", h)
				}
			}
			if strings.Contains(body, "__ZHIYIN_TITLE__") || strings.Contains(body, "<b>") {
				t.Error("title not substituted or not escaped")
			}
			etag := resp.Header.Get("ETag")
			if etag == "" || resp.Header.Get("Cache-Control") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("headers %v", resp.Header)
			}
			resp2, body2 := get(t, s.http()+c.path, http.Header{"If-None-Match": {`"other", W/` + etag}})
			if resp2.StatusCode != http.StatusNotModified || body2 != "" || resp2.Header.Get("ETag") != etag {
				t.Fatalf("revalidation: %d %q", resp2.StatusCode, body2)
			}
		})
	}
	resp, _ := get(t, s.http()+"/chat", nil)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("csp %q", csp)
	}
	resp, _ = get(t, s.http()+"/chat/widget.js", nil)
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatal("widget not loadable cross-origin")
	}
}

func TestMountUnderGroup(t *testing.T) {
	a, err := New(DefaultConfig(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	a.Mount(app.Group("/support"))
	req, _ := http.NewRequest(http.MethodGet, "/support/chat", nil)
	resp, err := app.Test(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `src="/support/chat/widget.js"`) || !strings.Contains(string(b), "知音在线客服") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestConfig(t *testing.T) {
	type file struct {
		Webchat Config `yaml:"webchat"`
	}
	decode := func(y string) (Config, error) {
		f := file{Webchat: DefaultConfig()}
		err := config.Decode("zhiyin.yaml", []byte(y), &f, config.DecodeOptions{})
		return f.Webchat, err
	}
	if _, err := decode("webchat:\n  enabled: false\n  max_text: -1\n"); err != nil {
		t.Fatalf("disabled section checked: %v", err)
	}
	c, err := decode("webchat:\n  enabled: true\n  title: 小店客服\n  allowed_origins: [\"https://shop.example.com\", \"*\"]\n  max_text: 500\n  max_connections: 100\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Title != "小店客服" || len(c.AllowedOrigins) != 2 || c.MaxText != 500 || c.MaxConnections != 100 {
		t.Fatalf("decoded %+v", c)
	}
	_, err = decode("webchat:\n  enabled: true\n  title: \" \"\n  allowed_origins: [\"shop.example.com\", \"https://x.example/path\"]\n  max_text: 0\n  max_connections: 0\n")
	for _, f := range []string{"webchat.title", "webchat.allowed_origins[0]", "webchat.allowed_origins[1]", "webchat.max_text", "webchat.max_connections"} {
		if err == nil || !strings.Contains(err.Error(), f+":") {
			t.Errorf("no error for %s in %v", f, err)
		}
	}
	d := DefaultConfig()
	if d.Title != "知音在线客服" || d.MaxText != 2000 || d.MaxConnections != 10000 {
		t.Fatalf("defaults %+v", d)
	}
	if _, err := New(Config{AllowedOrigins: []string{"ftp://x"}}, testLog()); err == nil {
		t.Fatal("New accepted a bad origin")
	}
}

var itoa = strconv.Itoa
