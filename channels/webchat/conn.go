package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	fiberws "github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/zhiyin/zhiyin/channels"
)

// Socket limits and timers.
const (
	// maxFrame bounds a client frame; a bigger one closes the socket with
	// 1009 (message too big).
	maxFrame = 64 << 10
	// pingEvery is the server's keepalive ping; a socket that answers
	// neither pings nor sends anything for pongWait is closed.
	pingEvery = 30 * time.Second
	pongWait  = 75 * time.Second
	// writeWait bounds one frame write; a socket that cannot take a frame
	// in time is closed (its replies are then buffered).
	writeWait = 10 * time.Second
	// closeGrace is how long a closing socket waits for the client's close
	// frame.
	closeGrace = time.Second
	// deliverTimeout bounds one Sink.Deliver.
	deliverTimeout = 30 * time.Second
	// Per-socket frame rate: rateRefill frames a second, bursts of
	// rateBurst; a client that keeps going past maxViolations refused
	// frames in a row is disconnected (1008).
	rateRefill    = 5.0
	rateBurst     = 10.0
	maxViolations = 50
	// Visitor ids, client message ids and display names.
	minVisitorLen = 8
	maxVisitorLen = 64
	maxIDLen      = 64
	maxNameRunes  = 64
)

// Close codes.
const (
	closeGoingAway = websocket.CloseGoingAway       // 1001: server stopping
	closePolicy    = websocket.ClosePolicyViolation // 1008: flooding
	closeTryAgain  = websocket.CloseTryAgainLater   // 1013: too many sockets
)

// Error codes of {"type":"error"} frames (stable: the widget switches on
// them).
const (
	codeBadFrame      = "bad_frame"
	codeBadJSON       = "bad_json"
	codeUnknownType   = "unknown_type"
	codeHelloRequired = "hello_required"
	codeHelloTwice    = "hello_twice"
	codeBadVisitor    = "bad_visitor"
	codeBadID         = "bad_id"
	codeEmptyText     = "empty_text"
	codeTextTooLong   = "text_too_long"
	codeRateLimited   = "rate_limited"
	codeInvalid       = "invalid"
	codeUnavailable   = "unavailable"
)

// clientFrame is any client → server frame; unknown fields are ignored so
// that older servers accept newer widgets.
type clientFrame struct {
	Type    string `json:"type"`
	Visitor string `json:"visitor"`
	Name    string `json:"name"`
	ID      string `json:"id"`
	Text    string `json:"text"`
}

type readyFrame struct {
	Type    string `json:"type"`
	Visitor string `json:"visitor"`
}

type ackFrame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	ID      string `json:"id,omitempty"`
}

var pongFrame = []byte(`{"type":"pong"}`)

// conn is one open socket. Its handler goroutine reads; Send and the
// handler write under wmu.
//
// The websocket must not be touched once its handler has returned
// (fasthttp recycles the connection object), so other goroutines reach it
// only under wmu (writes) or lmu (closing), and release sets both flags
// under those locks before the handler returns.
type conn struct {
	ws   *websocket.Conn
	raw  net.Conn // the TCP connection under fasthttp's recycled wrapper
	sink channels.Sink

	wmu  sync.Mutex
	dead bool // under wmu: a write failed or the handler is done

	lmu  sync.Mutex
	gone bool // under lmu: the handler is done

	// closing: a close frame was sent; the reader no longer extends its
	// deadline.
	closing atomic.Bool

	// Owned by the handler goroutine (visitor also read under Adapter.mu).
	visitor    string
	name       string
	tokens     float64
	last       time.Time
	violations int
}

// write sends one text frame. Safe for concurrent use.
func (c *conn) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(frame)
}

func (c *conn) writeLocked(frame []byte) error {
	if c.dead {
		return errors.New("webchat: socket closed")
	}
	c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		c.dead = true
		c.raw.Close() // the reader sees it and cleans up
		return err
	}
	return nil
}

func (c *conn) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.write(b)
}

func (c *conn) writeError(code, msg, id string) {
	c.writeJSON(errorFrame{Type: "error", Code: code, Message: msg, ID: id})
}

// closeWith sends a close frame and gives the client closeGrace to answer
// it before the reader gives up and the connection is closed. Safe for
// concurrent use with everything else; a no-op once the handler is done.
func (c *conn) closeWith(code int, reason string) {
	c.lmu.Lock()
	defer c.lmu.Unlock()
	if c.gone {
		return
	}
	c.closing.Store(true)
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(closeGrace))
	c.raw.SetReadDeadline(time.Now().Add(closeGrace))
}

// release ends every other goroutine's access to the socket; the handler
// calls it last. Closing first makes a write in progress fail at once
// (fasthttp closes the connection after the handler anyway).
func (c *conn) release() {
	c.raw.Close()
	c.wmu.Lock()
	c.dead = true
	c.wmu.Unlock()
	c.lmu.Lock()
	c.gone = true
	c.lmu.Unlock()
}

// allow takes a token from the socket's frame budget.
func (c *conn) allow(now time.Time) bool {
	if c.last.IsZero() {
		c.tokens, c.last = rateBurst, now
	}
	c.tokens = min(rateBurst, c.tokens+now.Sub(c.last).Seconds()*rateRefill)
	c.last = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// upgradeGate runs before the websocket upgrade: it refuses plain
// requests (426), a stopped adapter (503), foreign origins (403) and
// sockets over max_connections (503).
func (a *Adapter) upgradeGate(c *fiber.Ctx) error {
	if !fiberws.IsWebSocketUpgrade(c) {
		return httpError(c, fiber.StatusUpgradeRequired, "upgrade_required", "this is the chat websocket: connect with a websocket client")
	}
	a.mu.Lock()
	running := a.state == stateStarted
	a.mu.Unlock()
	if !running {
		c.Set(fiber.HeaderRetryAfter, "5")
		return httpError(c, fiber.StatusServiceUnavailable, "unavailable", "the web chat is not running")
	}
	if !a.originAllowed(c.Get(fiber.HeaderOrigin), c.Hostname()) {
		return httpError(c, fiber.StatusForbidden, "forbidden", "this site may not open the chat: add its origin to channels.webchat.allowed_origins")
	}
	if a.active.Load() >= int64(a.cfg.MaxConnections) {
		c.Set(fiber.HeaderRetryAfter, "5")
		return httpError(c, fiber.StatusServiceUnavailable, "unavailable", "too many chat connections; retry later")
	}
	return c.Next()
}

func httpError(c *fiber.Ctx, status int, code, msg string) error {
	return c.Status(status).JSON(fiber.Map{"error": fiber.Map{"code": code, "message": msg}})
}

// originAllowed: no Origin (not a browser), the same host, or a
// configured origin ("*": any).
func (a *Adapter) originAllowed(origin, host string) bool {
	if origin == "" {
		return true
	}
	for _, o := range a.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && strings.EqualFold(u.Host, host)
}

// register records a new socket; false once the adapter is not running.
func (a *Adapter) register(c *conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state != stateStarted {
		return false
	}
	a.conns[c] = struct{}{}
	c.sink = a.sink
	a.active.Add(1)
	a.wg.Add(1)
	return true
}

func (a *Adapter) unregister(c *conn) {
	a.mu.Lock()
	delete(a.conns, c)
	if c.visitor != "" {
		if v := a.visitors[c.visitor]; v != nil {
			delete(v.conns, c)
			a.forgetLocked(c.visitor, v)
		}
	}
	hook := a.afterUnregister
	a.mu.Unlock()
	a.active.Add(-1)
	if hook != nil {
		hook()
	}
	a.wg.Done()
}

// serveConn is one socket's handler (its own goroutine, owned by the
// fasthttp server and tracked by a.wg): it reads frames until the socket
// closes.
func (a *Adapter) serveConn(wc *fiberws.Conn) {
	c := &conn{ws: wc.Conn, raw: wc.Conn.NetConn()}
	if u, ok := c.raw.(interface{ UnsafeConn() net.Conn }); ok {
		c.raw = u.UnsafeConn() // fasthttp's hijackConn.Close does nothing
	}
	if !a.register(c) {
		c.closeWith(closeGoingAway, "server stopping")
		return
	}
	defer a.unregister(c)
	defer c.release()
	if a.active.Load() > int64(a.cfg.MaxConnections) {
		c.closeWith(closeTryAgain, "too many connections")
		return
	}
	ws := c.ws
	ws.SetReadLimit(maxFrame)
	ws.SetReadDeadline(time.Now().Add(pongWait))
	ws.SetPongHandler(func(string) error {
		if c.closing.Load() {
			return nil
		}
		return ws.SetReadDeadline(time.Now().Add(pongWait))
	})

	stop := make(chan struct{})
	var pinger sync.WaitGroup
	pinger.Add(1)
	go func() {
		defer pinger.Done()
		t := time.NewTicker(pingEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)) != nil {
					c.raw.Close()
					return
				}
			}
		}
	}()
	defer pinger.Wait()
	defer close(stop)

	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		ws.SetReadDeadline(time.Now().Add(pongWait))
		if c.closing.Load() { // checked after extending: closeWith's deadline wins
			return
		}
		if !a.handleFrame(c, mt, data) {
			return
		}
	}
}

// handleFrame answers one client frame; false closes the socket.
func (a *Adapter) handleFrame(c *conn, mt int, data []byte) bool {
	f, code, msg := parseFrame(mt, data)
	if !c.allow(a.now()) {
		c.violations++
		if c.violations > maxViolations {
			c.closeWith(closePolicy, "too many messages")
			return false
		}
		c.writeError(codeRateLimited, "发送太快了，请稍后再试", f.ID)
		return true
	}
	c.violations = 0
	if code != "" {
		c.writeError(code, msg, f.ID)
		return true
	}
	switch f.Type {
	case "ping":
		c.write(pongFrame)
	case "hello":
		a.hello(c, f)
	case "message":
		a.message(c, f, data)
	default:
		c.writeError(codeUnknownType, "未知的消息类型", f.ID)
	}
	return true
}

// parseFrame decodes a client frame; code is set when it is unusable.
func parseFrame(mt int, data []byte) (f clientFrame, code, msg string) {
	if mt != websocket.TextMessage {
		return f, codeBadFrame, "只接受 JSON 文本帧"
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return clientFrame{}, codeBadJSON, "无法解析的 JSON"
	}
	if f.Type == "" {
		return f, codeUnknownType, "缺少 type 字段"
	}
	return f, "", ""
}

// hello binds the socket to a visitor, answers ready and flushes the
// replies buffered for the visitor, in order, before any new one.
func (a *Adapter) hello(c *conn, f clientFrame) {
	if c.visitor != "" {
		c.writeError(codeHelloTwice, "已经打过招呼了", "")
		return
	}
	if !validID(f.Visitor, minVisitorLen, maxVisitorLen) {
		c.writeError(codeBadVisitor, "访客 ID 须为 8–64 个字母、数字、- 或 _", "")
		return
	}
	ready, _ := json.Marshal(readyFrame{Type: "ready", Visitor: f.Visitor})
	a.mu.Lock()
	v := a.visitors[f.Visitor]
	if v == nil {
		v = &visitor{conns: map[*conn]struct{}{}}
		a.visitors[f.Visitor] = v
	}
	v.conns[c] = struct{}{}
	c.visitor, c.name = f.Visitor, cleanName(f.Name)
	pending := a.takePendingLocked(f.Visitor, v)
	// Hold the socket's writer before a Send can see it, so that the
	// buffered replies go first.
	c.wmu.Lock()
	a.mu.Unlock()
	defer c.wmu.Unlock()
	if c.writeLocked(ready) != nil {
		return
	}
	for _, p := range pending {
		if c.writeLocked(p) != nil {
			return
		}
	}
}

// message hands a customer message to the sink and acknowledges it once
// it is stored.
func (a *Adapter) message(c *conn, f clientFrame, raw []byte) {
	if c.visitor == "" {
		c.writeError(codeHelloRequired, "请先发送 hello", f.ID)
		return
	}
	m, code, msg := buildMessage(c.visitor, c.name, f, raw, a.now(), a.cfg.MaxText)
	if code != "" {
		id := f.ID
		if code == codeBadID {
			id = ""
		}
		c.writeError(code, msg, id)
		return
	}
	a.mu.Lock()
	base := a.ctx
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(base, deliverTimeout)
	err := c.sink.Deliver(ctx, m)
	cancel()
	switch {
	case err == nil:
		c.writeJSON(ackFrame{Type: "ack", ID: f.ID})
	case errors.Is(err, channels.ErrInvalid):
		c.writeError(codeInvalid, "消息无法接收", f.ID)
	default:
		a.log.Warn("webchat: message not stored; the widget resends it", logKeyVisitor, c.visitor, logKeyError, err)
		c.writeError(codeUnavailable, "服务繁忙，稍后自动重试", f.ID)
	}
}

// buildMessage checks a "message" frame from a visitor and builds the
// unified message; code and msg say what is wrong otherwise.
func buildMessage(visitor, name string, f clientFrame, raw []byte, now time.Time, maxText int) (m *channels.Message, code, msg string) {
	if !validID(f.ID, 1, maxIDLen) {
		return nil, codeBadID, "消息 ID 须为 1–64 个字母、数字、- 或 _"
	}
	text := strings.TrimSpace(f.Text)
	if text == "" {
		return nil, codeEmptyText, "消息不能为空"
	}
	if utf8.RuneCountInString(text) > maxText {
		return nil, codeTextTooLong, "消息过长，最多 " + strconv.Itoa(maxText) + " 个字"
	}
	return &channels.Message{
		Channel:          Name,
		Platform:         Name,
		ID:               f.ID,
		DedupKey:         visitor + ":" + f.ID,
		Conversation:     visitor,
		ConversationType: channels.Direct,
		Sender:           channels.Sender{ID: visitor, Name: name},
		Time:             now.UTC(),
		Text:             text,
		Raw:              json.RawMessage(raw),
	}, "", ""
}

// validID: n to max bytes of [A-Za-z0-9_-].
func validID(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// cleanName trims a display name, drops control and format characters and
// keeps maxNameRunes runes.
func cleanName(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			continue
		}
		if n == maxNameRunes {
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
