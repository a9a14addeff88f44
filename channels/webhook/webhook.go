package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// Name is the adapter's name: the configuration key and the Channel of
// every message it delivers.
const Name = "webhook"

// Path is where inbound messages are POSTed.
const Path = "/channels/webhook/messages"

// Header names of the signing scheme.
const (
	HeaderTimestamp   = "X-Zhiyin-Timestamp"
	HeaderSignature   = "X-Zhiyin-Signature"
	HeaderIdempotency = "Idempotency-Key"
)

// replayMax bounds the signatures remembered against replays (about 90 MB
// when full; see ReplayGuard for what happens then).
const replayMax = 1 << 20

// Log attribute keys.
const logKeyError = "error"

// Adapter is the generic webhook channel. Build it with New; safe for
// concurrent use once started.
type Adapter struct {
	cfg     Config
	log     *slog.Logger
	secret  []byte
	outKey  []byte
	client  *http.Client
	replays *channels.ReplayGuard
	macs    sync.Pool // of *macState keyed by secret (inbound)
	now     func() time.Time

	sink    atomic.Pointer[sinkBox]
	stopped atomic.Bool

	mu      sync.Mutex
	lastErr string
	lastAt  time.Time
}

type sinkBox struct{ channels.Sink }

// Interface guards.
var (
	_ channels.Adapter    = (*Adapter)(nil)
	_ channels.Router     = (*Adapter)(nil)
	_ channels.Limited    = (*Adapter)(nil)
	_ channels.Idempotent = (*Adapter)(nil)
	_ channels.Stater     = (*Adapter)(nil)
)

// New builds the adapter from a validated configuration. It does no I/O.
func New(cfg Config, log *slog.Logger) (*Adapter, error) {
	if log == nil {
		return nil, errors.New("webhook: nil logger")
	}
	if len(cfg.Secret.Value()) < 16 {
		return nil, errors.New("webhook: secret must be at least 16 bytes")
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxText <= 0 {
		cfg.MaxText = DefaultMaxText
	}
	if cfg.OutboundURL != "" {
		if msg := checkURL(cfg.OutboundURL); msg != "" {
			return nil, fmt.Errorf("webhook: outbound_url: %s", msg)
		}
	}
	a := &Adapter{
		cfg:    cfg,
		log:    log,
		secret: []byte(cfg.Secret.Value()),
		outKey: []byte(cfg.Secret.Value()),
		// Replies go to one receiver, many at once: keep enough idle
		// connections that a busy channel does not dial per reply.
		client: &http.Client{Timeout: cfg.Timeout, Transport: newTransport()},
		// A timestamp may be up to MaxSkew ahead, so its signature stays
		// usable for 2×MaxSkew.
		replays: channels.NewReplayGuard(2*cfg.MaxSkew, replayMax),
		now:     time.Now,
	}
	if cfg.OutboundSecret.IsSet() {
		a.outKey = []byte(cfg.OutboundSecret.Value())
	}
	a.macs.New = func() any { return &macState{h: hmac.New(sha256.New, a.secret)} }
	return a, nil
}

// Name implements channels.Adapter.
func (a *Adapter) Name() string { return Name }

// Start implements channels.Adapter: from now on inbound messages go to
// sink. It starts no goroutine.
func (a *Adapter) Start(ctx context.Context, sink channels.Sink) error {
	if sink == nil {
		return errors.New("webhook: nil sink")
	}
	a.stopped.Store(false)
	a.sink.Store(&sinkBox{sink})
	return nil
}

// Stop implements channels.Adapter: inbound requests are answered 503 from
// now on. Idempotent.
func (a *Adapter) Stop(ctx context.Context) error {
	a.stopped.Store(true)
	a.sink.Store(nil)
	a.client.CloseIdleConnections()
	return nil
}

// Routes implements channels.Router.
func (a *Adapter) Routes() []channels.Route {
	return []channels.Route{{Method: http.MethodPost, Path: Path, Handler: http.HandlerFunc(a.serveInbound)}}
}

// Limits implements channels.Limited.
func (a *Adapter) Limits() channels.Limits {
	l := channels.Limits{MaxText: a.cfg.MaxText, Unit: channels.Runes}
	if a.cfg.RatePerSecond > 0 {
		l.Global = channels.Rate{N: a.cfg.RatePerSecond, Per: time.Second}
	}
	return l
}

// IdempotentSend implements channels.Idempotent: receivers deduplicate on
// the Idempotency-Key header (a documented requirement of this protocol).
func (a *Adapter) IdempotentSend() bool { return true }

// State implements channels.Stater.
func (a *Adapter) State() channels.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return channels.State{
		Connected:   a.sink.Load() != nil,
		Detail:      "callback POST " + Path,
		LastError:   a.lastErr,
		LastErrorAt: a.lastAt,
	}
}

func (a *Adapter) setError(err error) {
	a.mu.Lock()
	a.lastErr, a.lastAt = err.Error(), a.now().UTC()
	a.mu.Unlock()
}

// sign returns hex(HMAC_SHA256(key, ts + "." + body)).
func sign(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	var sum [sha256.Size]byte
	return hexEncode(m.Sum(sum[:0]))
}

// Sign returns the X-Zhiyin-Signature value for a request with timestamp
// ts (unix seconds as sent) and body, for senders and receivers in Go.
func Sign(secret, ts string, body []byte) string { return sign([]byte(secret), ts, body) }

// macState is a pooled inbound HMAC with scratch space, so that verifying
// a request allocates nothing.
type macState struct {
	h   hash.Hash
	buf [64]byte
	sum [sha256.Size]byte
}

// macOf computes the inbound MAC of ts.body into dst with a pooled hash.
// ts is at most 20 bytes (checked by the caller).
func (a *Adapter) macOf(dst *[sha256.Size]byte, ts string, body []byte) {
	m := a.macs.Get().(*macState)
	m.h.Reset()
	n := copy(m.buf[:], ts)
	m.buf[n] = '.'
	m.h.Write(m.buf[:n+1])
	m.h.Write(body)
	copy(dst[:], m.h.Sum(m.sum[:0]))
	a.macs.Put(m)
}

const hexDigits = "0123456789abcdef"

func hexEncode(b []byte) string {
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = hexDigits[c>>4], hexDigits[c&15]
	}
	return string(out)
}

// unhex decodes a 64-digit hex signature (either case) into dst.
func unhex(dst *[sha256.Size]byte, s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// newTransport is http.DefaultTransport's settings with room for the hub's
// concurrent sends to one host.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}
