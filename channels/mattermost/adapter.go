package mattermost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Log attribute keys.
const (
	logErr     = "err"
	logPost    = "post"
	logSeq     = "seq"
	logAttempt = "attempt"
	logVersion = "server_version"
)

// Adapter is a Mattermost bot account. Build it with New; safe for
// concurrent use.
type Adapter struct {
	cfg  Config
	log  *slog.Logger
	base string
	// rest has cfg.Timeout; ws has none (the websocket lives for hours;
	// the handshake is bounded by its context).
	rest *http.Client
	ws   *http.Client

	// Tunables; tests shorten them.
	pingInterval    time.Duration // a ping when the stream is this quiet
	idleTimeout     time.Duration // reconnect after this long without a frame or pong
	reconnect       channels.Backoff
	deliverBackoff  channels.Backoff
	deliverAttempts int

	mu    sync.Mutex
	state channels.State
	bot   botIdentity
	// loop runs the background loop once; Stop ends it.
	loop channels.Loop
}

var (
	_ channels.Adapter = (*Adapter)(nil)
	_ channels.Limited = (*Adapter)(nil)
	_ channels.Stater  = (*Adapter)(nil)
)

// New returns an adapter for cfg. It does no I/O; it fails when cfg does
// not validate (as if enabled).
func New(cfg Config, log *slog.Logger) (*Adapter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := cfg
	c.Enabled = true
	v := config.NewValidator("channels.mattermost")
	c.Validate(v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return &Adapter{
		cfg:             cfg,
		log:             log,
		base:            cfg.baseURL(),
		rest:            &http.Client{Timeout: cfg.Timeout},
		ws:              &http.Client{},
		pingInterval:    30 * time.Second,
		idleTimeout:     60 * time.Second,
		reconnect:       channels.Backoff{Min: time.Second, Max: 2 * time.Minute},
		deliverBackoff:  channels.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second},
		deliverAttempts: 6,
		state:           channels.State{Detail: "not started"},
	}, nil
}

// Name implements channels.Adapter.
func (a *Adapter) Name() string { return "mattermost" }

// Limits implements channels.Limited: a post holds 16383 runes (the
// server's default maximum); the server's default rate limit is 10
// requests a second per token.
func (a *Adapter) Limits() channels.Limits {
	return channels.Limits{
		MaxText: 16383,
		Unit:    channels.Runes,
		Global:  channels.Rate{N: 10, Per: time.Second},
	}
}

// State implements channels.Stater.
func (a *Adapter) State() channels.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

func (a *Adapter) setConnected(ok bool, detail string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state.Connected = ok
	a.state.Detail = detail
}

func (a *Adapter) setError(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state.LastError = err.Error()
	a.state.LastErrorAt = time.Now().UTC()
}

func (a *Adapter) identity() botIdentity {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bot
}

// Start looks the bot up (GET /api/v4/users/me) and starts the websocket
// loop. It fails only when the server refuses the token; when the server
// cannot be reached the loop keeps trying in the background.
func (a *Adapter) Start(ctx context.Context, sink channels.Sink) error {
	if a.loop.Started() {
		return ErrStarted
	}

	if err := a.fetchMe(ctx); err != nil {
		if errors.Is(err, ErrTokenRejected) {
			a.setError(err)
			return fmt.Errorf("start mattermost: %w", err)
		}
		a.setError(err)
		a.log.Warn("mattermost: server not reachable at start; retrying in the background", logErr, err)
	}

	if !a.loop.Go(ctx, func(ctx context.Context) { a.run(ctx, sink) }) {
		return ErrStarted
	}
	return nil
}

// Stop ends the websocket loop and waits for it (or for ctx). Idempotent.
func (a *Adapter) Stop(ctx context.Context) error {
	stopped, err := a.loop.Stop(ctx)
	if err != nil {
		return fmt.Errorf("stop mattermost: %w", err)
	}
	if stopped {
		a.setConnected(false, "stopped")
	}
	return nil
}

// fetchMe records the bot's user id and username.
func (a *Adapter) fetchMe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	var me struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	}
	if err := a.call(ctx, http.MethodGet, "/api/v4/users/me", nil, &me); err != nil {
		return fmt.Errorf("get users/me: %w", err)
	}
	if me.ID == "" {
		return errors.New("get users/me: answer without id")
	}
	a.mu.Lock()
	a.bot = botIdentity{ID: me.ID, Username: me.Username}
	a.mu.Unlock()
	return nil
}

// stream is the resumption state of the event stream, owned by run.
type stream struct {
	connID  string // from "hello"; empty before the first
	nextSeq int64  // the seq expected next
}

// run keeps a websocket open until ctx ends.
func (a *Adapter) run(ctx context.Context, sink channels.Sink) {
	var st stream
	fails := 0
	for ctx.Err() == nil {
		var err error
		if a.identity().ID == "" {
			err = a.fetchMe(ctx)
		}
		ok := false
		if err == nil {
			ok, err = a.session(ctx, sink, &st)
		}
		a.setConnected(false, "reconnecting")
		if ctx.Err() != nil {
			return
		}
		if ok {
			fails = 0
		}
		fails++
		a.setError(err)
		d := a.reconnect.Delay(fails)
		a.log.Warn("mattermost: websocket down; reconnecting", logErr, err, "in", d)
		channels.Sleep(ctx, d)
	}
}

var (
	errIdle   = errors.New("no frame or pong within the idle timeout")
	errSeqGap = errors.New("event sequence gap")
)

// session runs one websocket connection until it drops. ok reports
// whether the connection worked (an event in sequence arrived), so that the
// next reconnect starts from the shortest delay.
func (a *Adapter) session(ctx context.Context, sink channels.Sink, st *stream) (ok bool, err error) {
	u := a.base + "/api/v4/websocket"
	if st.connID != "" {
		u += "?" + url.Values{"connection_id": {st.connID}, "sequence_number": {fmt.Sprint(st.nextSeq)}}.Encode()
	}
	dctx, dcancel := context.WithTimeout(ctx, a.cfg.Timeout)
	conn, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{
		HTTPClient: a.ws,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + a.cfg.Token.Value()}},
	})
	dcancel()
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return false, fmt.Errorf("websocket: %w", ErrTokenRejected)
		}
		return false, fmt.Errorf("websocket dial: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(int64(a.cfg.MaxBody))

	cctx, cancel := context.WithCancel(ctx)
	var (
		wg       sync.WaitGroup
		lastSeen atomic.Int64 // unix nanoseconds of the last frame or pong
		busy     atomic.Bool  // handing a post to the hub: not idle
		idle     atomic.Bool
	)
	defer func() {
		cancel()
		wg.Wait()
	}()
	lastSeen.Store(time.Now().UnixNano())

	// Servers behind proxies may drop the Authorization header: answer the
	// challenge too (an authenticated connection ignores it).
	challenge, _ := json.Marshal(map[string]any{
		"seq":    1,
		"action": "authentication_challenge",
		"data":   map[string]string{"token": a.cfg.Token.Value()},
	})
	wctx, wcancel := context.WithTimeout(cctx, a.cfg.Timeout)
	err = conn.Write(wctx, websocket.MessageText, challenge)
	wcancel()
	if err != nil {
		return false, fmt.Errorf("websocket authenticate: %w", err)
	}
	a.setConnected(true, "websocket to "+a.base)

	wg.Go(func() {
		t := time.NewTicker(a.pingInterval)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
			}
			if busy.Load() {
				lastSeen.Store(time.Now().UnixNano())
				continue
			}
			pctx, pcancel := context.WithTimeout(cctx, a.pingInterval)
			if conn.Ping(pctx) == nil {
				lastSeen.Store(time.Now().UnixNano())
			}
			pcancel()
			if !busy.Load() && time.Since(time.Unix(0, lastSeen.Load())) > a.idleTimeout {
				idle.Store(true)
				cancel()
				return
			}
		}
	})

	for {
		_, data, err := conn.Read(cctx)
		if err != nil {
			if idle.Load() {
				return ok, errIdle
			}
			if errors.Is(err, websocket.ErrMessageTooBig) {
				// Resuming would replay the same frame: skip it (the
				// next expected one is it, or a reply without seq).
				err = fmt.Errorf("event %d dropped: over max_body (%s): %w", st.nextSeq, a.cfg.MaxBody, err)
				a.log.Error("mattermost: websocket frame too large; skipped", logErr, err)
				st.nextSeq++
				return ok, err
			}
			return ok, fmt.Errorf("websocket read: %w", err)
		}
		lastSeen.Store(time.Now().UnixNano())
		ev, err := parseEvent(data)
		if err != nil {
			a.log.Warn("mattermost: ignoring a frame that does not parse", logErr, err)
			continue
		}
		if ev.SeqReply != 0 {
			if ev.Status != "" && ev.Status != "OK" {
				return ok, fmt.Errorf("websocket authentication: status %s %s: %w", ev.Status, ev.Error, ErrTokenRejected)
			}
			continue
		}
		if ev.Event == "hello" {
			// A fresh stream starts with hello (seq 0). A resumed one has
			// no hello: the server replays from sequence_number. A hello
			// with another connection_id means it could not resume.
			var h hello
			_ = json.Unmarshal(ev.Data, &h)
			if st.connID != "" && h.ConnectionID != st.connID {
				a.log.Warn("mattermost: the server could not resume the websocket stream; posts sent while disconnected were missed")
				a.setError(errors.New("websocket stream not resumed: posts sent while disconnected were missed"))
			}
			st.connID, st.nextSeq = h.ConnectionID, ev.Seq
			a.log.Info("mattermost: connected", logVersion, h.ServerVersion)
		}
		if ev.Seq != st.nextSeq {
			a.log.Warn("mattermost: missed websocket events; reconnecting to resume", logSeq, ev.Seq, "expected", st.nextSeq)
			return ok, fmt.Errorf("%w: got %d, expected %d", errSeqGap, ev.Seq, st.nextSeq)
		}
		ok = true
		st.nextSeq = ev.Seq + 1
		if ev.Event != "posted" {
			continue // typing, status_change, post_edited, …: not ours
		}
		m, err := toMessage(ev, a.identity(), data)
		if err != nil {
			a.log.Warn("mattermost: ignoring a post that does not parse", logErr, err)
			continue
		}
		if m == nil {
			continue
		}
		busy.Store(true)
		a.deliver(ctx, sink, m)
		lastSeen.Store(time.Now().UnixNano())
		busy.Store(false)
	}
}

// deliver hands m to the hub, retrying a few times: the websocket has no
// redelivery, so a post the hub cannot take now is lost after the last
// attempt (logged, and recorded in State).
func (a *Adapter) deliver(ctx context.Context, sink channels.Sink, m *channels.Message) {
	for attempt := 1; ; attempt++ {
		err := sink.Deliver(ctx, m)
		switch {
		case err == nil:
			return
		case errors.Is(err, channels.ErrInvalid):
			a.log.Warn("mattermost: hub refused a post", logPost, m.ID, logErr, err)
			return
		case ctx.Err() != nil:
			return
		case attempt >= a.deliverAttempts:
			err = fmt.Errorf("post %s lost: hub did not take it after %d attempts: %w", m.ID, attempt, err)
			a.setError(err)
			a.log.Error("mattermost: post lost", logPost, m.ID, logErr, err)
			return
		}
		a.log.Warn("mattermost: hub did not take a post; retrying", logPost, m.ID, logAttempt, attempt, logErr, err)
		if !channels.Sleep(ctx, a.deliverBackoff.Delay(attempt)) {
			return
		}
	}
}
