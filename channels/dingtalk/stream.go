package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/buildinfo"
)

// Stream mode protocol constants.
const (
	openPath     = "/v1.0/gateway/connections/open"
	botTopic     = "/v1.0/im/bot/messages/get"
	frameSystem  = "SYSTEM"
	frameEvent   = "EVENT"
	frameCall    = "CALLBACK"
	topicPing    = "ping"
	topicDisconn = "disconnect"
	contentJSON  = "application/json"
)

// Stream connection tuning.
const (
	// streamQueue bounds the frames waiting for the delivery worker; when
	// full the reader waits (DingTalk holds unacknowledged messages).
	streamQueue = 64
	// pingEvery and pingTimeout: a websocket ping keeps NAT state alive
	// and finds a dead connection that DingTalk's own pings would not.
	pingEvery   = time.Minute
	pingTimeout = 10 * time.Second
	// minSession: a connection the server ends sooner than this is
	// followed by a backoff, not an immediate reconnect.
	minSession = time.Second
)

// frame is one stream message from DingTalk.
type frame struct {
	SpecVersion string       `json:"specVersion"`
	Type        string       `json:"type"`
	Headers     frameHeaders `json:"headers"`
	Data        string       `json:"data"`
}

// frameHeaders keeps header values raw: DingTalk sends strings, but a
// number must not make the whole frame unreadable.
type frameHeaders map[string]json.RawMessage

func (h frameHeaders) get(k string) string {
	v, ok := h[k]
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s
	}
	return string(bytes.TrimSpace(v))
}

func (f *frame) topic() string     { return f.Headers.get("topic") }
func (f *frame) messageID() string { return f.Headers.get("messageId") }

// parseFrame decodes a stream frame. Errors wrap ErrMalformed.
func parseFrame(b []byte) (*frame, error) {
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: frame: %w", ErrMalformed, err)
	}
	if f.Type == "" {
		return nil, fmt.Errorf("%w: frame without type", ErrMalformed)
	}
	return &f, nil
}

// ackFrame answers a frame.
type ackFrame struct {
	Code    int               `json:"code"`
	Headers map[string]string `json:"headers"`
	Message string            `json:"message"`
	Data    string            `json:"data"`
}

func newAck(messageID, data string) *ackFrame {
	return &ackFrame{
		Code:    http.StatusOK,
		Headers: map[string]string{"messageId": messageID, "contentType": contentJSON},
		Message: "OK",
		Data:    data,
	}
}

// callbackAck acknowledges a CALLBACK: consumed, no synchronous reply.
func callbackAck(id string) *ackFrame { return newAck(id, `{"response":null}`) }

// eventAck acknowledges an EVENT as consumed.
func eventAck(id string) *ackFrame { return newAck(id, `{"status":"SUCCESS","message":"success"}`) }

// runStream keeps a stream connection up until ctx ends.
func (a *Adapter) runStream(ctx context.Context) {
	attempt := 0
	for ctx.Err() == nil {
		began := a.now()
		connected, err := a.streamOnce(ctx)
		a.setConnected(false, "")
		if ctx.Err() != nil {
			return
		}
		if connected {
			attempt = 0
		}
		if err == nil && a.now().Sub(began) >= minSession {
			a.log.Info("dingtalk: stream: server asked to reconnect")
			continue
		}
		if err == nil {
			err = errors.New("server ended the connection at once")
		}
		attempt++
		a.noteError(err)
		d := a.backoff.Delay(attempt)
		a.log.Warn("dingtalk: stream connection lost; reconnecting", logKeyErr, err, logKeyDelay, d)
		if !channels.Sleep(ctx, d) {
			return
		}
	}
}

// streamOnce opens one connection and serves it until it breaks (an error),
// the server sends disconnect (nil) or ctx ends. connected says whether the
// websocket came up.
func (a *Adapter) streamOnce(ctx context.Context) (connected bool, err error) {
	endpoint, ticket, err := a.openConnection(ctx)
	if err != nil {
		return false, err
	}
	wsURL, host, err := ticketURL(endpoint, ticket)
	if err != nil {
		return false, err
	}
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: a.client})
	if err != nil {
		return false, fmt.Errorf("dingtalk: stream: dial %s: %w", host, err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(int64(a.cfg.MaxBody))
	a.setConnected(true, "stream mode: websocket to "+host)
	a.log.Info("dingtalk: stream connected", logKeyHost, host)

	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *frame, streamQueue)
	var worker, pinger sync.WaitGroup
	worker.Add(1)
	go func() {
		defer worker.Done()
		// Deliveries run on ctx, not connCtx: after a disconnect notice the
		// queued messages are still committed and acknowledged.
		for f := range jobs {
			if ack := a.handleDataFrame(ctx, f); ack != nil {
				if err := a.writeFrame(ctx, conn, ack); err != nil {
					a.log.Warn("dingtalk: stream: ack not sent; DingTalk will redeliver", logKeyFrame, f.messageID(), logKeyErr, err)
					cancel()
				}
			}
		}
	}()
	pinger.Add(1)
	go func() {
		defer pinger.Done()
		a.keepalive(connCtx, conn, cancel)
	}()
	err = a.readFrames(connCtx, conn, jobs)
	close(jobs)
	worker.Wait()
	cancel()
	pinger.Wait()
	return true, err
}

// readFrames reads until the connection fails (an error) or the server
// says disconnect (nil). SYSTEM frames are answered here; CALLBACK and
// EVENT frames go to jobs, in order.
func (a *Adapter) readFrames(ctx context.Context, conn *websocket.Conn, jobs chan<- *frame) error {
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("dingtalk: stream: read: %w", err)
		}
		if typ != websocket.MessageText {
			continue
		}
		f, err := parseFrame(data)
		if err != nil {
			a.log.Warn("dingtalk: stream: unreadable frame ignored", logKeyErr, err)
			continue
		}
		switch f.Type {
		case frameSystem:
			switch f.topic() {
			case topicPing:
				if err := a.writeFrame(ctx, conn, newAck(f.messageID(), f.Data)); err != nil {
					return fmt.Errorf("dingtalk: stream: answer ping: %w", err)
				}
			case topicDisconn:
				return nil
			default:
				a.log.Debug("dingtalk: stream: system frame ignored", logKeyTopic, f.topic())
			}
		case frameCall, frameEvent:
			select {
			case jobs <- f:
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			a.log.Debug("dingtalk: stream: frame type ignored", logKeyType, f.Type)
		}
	}
}

// handleDataFrame delivers a CALLBACK frame's robot message and returns
// the ack to send, or nil when the message must not be acknowledged (the
// hub did not commit it: DingTalk redelivers).
func (a *Adapter) handleDataFrame(ctx context.Context, f *frame) *ackFrame {
	id := f.messageID()
	if f.Type == frameEvent {
		a.log.Debug("dingtalk: stream: event ignored", logKeyTopic, f.topic())
		return eventAck(id)
	}
	if f.topic() != botTopic {
		a.log.Debug("dingtalk: stream: callback topic ignored", logKeyTopic, f.topic())
		return callbackAck(id)
	}
	sink := a.getSink()
	m, err := parseBotMessage([]byte(f.Data), a.now())
	switch {
	case errors.Is(err, errIgnore):
		a.log.Debug("dingtalk: stream: message ignored", logKeyFrame, id, logKeyErr, err)
		return callbackAck(id)
	case err != nil:
		// Redelivery cannot fix it: acknowledge and count it.
		sink.Rejected(channels.ReasonMalformed)
		a.log.Warn("dingtalk: stream: malformed robot message dropped", logKeyFrame, id, logKeyErr, err)
		return callbackAck(id)
	}
	m.Channel = a.Name()
	if err := sink.Deliver(ctx, m); err != nil {
		if errors.Is(err, channels.ErrInvalid) {
			a.log.Warn("dingtalk: stream: message refused by the hub", logKeyMsgID, m.ID, logKeyErr, err)
			return callbackAck(id)
		}
		a.noteError(fmt.Errorf("deliver: %w", err))
		a.log.Warn("dingtalk: stream: message not committed; DingTalk will redeliver", logKeyMsgID, m.ID, logKeyErr, err)
		return nil
	}
	return callbackAck(id)
}

func (a *Adapter) writeFrame(ctx context.Context, conn *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, b)
}

// keepalive pings the server every pingEvery; a ping that goes unanswered
// ends the connection (cancel).
func (a *Adapter) keepalive(ctx context.Context, conn *websocket.Conn, cancel context.CancelFunc) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, pcancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				a.log.Warn("dingtalk: stream: ping unanswered; reconnecting", logKeyErr, err)
				cancel()
				return
			}
		}
	}
}

type subscription struct {
	Type  string `json:"type"`
	Topic string `json:"topic"`
}

type openRequest struct {
	ClientID      string         `json:"clientId"`
	ClientSecret  string         `json:"clientSecret"`
	Subscriptions []subscription `json:"subscriptions"`
	UA            string         `json:"ua"`
	LocalIP       string         `json:"localIp"`
}

// openConnection asks the gateway for a websocket endpoint and ticket.
func (a *Adapter) openConnection(ctx context.Context) (endpoint, ticket string, err error) {
	req := openRequest{
		ClientID:      a.cfg.ClientID,
		ClientSecret:  a.cfg.ClientSecret.Value(),
		Subscriptions: []subscription{{Type: frameCall, Topic: botTopic}},
		UA:            "zhiyin/" + buildinfo.Version,
		LocalIP:       localIP(),
	}
	res, err := a.postJSON(ctx, a.cfg.APIBase+openPath, nil, req)
	if err != nil {
		return "", "", fmt.Errorf("dingtalk: stream: open connection: %w", err)
	}
	if res.status != http.StatusOK {
		err := fmt.Errorf("dingtalk: stream: open connection: %s", res.describe())
		if res.status >= 400 && res.status < 500 && res.status != http.StatusTooManyRequests {
			err = fmt.Errorf("%w (check client_id and client_secret, and that the robot uses Stream mode)", err)
		}
		return "", "", err
	}
	var out struct {
		Endpoint string `json:"endpoint"`
		Ticket   string `json:"ticket"`
	}
	if err := json.Unmarshal(res.body, &out); err != nil || out.Endpoint == "" || out.Ticket == "" {
		return "", "", fmt.Errorf("dingtalk: stream: open connection: no endpoint and ticket in the answer")
	}
	return out.Endpoint, out.Ticket, nil
}

// ticketURL adds the ticket to the endpoint; host is for messages (the URL
// itself carries the ticket and is never logged).
func ticketURL(endpoint, ticket string) (wsURL, host string, err error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("dingtalk: stream: bad endpoint %q from the gateway", endpoint)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return "", "", fmt.Errorf("dingtalk: stream: bad endpoint scheme %q from the gateway", u.Scheme)
	}
	q := u.Query()
	q.Set("ticket", ticket)
	u.RawQuery = q.Encode()
	return u.String(), u.Host, nil
}

// localIP is the first non-loopback IPv4 address, which the gateway
// records for the console's connection list.
func localIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, ad := range addrs {
		if n, ok := ad.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// trimForError shortens a response body for an error message.
func trimForError(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
