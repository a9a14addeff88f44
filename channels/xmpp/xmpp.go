package xmpp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Name is the adapter's name: the configuration key and Message.Channel.
const Name = "xmpp"

// Log attribute keys.
const (
	logErr    = "err"
	logServer = "server"
	logJID    = "jid"
	logRoom   = "room"
	logID     = "id"
)

const (
	// pingInterval is how often a XEP-0199 ping goes to the server; a
	// stream silent for pingInterval+timeout is considered dead.
	pingInterval = 60 * time.Second
	// maxRetryDeliver bounds the wait between retries of a Deliver that
	// failed temporarily.
	maxRetryDeliver = 30 * time.Second
	// stableAfter is how long a stream must last for the reconnect backoff
	// to start over.
	stableAfter = time.Minute
)

// Adapter is the XMPP channel. Build it with New; Start connects.
type Adapter struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	ping time.Duration
	back channels.Backoff // reconnects
	redo channels.Backoff // Deliver retries

	mu      sync.Mutex
	sink    channels.Sink
	cur     *session
	rooms   map[string]*room // by lower-case bare JID; client mode
	state   channels.State
	changed chan struct{} // closed and replaced on every state change
	cancel  context.CancelFunc
	done    chan struct{}
	started bool
}

var (
	_ channels.Adapter = (*Adapter)(nil)
	_ channels.Limited = (*Adapter)(nil)
	_ channels.Stater  = (*Adapter)(nil)
)

// New returns an adapter for cfg; it checks cfg as Validate does (also
// when Enabled is false) and does no I/O. A nil log discards.
func New(cfg Config, log *slog.Logger) (*Adapter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := validate(cfg); err != nil {
		return nil, err
	}
	if cfg.Resource == "" {
		cfg.Resource = DefaultResource
	}
	if cfg.MaxStanza == 0 {
		cfg.MaxStanza = DefaultMaxStanza
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	a := &Adapter{
		cfg:     cfg,
		log:     log.With("channel", Name),
		now:     time.Now,
		ping:    pingInterval,
		back:    channels.Backoff{Min: time.Second, Max: 2 * time.Minute},
		redo:    channels.Backoff{Min: 500 * time.Millisecond, Max: maxRetryDeliver},
		rooms:   map[string]*room{},
		changed: make(chan struct{}),
	}
	for _, r := range cfg.Rooms {
		a.rooms[bareKey(r.JID)] = &room{jid: r.JID, nick: cfg.nick(r)}
	}
	return a, nil
}

func validate(cfg Config) error {
	c := cfg
	c.Enabled = true
	if c.MaxStanza == 0 {
		c.MaxStanza = DefaultMaxStanza
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Resource == "" {
		c.Resource = DefaultResource
	}
	v := config.NewValidator("channels." + Name)
	c.Common.Validate(v)
	c.Validate(v)
	return v.Err()
}

// Name implements channels.Adapter.
func (a *Adapter) Name() string { return Name }

// Limits implements channels.Limited. XMPP has no length limit of its own
// (servers cap a stanza, 256 KiB by default in prosody and ejabberd), so
// MaxText keeps one message readable. Servers throttle what a client
// sends (prosody's default c2s limit is 10 kB/s) by reading more slowly,
// not by dropping; 20 messages a second keeps ordinary replies well under
// that.
func (a *Adapter) Limits() channels.Limits {
	return channels.Limits{
		MaxText: 4000,
		Unit:    channels.Runes,
		Global:  channels.Rate{N: 20, Per: time.Second},
	}
}

// State implements channels.Stater.
func (a *Adapter) State() channels.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Start reads the CA file and starts the connection loop, which connects,
// logs in, joins the rooms and reconnects with backoff after any error; it
// returns without waiting for the first connection (State says how it
// goes). The loop runs until Stop.
func (a *Adapter) Start(ctx context.Context, sink channels.Sink) error {
	tc, err := a.tlsConfig()
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return errors.New("xmpp: started twice")
	}
	a.started = true
	a.sink = sink
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel, a.done = cancel, make(chan struct{})
	a.state.Detail = a.detail(false)
	if a.cfg.Mode == ModeComponent && !a.cfg.serverOnLoopback() {
		a.log.Warn("xmpp component streams are not encrypted; run the component on the server's host (127.0.0.1)", logServer, a.cfg.serverAddr())
	}
	go a.run(lctx, tc)
	return nil
}

// Stop closes the stream and waits for the loop to end. Idempotent.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	cancel, done := a.cancel, a.done
	a.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("xmpp stop: %w", ctx.Err())
	}
}

func (a *Adapter) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: a.cfg.InsecureSkipVerify}
	if a.cfg.CAFile != "" {
		pem, err := os.ReadFile(a.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("xmpp ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("xmpp ca_file %s: no PEM certificates in it", a.cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

func (a *Adapter) detail(connected bool) string {
	var b strings.Builder
	if a.cfg.Mode == ModeComponent {
		b.WriteString("component " + a.cfg.ComponentDomain)
	} else {
		b.WriteString("client " + a.cfg.JID)
	}
	b.WriteString(" via " + a.cfg.serverAddr())
	if !connected {
		b.WriteString(" (connecting)")
	} else if s := a.cur; s != nil && s.tls {
		b.WriteString(" (TLS)")
	} else {
		b.WriteString(" (no TLS)")
	}
	if n := len(a.rooms); n > 0 && connected {
		j := 0
		for _, r := range a.rooms {
			if r.joined {
				j++
			}
		}
		fmt.Fprintf(&b, ", %d/%d rooms joined", j, n)
	}
	return b.String()
}

// notifyLocked records a state change (a.mu held).
func (a *Adapter) notifyLocked() {
	a.state.Connected = a.cur != nil
	a.state.Detail = a.detail(a.cur != nil)
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *Adapter) setError(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state.LastError = err.Error()
	a.state.LastErrorAt = a.now().UTC()
	a.notifyLocked()
}

// run is the connection loop.
func (a *Adapter) run(ctx context.Context, tc *tls.Config) {
	defer close(a.done)
	attempt := 0
	for {
		err := a.connection(ctx, tc, &attempt)
		if ctx.Err() != nil {
			return
		}
		a.setError(err)
		attempt++
		d := a.back.Delay(attempt)
		a.log.Warn("xmpp connection failed; reconnecting", logErr, err, logServer, a.cfg.serverAddr(), "in", d)
		if !channels.Sleep(ctx, d) {
			return
		}
	}
}

// connection connects, logs in and serves one stream until it fails.
func (a *Adapter) connection(ctx context.Context, tc *tls.Config, attempt *int) error {
	o := dialOptions{
		tls:       tc,
		plainOK:   a.cfg.plainAllowed(),
		maxStanza: int64(a.cfg.MaxStanza),
		timeout:   a.cfg.Timeout,
		onInsecure: func() {
			a.log.Warn("xmpp TLS certificate verification is off (insecure_skip_verify)", logServer, a.cfg.serverAddr())
		},
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := dial(sctx, a.cfg.serverAddr(), o)
	if err != nil {
		return err
	}
	// Closed here, before cancel: Stop's cancel closes it through the
	// AfterFunc of dial, and close waits for that to finish, so no closing
	// goroutine outlives the loop.
	defer s.close(true)
	if a.cfg.Mode == ModeComponent {
		err = s.loginComponent(sctx, a.cfg.ComponentDomain, a.cfg.ComponentSecret.Value())
	} else {
		err = s.loginClient(sctx, a.cfg.JID, a.cfg.Password.Value(), a.cfg.Resource, o)
	}
	if err != nil {
		return err
	}
	// The backoff starts over only after a stream that stayed up: a server
	// that accepts the login and drops us at once (another instance with
	// the same resource) is not hammered.
	up := time.Now()
	defer func() {
		if time.Since(up) > stableAfter {
			*attempt = 0
		}
	}()
	s.idle.Store(int64(a.ping + a.cfg.Timeout))
	a.log.Info("xmpp connected", logJID, s.jid, logServer, s.addr, "tls", s.tls)

	a.mu.Lock()
	a.cur = s
	for _, r := range a.rooms {
		r.joined, r.current = false, ""
	}
	a.notifyLocked()
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.cur = nil
		for _, r := range a.rooms {
			r.joined = false
		}
		a.notifyLocked()
		a.mu.Unlock()
	}()

	kctx, kcancel := context.WithCancel(sctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.keepalive(kctx, s) })
	defer wg.Wait()
	defer kcancel()

	if a.cfg.Mode == ModeClient {
		if err := s.write(sctx, "<presence/>"); err != nil {
			return err
		}
		for _, r := range a.roomList() {
			p := `<presence to='` + escape(r.jid+"/"+r.nick) + `'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`
			if err := s.write(sctx, p); err != nil {
				return err
			}
		}
	}
	e := &env{channel: Name, mode: a.cfg.Mode, self: a.self(), rooms: a.rooms, now: a.now}
	for {
		el, err := s.rd.next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isTimeout(err) {
				return fmt.Errorf("xmpp: no data from the server for %s: %w", a.ping+a.cfg.Timeout, err)
			}
			return err
		}
		if el.Name.Space != s.ns && el.Name.Space != nsClient {
			continue // some servers route jabber:client stanzas to components as they are
		}
		switch el.Name.Local {
		case "message":
			a.message(sctx, s, el, e)
		case "presence":
			a.presence(sctx, s, el)
		case "iq":
			a.iq(sctx, s, el)
		}
	}
}

func (a *Adapter) roomList() []room {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]room, 0, len(a.rooms))
	for _, r := range a.rooms {
		out = append(out, *r)
	}
	return out
}

func (a *Adapter) self() string {
	if a.cfg.Mode == ModeComponent {
		return a.cfg.ComponentDomain
	}
	return bareJID(a.cfg.JID)
}

// keepalive pings the server every a.ping; the answers keep the reader's
// idle deadline from expiring. A failed write closes the session.
func (a *Adapter) keepalive(ctx context.Context, s *session) {
	t := time.NewTicker(a.ping)
	defer t.Stop()
	to, from := s.domain, ""
	if s.ns == nsComponent {
		// The server's own domain is, by convention, the component's
		// parent; a wrong guess still earns an error reply, which is
		// traffic enough.
		if _, parent, ok := strings.Cut(s.domain, "."); ok {
			to = parent
		}
		from = ` from='` + escape(s.domain) + `'`
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id := "ping" + strconv.FormatInt(s.pings.Add(1), 10)
		if err := s.write(ctx, `<iq type='get' id='`+id+`' to='`+escape(to)+`'`+from+`><ping xmlns='urn:xmpp:ping'/></iq>`); err != nil {
			return
		}
	}
}

// message delivers an inbound message. XMPP does not redeliver, so a
// temporary Deliver failure is retried here, holding the stream (the
// server buffers) until the sink takes it or the adapter stops.
func (a *Adapter) message(ctx context.Context, s *session, el *element, e *env) {
	if el.attr("type") == "error" {
		err := fmt.Errorf("xmpp: message %s to %s bounced: %s", el.attr("id"), el.attr("from"), stanzaErrorCondition(el))
		a.log.Warn("xmpp message bounced", logErr, err)
		a.setError(err)
		return
	}
	a.mu.Lock()
	m, ok := parseMessage(el, e)
	sink := a.sink
	a.mu.Unlock()
	if !ok {
		return
	}
	for attempt := 1; ; attempt++ {
		err := sink.Deliver(ctx, m)
		if err == nil {
			return
		}
		if errors.Is(err, channels.ErrInvalid) {
			a.log.Warn("xmpp message refused by the hub; dropped", logID, m.ID, logErr, err)
			return
		}
		a.log.Warn("xmpp deliver failed; retrying", logID, m.ID, logErr, err)
		if !channels.Sleep(ctx, a.redo.Delay(attempt)) {
			return
		}
	}
}

// presence tracks the rooms: our own presence (status 110) means joined,
// 201 means we created the room and must unlock it, an error means the
// join failed.
func (a *Adapter) presence(ctx context.Context, s *session, el *element) {
	if created := a.roomPresence(el); created != "" {
		// A new room stays locked until its owner configures it: accept
		// the defaults (an instant room, XEP-0045 10.1.2).
		_ = s.write(ctx, `<iq type='set' id='create`+strconv.FormatInt(s.pings.Add(1), 10)+`' to='`+escape(created)+
			`'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`)
	}
}

// roomPresence updates the room el is about and returns the room's JID
// when we just created it.
func (a *Adapter) roomPresence(el *element) (created string) {
	from := el.attr("from")
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.rooms[bareKey(from)]
	if r == nil {
		return ""
	}
	if el.attr("type") == "error" {
		err := fmt.Errorf("xmpp: cannot join %s as %s: %s", r.jid, r.nick, stanzaErrorCondition(el))
		a.log.Warn("xmpp join failed", logRoom, r.jid, logErr, err)
		a.state.LastError, a.state.LastErrorAt = err.Error(), a.now().UTC()
		a.notifyLocked()
		return ""
	}
	status := map[string]bool{}
	if x := el.child(nsMUCUser, "x"); x != nil {
		for _, c := range x.Children {
			if c.Name.Local == "status" {
				status[c.attr("code")] = true
			}
		}
	}
	if !status["110"] {
		return ""
	}
	defer a.notifyLocked()
	if el.attr("type") == "unavailable" {
		r.joined = false
		a.log.Warn("xmpp left room", logRoom, r.jid)
		return ""
	}
	r.joined, r.current = true, resourceOf(from)
	a.log.Info("xmpp joined room", logRoom, r.jid)
	if status["201"] {
		return r.jid
	}
	return ""
}

// iq answers pings and refuses every other request (RFC 6120 requires an
// answer to each get and set).
func (a *Adapter) iq(ctx context.Context, s *session, el *element) {
	typ := el.attr("type")
	if typ != "get" && typ != "set" {
		if typ == "error" && strings.HasPrefix(el.attr("id"), "create") {
			a.log.Warn("xmpp room configuration refused", logRoom, el.attr("from"), logErr, stanzaErrorCondition(el))
		}
		return
	}
	head := `<iq id='` + escape(el.attr("id")) + `'`
	if f := el.attr("from"); f != "" {
		head += ` to='` + escape(f) + `'`
	}
	if t := el.attr("to"); s.ns == nsComponent && t != "" {
		head += ` from='` + escape(t) + `'`
	}
	var reply string
	if len(el.Children) == 1 && el.Children[0].is(nsPing, "ping") && typ == "get" {
		reply = head + ` type='result'/>`
	} else {
		reply = head + ` type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`
	}
	_ = s.write(ctx, reply)
}

// Send implements channels.Adapter: one <message/> with the part's text
// and an origin-id of out.Key (also the stanza id and the receipt). Safe
// for concurrent use. Not idempotent: XMPP servers do not deduplicate.
func (a *Adapter) Send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return channels.Receipt{}, err
	}
	to := out.Conversation
	if err := checkJID(to, false, false); err != nil {
		return channels.Receipt{}, channels.Permanent(fmt.Errorf("xmpp: invalid conversation %q: %v", to, err))
	}
	if strings.TrimSpace(out.Text) == "" {
		return channels.Receipt{}, channels.Permanent(errors.New("xmpp: empty message"))
	}
	typ := "chat"
	if out.ConversationType == channels.Group || out.ConversationType == channels.Channel {
		typ = "groupchat"
	}
	a.mu.Lock()
	s := a.cur
	var joined, known bool
	if r := a.rooms[bareKey(to)]; r != nil {
		known, joined = true, r.joined
	}
	a.mu.Unlock()
	if typ == "groupchat" {
		switch {
		case strings.Contains(to, "/"):
			return channels.Receipt{}, channels.Permanent(fmt.Errorf("xmpp: group conversation %q is not a bare room JID", to))
		case a.cfg.Mode == ModeClient && !known:
			return channels.Receipt{}, channels.Permanent(fmt.Errorf("xmpp: %s is not a configured room", to))
		case s != nil && !joined && a.cfg.Mode == ModeClient:
			return channels.Receipt{}, fmt.Errorf("xmpp: room %s not joined yet", to)
		}
	}
	if s == nil {
		return channels.Receipt{}, ErrNotConnected
	}
	id := out.Key
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	var b strings.Builder
	b.WriteString(`<message to="` + escape(to) + `" type="` + typ + `" id="` + escape(id) + `"`)
	if a.cfg.Mode == ModeComponent {
		from := out.Handle.Extra["from"]
		if _, d, _ := splitJID(from); from == "" || !strings.EqualFold(d, a.cfg.ComponentDomain) || checkJID(from, false, false) != nil {
			from = a.cfg.ComponentDomain
		}
		b.WriteString(` from="` + escape(from) + `"`)
	}
	b.WriteString(`><body>` + escape(out.Text) + `</body>`)
	if out.Thread != "" {
		b.WriteString(`<thread>` + escape(out.Thread) + `</thread>`)
	}
	b.WriteString(`<origin-id xmlns="urn:xmpp:sid:0" id="` + escape(id) + `"/></message>`)
	if err := s.write(ctx, b.String()); err != nil {
		a.setError(err)
		return channels.Receipt{}, err
	}
	return channels.Receipt{PlatformID: id}, nil
}
