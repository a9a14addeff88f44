package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
)

const wait = 10 * time.Second

func frameJSON(typ, topic, id, data string) []byte {
	b, _ := json.Marshal(map[string]any{
		"specVersion": "1.0",
		"type":        typ,
		"headers":     map[string]string{"topic": topic, "messageId": id, "contentType": "application/json", "time": "1700000000000"},
		"data":        data,
	})
	return b
}

func send(t *testing.T, c *websocket.Conn, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("fake write: %v", err)
	}
}

func readAck(t *testing.T, c *websocket.Conn) ackFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("fake read: %v", err)
	}
	var a ackFrame
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("ack %s: %v", b, err)
	}
	if a.Code != 200 || a.Headers["contentType"] != "application/json" {
		t.Fatalf("ack %s", b)
	}
	return a
}

func TestStream(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeStream)
	sink := channelstest.NewSink()
	if err := a.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	defer stopAdapter(t, a)
	c1 := f.nextConn(t)

	// A callback is delivered, then acknowledged.
	send(t, c1, frameJSON("CALLBACK", botTopic, "frame-1", botJSON("msg-1", "2", " 你好 ", f.srv.URL)))
	ack := readAck(t, c1)
	if ack.Headers["messageId"] != "frame-1" || ack.Message != "OK" || ack.Data != `{"response":null}` {
		t.Fatalf("ack %+v", ack)
	}
	if got := len(sink.Messages()); got != 1 {
		t.Fatalf("acked with %d messages committed, want 1 (ack must follow Deliver)", got)
	}
	if st := a.State(); !st.Connected {
		t.Errorf("state %+v, want connected", st)
	}
	m := sink.Messages()[0]
	if m.Channel != "dingtalk" || m.ID != "msg-1" || m.Text != "你好" || m.ConversationType != channels.Group || !m.Mentioned {
		t.Errorf("message %+v", m)
	}

	// A ping is echoed with its data.
	send(t, c1, frameJSON("SYSTEM", "ping", "ping-1", `{"opaque":"x-1"}`))
	if ack := readAck(t, c1); ack.Headers["messageId"] != "ping-1" || ack.Data != `{"opaque":"x-1"}` {
		t.Fatalf("pong %+v", ack)
	}

	// A redelivery is acknowledged and deduplicated.
	send(t, c1, frameJSON("CALLBACK", botTopic, "frame-1", botJSON("msg-1", "2", "你好", f.srv.URL)))
	if ack := readAck(t, c1); ack.Headers["messageId"] != "frame-1" {
		t.Fatalf("ack %+v", ack)
	}
	// Unknown events, topics and message types are acknowledged, not delivered.
	send(t, c1, frameJSON("EVENT", "chat_update_title", "ev-1", `{}`))
	if ack := readAck(t, c1); ack.Headers["messageId"] != "ev-1" {
		t.Fatalf("event ack %+v", ack)
	}
	send(t, c1, frameJSON("CALLBACK", "/v1.0/card/instances/callback", "card-1", `{}`))
	if ack := readAck(t, c1); ack.Headers["messageId"] != "card-1" {
		t.Fatalf("card ack %+v", ack)
	}
	var odd map[string]any
	_ = json.Unmarshal([]byte(botJSON("msg-odd", "1", "", f.srv.URL)), &odd)
	odd["msgtype"] = "interactiveCard"
	oddJSON, _ := json.Marshal(odd)
	send(t, c1, frameJSON("CALLBACK", botTopic, "odd-1", string(oddJSON)))
	if ack := readAck(t, c1); ack.Headers["messageId"] != "odd-1" {
		t.Fatalf("odd ack %+v", ack)
	}
	if got := len(sink.Messages()); got != 1 {
		t.Fatalf("%d messages, want 1", got)
	}

	// disconnect: the adapter opens a new connection.
	send(t, c1, frameJSON("SYSTEM", "disconnect", "dis-1", `{"reason":"upgrade"}`))
	c2 := f.nextConn(t)
	if n := f.openCount(); n != 2 {
		t.Errorf("connections/open called %d times, want 2", n)
	}
	send(t, c2, frameJSON("CALLBACK", botTopic, "frame-2", botJSON("msg-2", "1", "second", f.srv.URL)))
	if ack := readAck(t, c2); ack.Headers["messageId"] != "frame-2" {
		t.Fatalf("ack %+v", ack)
	}
	if msgs := sink.WaitMessages(2, wait); len(msgs) != 2 || msgs[1].ConversationType != channels.Direct {
		t.Fatalf("messages %+v", msgs)
	}

	// A dropped connection reconnects too.
	c2.CloseNow()
	c3 := f.nextConn(t)
	send(t, c3, frameJSON("SYSTEM", "ping", "ping-3", `{}`))
	if ack := readAck(t, c3); ack.Headers["messageId"] != "ping-3" {
		t.Fatalf("pong %+v", ack)
	}
}

// failingSink fails the first n Delivers.
type failingSink struct {
	*channelstest.Sink
	n atomic.Int32
}

func (s *failingSink) Deliver(ctx context.Context, m *channels.Message) error {
	if s.n.Add(-1) >= 0 {
		return errors.New("database busy")
	}
	return s.Sink.Deliver(ctx, m)
}

func TestStreamDeliverFailureNotAcked(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeStream)
	sink := &failingSink{Sink: channelstest.NewSink()}
	sink.n.Store(1)
	if err := a.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	defer stopAdapter(t, a)
	c := f.nextConn(t)
	send(t, c, frameJSON("CALLBACK", botTopic, "fa", botJSON("msg-a", "2", "a", f.srv.URL)))
	send(t, c, frameJSON("CALLBACK", botTopic, "fb", botJSON("msg-b", "2", "b", f.srv.URL)))
	// Callbacks are handled in order: the first ack is b's, so a got none.
	if ack := readAck(t, c); ack.Headers["messageId"] != "fb" {
		t.Fatalf("first ack for %q, want fb (a's Deliver failed: no ack)", ack.Headers["messageId"])
	}
	// DingTalk redelivers a.
	send(t, c, frameJSON("CALLBACK", botTopic, "fa", botJSON("msg-a", "2", "a", f.srv.URL)))
	if ack := readAck(t, c); ack.Headers["messageId"] != "fa" {
		t.Fatalf("ack %+v", ack)
	}
	if msgs := sink.Messages(); len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	if st := a.State(); st.LastError == "" {
		t.Errorf("state %+v: want the delivery error", st)
	}
}

func TestStreamBadCredentials(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeStream)
	a.cfg.ClientID = "wrong"
	connected, err := a.streamOnce(context.Background())
	if connected || err == nil || !strings.Contains(err.Error(), "check client_id") {
		t.Fatalf("streamOnce = %v, %v", connected, err)
	}
	if strings.Contains(err.Error(), testClientSecret) {
		t.Fatalf("error leaks the secret: %v", err)
	}
}

func TestStopWithoutStart(t *testing.T) {
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeStream)
	stopAdapter(t, a)
}
