package slack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

// fakeSocketMode is Slack's side of Socket Mode: apps.connections.open
// (app token only) hands out a single-use websocket URL; auth.test answers
// the bot token. Accepted connections go to conns for the test to drive.
type fakeSocketMode struct {
	t     *testing.T
	srv   *httptest.Server
	conns chan *fakeConn
	stop  chan struct{}

	mu       sync.Mutex
	opens    int // connections.open calls, failed ones included
	failNext int // how many next opens answer internal_error
	used     map[string]bool
}

type fakeConn struct {
	n    int // which connections.open gave its URL
	c    *websocket.Conn
	done chan struct{}
}

func newFakeSocketMode(t *testing.T) *fakeSocketMode {
	f := &fakeSocketMode{t: t, conns: make(chan *fakeConn, 4), stop: make(chan struct{}), used: map[string]bool{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(func() {
		close(f.stop)
		f.srv.Close()
	})
	return f
}

func (f *fakeSocketMode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch r.URL.Path {
	case "/api/auth.test":
		if r.Header.Get("Authorization") != "Bearer xoxb-test" {
			reply(map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		reply(map[string]any{"ok": true, "user_id": "UBOT", "team_id": "T1"})
	case "/api/apps.connections.open":
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer xapp-test" {
			reply(map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		f.mu.Lock()
		f.opens++
		n, fail := f.opens, f.failNext > 0
		if fail {
			f.failNext--
		}
		f.mu.Unlock()
		if fail {
			reply(map[string]any{"ok": false, "error": "internal_error"})
			return
		}
		reply(map[string]any{"ok": true, "url": "ws://" + r.Host + "/link/?ticket=t" + strconv.Itoa(n)})
	case "/link/":
		ticket := r.URL.Query().Get("ticket")
		f.mu.Lock()
		fresh := ticket != "" && !f.used[ticket]
		f.used[ticket] = true
		f.mu.Unlock()
		if !fresh {
			http.Error(w, "ticket used or missing", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(ticket, "t"))
		fc := &fakeConn{n: n, c: c, done: make(chan struct{})}
		f.conns <- fc
		select {
		case <-fc.done:
		case <-f.stop:
		}
		c.CloseNow()
	default:
		http.NotFound(w, r)
	}
}

// next waits for the adapter's next connection.
func (f *fakeSocketMode) next(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-f.conns:
		t.Cleanup(func() { c.close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no socket mode connection")
		return nil
	}
}

func (c *fakeConn) close() {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
}

func (c *fakeConn) send(t *testing.T, frame string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		t.Fatal(err)
	}
}

// readAck returns the envelope_id of the next frame, which must be an ack.
func (c *fakeConn) readAck(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, data, err := c.c.Read(ctx)
	if err != nil {
		t.Fatal("reading ack:", err)
	}
	var ack map[string]any
	if err := json.Unmarshal(data, &ack); err != nil || len(ack) != 1 || ack["envelope_id"] == nil {
		t.Fatalf("not an ack: %s", data)
	}
	return ack["envelope_id"].(string)
}

func eventsAPI(id, payload string, retry int) string {
	return `{"envelope_id":"` + id + `","type":"events_api","accepts_response_payload":false,"retry_attempt":` +
		strconv.Itoa(retry) + `,"retry_reason":"","payload":` + payload + `}`
}

const helloFrame = `{"type":"hello","num_connections":1,"debug_info":{"host":"applink-1","approximate_connection_time":18060},"connection_info":{"app_id":"A1"}}`

// failingSink fails Deliver for one message id.
type failingSink struct {
	*channelstest.Sink
	mu   sync.Mutex
	fail string
}

func (s *failingSink) Deliver(ctx context.Context, m *channels.Message) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if m.ID == fail {
		return errors.New("database busy")
	}
	return s.Sink.Deliver(ctx, m)
}

func (s *failingSink) setFail(id string) {
	s.mu.Lock()
	s.fail = id
	s.mu.Unlock()
}

func TestSocketMode(t *testing.T) {
	f := newFakeSocketMode(t)
	f.failNext = 1
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.Mode = ModeSocket
	cfg.BotToken = config.NewSecret("xoxb-test")
	cfg.AppToken = config.NewSecret("xapp-test")
	cfg.APIBase = f.srv.URL + "/api"
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.backoff = channels.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}
	a.pingInterval = time.Hour
	if len(a.Routes()) != 0 {
		t.Fatal("socket mode mounts routes")
	}
	sink := &failingSink{Sink: channelstest.NewSink()}
	if err := a.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })

	// The first connections.open failed; the retry's URL is used.
	c1 := f.next(t)
	if c1.n != 2 {
		t.Fatalf("first connection from open #%d", c1.n)
	}
	if !strings.Contains(a.State().LastError, "internal_error") {
		t.Fatalf("state %+v", a.State())
	}
	c1.send(t, helloFrame)
	p1 := callback("Ev1", msgEvent("D1", "im", "1700000000.000100", "hi"))
	c1.send(t, eventsAPI("e1", p1, 0))
	if id := c1.readAck(t); id != "e1" {
		t.Fatalf("ack %q", id)
	}
	// Acked after Deliver: the message is there already.
	if ms := sink.Messages(); len(ms) != 1 || ms[0].ID != "D1:1700000000.000100" || ms[0].Text != "hi" || string(ms[0].Raw) != p1 {
		t.Fatalf("messages %+v", ms)
	}
	if !a.State().Connected {
		t.Fatal("not connected after hello")
	}

	// A Deliver failure is not acked (Slack redelivers): the next ack is
	// the following envelope's.
	sink.setFail("D1:1700000000.000200")
	p2 := callback("Ev2", msgEvent("D1", "im", "1700000000.000200", "two"))
	c1.send(t, eventsAPI("e2", p2, 0))
	c1.send(t, eventsAPI("e3", callback("Ev3", msgEvent("D1", "im", "1700000000.000300", "three")), 0))
	if id := c1.readAck(t); id != "e3" {
		t.Fatalf("ack %q, want e3 (e2 failed)", id)
	}
	sink.setFail("")
	c1.send(t, eventsAPI("e2", p2, 1))
	if id := c1.readAck(t); id != "e2" {
		t.Fatalf("ack %q", id)
	}
	// A redelivery of e1 is acked and deduplicated.
	c1.send(t, eventsAPI("e1", p1, 1))
	if id := c1.readAck(t); id != "e1" {
		t.Fatalf("ack %q", id)
	}
	if n := len(sink.Messages()); n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}

	// Garbage is counted and skipped; a bot's message, a malformed payload
	// and a slash command are acked and not delivered.
	c1.send(t, `not json`)
	c1.send(t, eventsAPI("e4", callback("Ev4", `{"type":"message","subtype":"bot_message","bot_id":"B1","channel":"C1","text":"x","ts":"1.1"}`), 0))
	c1.send(t, eventsAPI("e5", `{"type":"event_callback","event":{"type":"message","channel":"C1","user":"U1"}}`, 0))
	c1.send(t, `{"envelope_id":"s1","type":"slash_commands","accepts_response_payload":true,"payload":{"command":"/help"}}`)
	for _, want := range []string{"e4", "e5", "s1"} {
		if id := c1.readAck(t); id != want {
			t.Fatalf("ack %q, want %q", id, want)
		}
	}
	if n := len(sink.Messages()); n != 3 || sink.Rejections(channels.ReasonMalformed) != 2 {
		t.Fatalf("%d messages, %d malformed", n, sink.Rejections(channels.ReasonMalformed))
	}

	// disconnect: a new connections.open and a new connection.
	c1.send(t, `{"type":"disconnect","reason":"refresh_requested","debug_info":{"host":"applink-1"}}`)
	c2 := f.next(t)
	if c2.n != 3 {
		t.Fatalf("reconnected with open #%d", c2.n)
	}
	c2.send(t, helloFrame)
	c2.send(t, eventsAPI("e6", callback("Ev6", msgEvent("C1", "channel", "1700000000.000600", "<@UBOT> six")), 0))
	if id := c2.readAck(t); id != "e6" {
		t.Fatalf("ack %q", id)
	}
	ms := sink.Messages()
	if len(ms) != 4 || !ms[3].Mentioned || ms[3].Text != "six" {
		t.Fatalf("messages %+v", ms)
	}

	// A dropped connection reconnects (with backoff) through a new open.
	c2.close()
	c3 := f.next(t)
	if c3.n != 4 {
		t.Fatalf("reconnected with open #%d", c3.n)
	}
	c3.send(t, helloFrame)
	c3.send(t, eventsAPI("e7", callback("Ev7", msgEvent("D1", "im", "1700000000.000700", "seven")), 0))
	if id := c3.readAck(t); id != "e7" {
		t.Fatalf("ack %q", id)
	}

	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.State().Connected {
		t.Fatal("connected after Stop")
	}
}

func TestParseSocketEnvelope(t *testing.T) {
	env, err := parseSocketEnvelope([]byte(`{"type":"disconnect","reason":"warning"}`))
	if err != nil || env.Type != "disconnect" || env.Reason != "warning" {
		t.Fatalf("%+v %v", env, err)
	}
	env, err = parseSocketEnvelope([]byte(eventsAPI("x1", `{"type":"event_callback"}`, 2)))
	if err != nil || env.EnvelopeID != "x1" || env.RetryAttempt != 2 || string(env.Payload) != `{"type":"event_callback"}` {
		t.Fatalf("%+v %v", env, err)
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"type":1}`} {
		if _, err := parseSocketEnvelope([]byte(bad)); !errors.Is(err, errMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
