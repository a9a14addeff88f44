package feishu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/zhiyin/zhiyin/channels"
)

const endpointPath = "/callback/ws/endpoint"

// Long connection bounds.
const (
	// wsWorkers bounds the events handled at once on one connection; the
	// read loop waits when all are busy.
	wsWorkers = 16
	// maxPending bounds the split payloads being reassembled; the oldest is
	// dropped when full (Feishu redelivers what was never acked).
	maxPending = 32
	// maxParts bounds the parts of one payload.
	maxParts = 64
	// pendingTTL drops a split payload whose parts stop coming.
	pendingTTL = time.Minute
	// defaultPing is the ping interval until Feishu says otherwise.
	defaultPing = 2 * time.Minute
	// writeTimeout bounds one frame write.
	writeTimeout = 10 * time.Second
)

// wsState is the long connection's state shared between its goroutines.
type wsState struct {
	// ping is the ping interval in nanoseconds (0: defaultPing), set from
	// ClientConfig in the endpoint answer and in pongs.
	ping atomic.Int64
}

func (s *wsState) pingInterval() time.Duration {
	if d := time.Duration(s.ping.Load()); d > 0 {
		return d
	}
	return defaultPing
}

// clientConfig is ClientConfig in the endpoint answer and in pongs
// (seconds).
type clientConfig struct {
	ReconnectCount    int `json:"ReconnectCount"`
	ReconnectInterval int `json:"ReconnectInterval"`
	ReconnectNonce    int `json:"ReconnectNonce"`
	PingInterval      int `json:"PingInterval"`
}

func (a *Adapter) configure(c clientConfig) {
	if c.PingInterval > 0 && c.PingInterval < 24*3600 {
		a.ws.ping.Store(int64(time.Duration(c.PingInterval) * time.Second))
	}
}

// runWebsocket keeps a long connection up until ctx ends, reconnecting
// with backoff.
func (a *Adapter) runWebsocket(ctx context.Context) {
	defer a.wg.Done()
	fails := 0
	for {
		connected, err := a.wsSession(ctx)
		if ctx.Err() != nil {
			return
		}
		a.setConnected(false, "websocket: reconnecting")
		if connected {
			fails = 0
		}
		fails++
		d := a.backoff.Delay(fails)
		if err != nil {
			a.setError(err)
			a.log.Warn("feishu: long connection failed; reconnecting", logErr, err, logDelay, d)
		}
		if !channels.Sleep(ctx, d) {
			return
		}
	}
}

// endpoint asks for the long connection's URL.
func (a *Adapter) endpoint(ctx context.Context) (string, clientConfig, error) {
	var resp struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
		Data struct {
			URL          string       `json:"URL"`
			ClientConfig clientConfig `json:"ClientConfig"`
		} `json:"data"`
	}
	req := map[string]string{"AppID": a.cfg.AppID, "AppSecret": a.cfg.AppSecret.Value()}
	res, err := a.postJSON(ctx, a.cfg.BaseURL+endpointPath, "", req, &resp)
	if err != nil {
		return "", clientConfig{}, fmt.Errorf("long connection endpoint: %w", err)
	}
	if res.status != 200 || resp.Code != 0 || resp.Data.URL == "" {
		return "", clientConfig{}, fmt.Errorf("long connection endpoint: HTTP %d code %d: %s (check app_id, app_secret and that the app subscribes to events through the persistent connection)", res.status, resp.Code, resp.Msg)
	}
	return resp.Data.URL, resp.Data.ClientConfig, nil
}

// wsSession runs one connection: endpoint, dial, then read until it
// breaks. connected reports whether the dial succeeded.
func (a *Adapter) wsSession(ctx context.Context) (connected bool, err error) {
	u, cc, err := a.endpoint(ctx)
	if err != nil {
		return false, err
	}
	a.configure(cc)
	pu, err := url.Parse(u)
	if err != nil {
		return false, fmt.Errorf("long connection: bad URL from the endpoint: %w", err)
	}
	svc, _ := strconv.ParseInt(pu.Query().Get("service_id"), 10, 32)
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: a.http})
	if err != nil {
		if resp != nil && resp.Header.Get("Handshake-Msg") != "" {
			err = fmt.Errorf("%w (%s %s)", err, resp.Header.Get("Handshake-Status"), resp.Header.Get("Handshake-Msg"))
		}
		return false, fmt.Errorf("long connection to %s: %w", pu.Host, err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(int64(a.cfg.MaxBody) + 64<<10)
	a.setConnected(true, "websocket to "+pu.Host)
	a.log.Info("feishu: long connection up", logHost, pu.Host)

	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	s := &session{a: a, conn: conn, service: int32(svc), pending: map[string]*partial{}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.pingLoop(sctx)
	}()
	sem := make(chan struct{}, wsWorkers)
	for {
		typ, b, err := conn.Read(sctx)
		if err != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			return true, fmt.Errorf("long connection read: %w", err)
		}
		if typ != websocket.MessageBinary {
			continue
		}
		f, err := decodeFrame(b)
		if err != nil {
			a.currentSink().Rejected(channels.ReasonMalformed)
			a.log.Warn("feishu: bad long connection frame", logErr, err)
			continue
		}
		if f.Method == methodControl {
			s.control(f)
			continue
		}
		if f.Method != methodData {
			continue
		}
		payload := s.assemble(f, a.now())
		if payload == nil {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-sctx.Done():
			return true, nil
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.handle(sctx, f, payload)
		}()
	}
}

// session is one long connection.
type session struct {
	a       *Adapter
	conn    *websocket.Conn
	service int32
	// pending split payloads by message_id; only the read loop uses it.
	pending map[string]*partial
}

type partial struct {
	parts [][]byte
	got   int
	size  int
	at    time.Time
}

func (s *session) write(ctx context.Context, f *frame) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageBinary, f.encode())
}

// pingLoop pings at once and then every ping interval.
func (s *session) pingLoop(ctx context.Context) {
	for {
		ping := &frame{Service: s.service, Method: methodControl, Headers: []header{{hdrType, typePing}}}
		if err := s.write(ctx, ping); err != nil && ctx.Err() == nil {
			s.a.log.Warn("feishu: long connection ping failed", logErr, err)
		}
		if !channels.Sleep(ctx, s.a.ws.pingInterval()) {
			return
		}
	}
}

// control handles a control frame: a pong may carry a new ClientConfig.
func (s *session) control(f *frame) {
	if f.header(hdrType) != typePong || len(f.Payload) == 0 {
		return
	}
	var cc clientConfig
	if json.Unmarshal(f.Payload, &cc) == nil {
		s.a.configure(cc)
	}
}

// assemble returns the payload of a data frame, reassembling split ones
// ("sum" parts with "seq" 0…sum-1, by "message_id"); nil while parts are
// missing or for a frame that cannot be placed.
func (s *session) assemble(f *frame, now time.Time) []byte {
	sum, _ := strconv.Atoi(f.header(hdrSum))
	if sum <= 1 {
		return f.Payload
	}
	seq, err := strconv.Atoi(f.header(hdrSeq))
	id := f.header(hdrMessageID)
	if err != nil || sum > maxParts || seq < 0 || seq >= sum || id == "" {
		s.a.log.Warn("feishu: long connection part dropped", logSum, f.header(hdrSum), logSeq, f.header(hdrSeq))
		return nil
	}
	for k, p := range s.pending {
		if now.Sub(p.at) > pendingTTL {
			delete(s.pending, k)
		}
	}
	p := s.pending[id]
	if p == nil || len(p.parts) != sum {
		if len(s.pending) >= maxPending {
			var oldest string
			for k, q := range s.pending {
				if oldest == "" || q.at.Before(s.pending[oldest].at) {
					oldest = k
				}
			}
			delete(s.pending, oldest)
		}
		p = &partial{parts: make([][]byte, sum), at: now}
		s.pending[id] = p
	}
	if p.parts[seq] == nil {
		p.got++
	} else {
		p.size -= len(p.parts[seq])
	}
	p.parts[seq] = append([]byte{}, f.Payload...)
	p.size += len(p.parts[seq])
	if p.size > int(s.a.cfg.MaxBody) {
		delete(s.pending, id)
		s.a.currentSink().Rejected(channels.ReasonTooLarge)
		return nil
	}
	if p.got < sum {
		return nil
	}
	delete(s.pending, id)
	out := make([]byte, 0, p.size)
	for _, part := range p.parts {
		out = append(out, part...)
	}
	return out
}

// ackOK and ackRetry are the acknowledgements' payloads: 500 makes Feishu
// redeliver the event.
var (
	ackOK    = []byte(`{"code":200,"headers":{},"data":""}`)
	ackRetry = []byte(`{"code":500,"headers":{},"data":""}`)
)

// handle delivers one event and acknowledges it by echoing its frame with
// the result and biz_rt (milliseconds spent).
func (s *session) handle(ctx context.Context, f *frame, payload []byte) {
	a := s.a
	start := time.Now()
	ack := ackOK
	switch f.header(hdrType) {
	case typeEvent:
		if !a.deliverEvent(ctx, payload) {
			ack = ackRetry
		}
	case typeCard:
		// Card callbacks are not used; acknowledged so they are not retried.
	default:
		return
	}
	f.setHeader(hdrBizRT, strconv.FormatInt(time.Since(start).Milliseconds(), 10))
	f.Payload = ack
	if err := s.write(ctx, f); err != nil && ctx.Err() == nil {
		a.log.Warn("feishu: long connection ack failed; Feishu will redeliver", logErr, err)
	}
}

// deliverEvent parses and delivers a long-connection event; false means
// "not committed, have Feishu redeliver". The connection is authenticated
// by the app secret, so the verification token is not checked.
func (a *Adapter) deliverEvent(ctx context.Context, payload []byte) bool {
	sink := a.currentSink()
	p, err := parseEvent(payload, a.cfg.BotOpenID, a.now())
	if err != nil {
		sink.Rejected(channels.ReasonMalformed)
		a.log.Warn("feishu: malformed long connection event", logErr, err)
		return true // redelivering it would not help
	}
	if p.kind != kindMessage {
		a.log.Debug("feishu: event ignored", logEventType, p.eventType)
		return true
	}
	dctx, cancel := context.WithTimeout(ctx, deliverTimeout)
	defer cancel()
	p.msg.Channel = a.Name()
	switch err := sink.Deliver(dctx, p.msg); {
	case err == nil:
		return true
	case errors.Is(err, channels.ErrInvalid):
		a.log.Warn("feishu: event refused by the inbox", logEventID, p.msg.DedupKey, logErr, err)
		return true
	default:
		a.log.Warn("feishu: delivery failed; Feishu will redeliver", logEventID, p.msg.DedupKey, logErr, err)
		return false
	}
}
