package wecom

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// Name is the adapter's name: its configuration key and the Channel of its
// messages.
const Name = "wecom"

// CallbackPath is where WeCom posts the app's callbacks (set it as the URL
// of the app's API receive-messages settings).
const CallbackPath = "/channels/" + Name + "/callback"

// GroupBotConversation is the conversation that Send routes to the group
// bot webhook (group_bot_key). WeCom user and chat ids cannot contain ':',
// so it never names a real conversation.
const GroupBotConversation = "wecom:groupbot"

// Log attribute keys.
const (
	logErr     = "err"
	logMsgType = "msg_type"
	logEvent   = "event"
	logMsgID   = "msg_id"
	logAgentID = "agent_id"
)

// Adapter is one WeCom self-built app. Build it with New; safe for
// concurrent use.
type Adapter struct {
	cfg    Config
	log    *slog.Logger
	crypto *Crypto
	client *http.Client
	tokens *tokenSource
	acked  *ackCache
	now    func() time.Time

	mu        sync.Mutex
	sink      channels.Sink
	started   bool
	lastErr   string
	lastErrAt time.Time
}

var (
	_ channels.Adapter = (*Adapter)(nil)
	_ channels.Router  = (*Adapter)(nil)
	_ channels.Limited = (*Adapter)(nil)
	_ channels.Stater  = (*Adapter)(nil)
)

// New builds the adapter from a validated configuration. It does no I/O;
// errors are configuration errors (a bad EncodingAESKey).
func New(cfg Config, log *slog.Logger) (*Adapter, error) {
	cfg = cfg.withDefaults()
	crypto, err := NewCrypto(cfg.Token.Value(), cfg.EncodingAESKey.Value(), cfg.CorpID)
	if err != nil {
		return nil, fmt.Errorf("wecom: encoding_aes_key: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Adapter{
		cfg:    cfg,
		log:    log,
		crypto: crypto,
		client: &http.Client{Timeout: cfg.Timeout},
		// Requests acknowledged within the skew window: WeCom's retries of
		// them are answered at once (see handlePost).
		acked: newAckCache(cfg.MaxSkew, 10000),
		now:   time.Now,
	}
	clock := func() time.Time { return a.now() } // a.now is replaced in tests
	a.acked.now = clock
	a.tokens = &tokenSource{fetch: a.fetchToken, now: clock}
	return a, nil
}

// Name implements channels.Adapter.
func (a *Adapter) Name() string { return Name }

// Start implements channels.Adapter: WeCom calls us, so there is nothing to
// connect; callbacks are accepted from now on.
func (a *Adapter) Start(ctx context.Context, sink channels.Sink) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sink = sink
	a.started = true
	return nil
}

// Stop implements channels.Adapter: callbacks are refused (503, so WeCom
// retries) from now on. Idempotent.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.started = false
	return nil
}

// currentSink returns the sink while started.
func (a *Adapter) currentSink() channels.Sink {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.started {
		return nil
	}
	return a.sink
}

// State implements channels.Stater.
func (a *Adapter) State() channels.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return channels.State{
		Connected:   a.started,
		Detail:      "callbacks on " + CallbackPath + ", sends to " + a.cfg.BaseURL,
		LastError:   a.lastErr,
		LastErrorAt: a.lastErrAt,
	}
}

func (a *Adapter) setErr(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastErr = err.Error()
	a.lastErrAt = a.now().UTC()
}

// Limits implements channels.Limited. Text and markdown of app messages,
// and text of group bot messages, are limited to 2048 bytes. WeCom lets an
// app send one member at most 30 messages a minute (more are dropped
// silently); a group bot takes 20 a minute, so with a group bot configured
// every chat is paced to that. The global rate is our choice: app messages
// are outside WeCom's per-API base quota (10000 calls a minute per corp)
// but 45033 answers too much concurrency, so 20 a second keeps well clear.
func (a *Adapter) Limits() channels.Limits {
	perChat := channels.Rate{N: 30, Per: time.Minute}
	if a.cfg.GroupBotKey.IsSet() {
		perChat = channels.Rate{N: 20, Per: time.Minute}
	}
	return channels.Limits{
		MaxText: 2048,
		Unit:    channels.Bytes,
		PerChat: perChat,
		Global:  channels.Rate{N: 20, Per: time.Second},
	}
}

// Routes implements channels.Router: GET (URL verification) and POST
// (messages) on CallbackPath.
func (a *Adapter) Routes() []channels.Route {
	h := http.HandlerFunc(a.serveCallback)
	return []channels.Route{
		{Method: http.MethodGet, Path: CallbackPath, Handler: h},
		{Method: http.MethodPost, Path: CallbackPath, Handler: h},
	}
}

// apiURL joins the base URL and a path.
func (a *Adapter) apiURL(path string) string {
	return strings.TrimRight(a.cfg.BaseURL, "/") + path
}
