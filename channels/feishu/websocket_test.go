package feishu

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
)

// fakeLongConn is Feishu's long connection service: the endpoint call and
// a websocket speaking pbbp2 frames. Each accepted connection is handed to
// the test.
type fakeLongConn struct {
	srv       *httptest.Server
	conns     chan *websocket.Conn
	stop      chan struct{}
	endpoints atomic.Int32
	failFirst atomic.Bool
}

func newFakeLongConn(t *testing.T) *fakeLongConn {
	f := &fakeLongConn{conns: make(chan *websocket.Conn, 4), stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+endpointPath, func(w http.ResponseWriter, r *http.Request) {
		var req map[string]string
		_ = json.NewDecoder(r.Body).Decode(&req)
		if f.endpoints.Add(1) == 1 && f.failFirst.Load() {
			answer(w, 200, map[string]any{"code": 1, "msg": "system busy"})
			return
		}
		if req["AppID"] != testAppID || req["AppSecret"] != testSecret {
			answer(w, 200, map[string]any{"code": 1000040343, "msg": "app secret invalid"})
			return
		}
		u := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws?device_id=d1&service_id=7"
		answer(w, 200, map[string]any{"code": 0, "msg": "ok", "data": map[string]any{
			"URL":          u,
			"ClientConfig": map[string]int{"ReconnectCount": -1, "ReconnectInterval": 120, "ReconnectNonce": 30, "PingInterval": 120},
		}})
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("service_id") != "7" {
			http.Error(w, "no service", 400)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		f.conns <- c
		select {
		case <-f.stop:
		case <-r.Context().Done():
		}
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() { close(f.stop); f.srv.Close() })
	return f
}

func (f *fakeLongConn) accept(t *testing.T) *websocket.Conn {
	t.Helper()
	select {
	case c := <-f.conns:
		c.SetReadLimit(-1)
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the adapter did not connect")
		return nil
	}
}

func readFrame(t *testing.T, c *websocket.Conn) *frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageBinary {
		t.Fatalf("read: %v %v", typ, err)
	}
	f, err := decodeFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// readAck returns the next data frame, skipping pings.
func readAck(t *testing.T, c *websocket.Conn) (*frame, int) {
	t.Helper()
	for {
		f := readFrame(t, c)
		if f.Method == methodControl {
			continue
		}
		var ack struct {
			Code    int               `json:"code"`
			Headers map[string]string `json:"headers"`
			Data    string            `json:"data"`
		}
		if err := json.Unmarshal(f.Payload, &ack); err != nil {
			t.Fatalf("ack payload %q: %v", f.Payload, err)
		}
		if f.header(hdrBizRT) == "" {
			t.Fatalf("ack without biz_rt: %+v", f.Headers)
		}
		return f, ack.Code
	}
}

func writeFrame(t *testing.T, c *websocket.Conn, f *frame) {
	t.Helper()
	if err := c.Write(context.Background(), websocket.MessageBinary, f.encode()); err != nil {
		t.Fatal(err)
	}
}

var seq atomic.Uint64

func eventFrame(msgID string, payload []byte, sum, part int) *frame {
	return &frame{
		SeqID: seq.Add(1), LogID: 99, Service: 7, Method: methodData,
		Headers: []header{
			{hdrType, typeEvent}, {hdrMessageID, msgID}, {hdrSum, strconv.Itoa(sum)}, {hdrSeq, strconv.Itoa(part)}, {hdrTraceID, "trace-" + msgID},
		},
		PayloadEncoding: "", PayloadType: "", Payload: payload, LogIDNew: "log-" + msgID,
	}
}

// deliver sends one event frame and returns the ack's code after checking
// the ack echoes the frame.
func deliver(t *testing.T, c *websocket.Conn, msgID string, payload []byte) int {
	t.Helper()
	f := eventFrame(msgID, payload, 1, 0)
	writeFrame(t, c, f)
	ack, code := readAck(t, c)
	if ack.SeqID != f.SeqID || ack.Service != 7 || ack.header(hdrMessageID) != msgID || ack.header(hdrTraceID) != "trace-"+msgID || ack.LogIDNew != "log-"+msgID {
		t.Fatalf("ack does not echo the frame: %+v", ack)
	}
	return code
}

func TestLongConnection(t *testing.T) {
	fake := newFakeLongConn(t)
	fake.failFirst.Store(true)
	cfg := testConfig()
	cfg.Mode, cfg.BaseURL = ModeWebsocket, fake.srv.URL
	a := newTestAdapter(t, cfg)
	a.backoff = channels.Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond}
	if len(a.Routes()) != 0 {
		t.Fatal("websocket mode has no callback route")
	}
	sink := &flakySink{Sink: channelstest.NewSink()}
	if err := a.Start(t.Context(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })

	c := fake.accept(t)
	if st := a.State(); !strings.Contains(st.LastError, "system busy") {
		t.Fatalf("the failed endpoint call is not in State: %+v", st)
	}
	// A ping at once, on the URL's service id.
	if p := readFrame(t, c); p.Method != methodControl || p.header(hdrType) != typePing || p.Service != 7 {
		t.Fatalf("first frame %+v, want a ping", p)
	}
	if st := a.State(); !st.Connected || !strings.Contains(st.Detail, "websocket") {
		t.Fatalf("state %+v", st)
	}

	// An event: delivered, then acked 200.
	if code := deliver(t, c, "m1", textEvent("ev-1", "om_1", "group", "@_user_1 hi", testBot)); code != 200 {
		t.Fatalf("ack code %d", code)
	}
	if msgs := sink.Messages(); len(msgs) != 1 || msgs[0].Key() != "ev-1" || msgs[0].Channel != "feishu" || msgs[0].Text != "hi" {
		t.Fatalf("messages %+v", msgs)
	}

	// A payload split in two parts, sent out of order.
	p2 := textEvent("ev-2", "om_2", "p2p", "second")
	writeFrame(t, c, eventFrame("m2", p2[len(p2)/2:], 2, 1))
	writeFrame(t, c, eventFrame("m2", p2[:len(p2)/2], 2, 0))
	if _, code := readAck(t, c); code != 200 {
		t.Fatalf("split ack %d", code)
	}
	if msgs := sink.Messages(); len(msgs) != 2 || msgs[1].Key() != "ev-2" || msgs[1].Text != "second" {
		t.Fatalf("messages %+v", msgs)
	}

	// Feishu redelivers ev-1 under a new frame message id: one message.
	if code := deliver(t, c, "m3", textEvent("ev-1", "om_1", "group", "@_user_1 hi", testBot)); code != 200 {
		t.Fatalf("redelivery ack %d", code)
	}
	if n := len(sink.Messages()); n != 2 {
		t.Fatalf("%d messages after redelivery", n)
	}

	// The inbox fails: ack 500, so Feishu redelivers.
	errDown := errors.New("inbox down")
	sink.err.Store(&errDown)
	if code := deliver(t, c, "m4", textEvent("ev-3", "om_3", "p2p", "x")); code != 500 {
		t.Fatalf("failed delivery acked %d", code)
	}
	sink.err.Store(nil)
	if code := deliver(t, c, "m5", textEvent("ev-3", "om_3", "p2p", "x")); code != 200 || len(sink.Messages()) != 3 {
		t.Fatalf("redelivered: ack %d, %d messages", code, len(sink.Messages()))
	}

	// Other event types and garbage frames: acked or dropped, nothing
	// delivered, the connection survives.
	if code := deliver(t, c, "m6", []byte(`{"schema":"2.0","header":{"event_id":"e6","event_type":"contact.user.created_v3"},"event":{}}`)); code != 200 {
		t.Fatalf("ignored event acked %d", code)
	}
	if err := c.Write(t.Context(), websocket.MessageBinary, []byte{0x08}); err != nil {
		t.Fatal(err)
	}
	// A pong carrying a new ClientConfig; the read loop handles frames in
	// order, so once the next event is acked it was applied.
	writeFrame(t, c, &frame{Service: 7, Method: methodControl, Headers: []header{{hdrType, typePong}}, Payload: []byte(`{"PingInterval":42}`)})
	if code := deliver(t, c, "m7", textEvent("ev-4", "om_4", "p2p", "y")); code != 200 || len(sink.Messages()) != 4 {
		t.Fatalf("after garbage: ack %d, %d messages", code, len(sink.Messages()))
	}
	if sink.Rejections(channels.ReasonMalformed) != 1 {
		t.Fatalf("garbage frame not counted")
	}
	if d := a.ws.pingInterval(); d != 42*time.Second {
		t.Fatalf("ping interval %s after pong", d)
	}

	// The server drops the connection: the adapter reconnects.
	_ = c.Close(websocket.StatusGoingAway, "rebalance")
	c2 := fake.accept(t)
	if p := readFrame(t, c2); p.header(hdrType) != typePing {
		t.Fatalf("first frame after reconnect %+v", p)
	}
	if fake.endpoints.Load() != 3 {
		t.Fatalf("%d endpoint calls, want 3", fake.endpoints.Load())
	}
	if code := deliver(t, c2, "m8", textEvent("ev-5", "om_5", "p2p", "z")); code != 200 {
		t.Fatalf("after reconnect: %d", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if st := a.State(); st.Connected {
		t.Fatalf("connected after Stop: %+v", st)
	}
}

func TestAssembleBounds(t *testing.T) {
	a := newTestAdapter(t, testConfig())
	a.sink = channelstest.NewSink()
	s := &session{a: a, pending: map[string]*partial{}}
	// Bad sum/seq are dropped.
	for _, h := range [][2]int{{2, 2}, {2, -1}, {maxParts + 1, 0}} {
		if s.assemble(eventFrame("m", []byte("x"), h[0], h[1]), fixedNow) != nil {
			t.Fatalf("sum %d seq %d accepted", h[0], h[1])
		}
	}
	// At most maxPending incomplete payloads are kept.
	for i := range maxPending + 10 {
		s.assemble(eventFrame("m"+strings.Repeat("x", i), []byte("x"), 2, 0), fixedNow.Add(time.Duration(i)))
	}
	if len(s.pending) != maxPending {
		t.Fatalf("%d pending", len(s.pending))
	}
	// Stale parts expire.
	s.assemble(eventFrame("late", []byte("x"), 2, 0), fixedNow.Add(2*pendingTTL))
	if len(s.pending) != 1 {
		t.Fatalf("%d pending after the TTL", len(s.pending))
	}
	// Oversize payloads are dropped.
	a.cfg.MaxBody = 10
	if s.assemble(eventFrame("big", []byte("0123456789"), 2, 0), fixedNow) != nil || s.assemble(eventFrame("big", []byte("x"), 2, 1), fixedNow) != nil {
		t.Fatal("oversize payload assembled")
	}
}
