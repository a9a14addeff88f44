package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Log attribute keys.
const (
	logErr   = "err"
	logRoom  = "room"
	logEvent = "event"
)

// syncFilter asks for room messages and membership changes (our own join
// marks where a room's history ends), the members of the senders (display
// names and the member-count summary) and invites; no presence, no account
// data, no ephemeral events.
const syncFilter = `{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},` +
	`"room":{"timeline":{"types":["m.room.message","m.room.member"],"limit":100},` +
	`"state":{"types":["m.room.member"],"lazy_load_members":true},` +
	`"ephemeral":{"not_types":["*"]},"account_data":{"not_types":["*"]}}}`

// messagesFilter is the /messages filter for back-filling a gap.
const messagesFilter = `{"types":["m.room.message","m.room.member"]}`

// Adapter is a Matrix bot user. Build it with New; safe for concurrent
// use.
type Adapter struct {
	cfg   Config
	log   *slog.Logger
	base  string
	store TokenStore
	http  *http.Client

	// Tunables; tests shorten them.
	pollTimeout  time.Duration // the sync long-poll
	backoff      channels.Backoff
	backfillMax  int // events fetched to fill one room's gap
	backfillPage int // events per /messages request
	joinAttempts int

	mu    sync.Mutex
	state channels.State
	name  string // our display name, once known
	// loop runs the background loop once; Stop ends it.
	loop channels.Loop
}

var (
	_ channels.Adapter    = (*Adapter)(nil)
	_ channels.Limited    = (*Adapter)(nil)
	_ channels.Idempotent = (*Adapter)(nil)
	_ channels.Stater     = (*Adapter)(nil)
)

// New returns an adapter for cfg that keeps its sync position in store
// (nil: a FileTokenStore at cfg.SinceFile). It does no I/O; it fails when
// cfg does not validate (as if enabled) or there is no store.
func New(cfg Config, store TokenStore, log *slog.Logger) (*Adapter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := cfg
	c.Enabled = true
	v := config.NewValidator("channels.matrix")
	c.Validate(v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if store == nil {
		if cfg.SinceFile == "" {
			return nil, ErrNoStore
		}
		store = FileTokenStore{Path: cfg.SinceFile}
	}
	return &Adapter{
		cfg:          cfg,
		log:          log,
		base:         cfg.baseURL(),
		store:        store,
		http:         &http.Client{},
		pollTimeout:  30 * time.Second,
		backoff:      channels.Backoff{Min: time.Second, Max: 2 * time.Minute},
		backfillMax:  1000,
		backfillPage: 100,
		joinAttempts: 3,
		state:        channels.State{Detail: "not started"},
	}, nil
}

// Name implements channels.Adapter.
func (a *Adapter) Name() string { return "matrix" }

// Limits implements channels.Limited: events are at most 65 KB, so 30000
// runes of text (with its HTML form) fit; 10 sends a second.
func (a *Adapter) Limits() channels.Limits {
	return channels.Limits{
		MaxText: 30000,
		Unit:    channels.Runes,
		Global:  channels.Rate{N: 10, Per: time.Second},
	}
}

// IdempotentSend implements channels.Idempotent: the homeserver
// deduplicates sends on the access token and txnId (Outgoing.Key).
func (a *Adapter) IdempotentSend() bool { return true }

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

func (a *Adapter) me() identity {
	a.mu.Lock()
	defer a.mu.Unlock()
	return identity{UserID: a.cfg.UserID, DisplayName: a.name}
}

// Start checks the access token (GET /account/whoami) and starts the sync
// loop. It fails when the homeserver refuses the token or says it belongs
// to another user; when the homeserver cannot be reached the loop keeps
// trying in the background.
func (a *Adapter) Start(ctx context.Context, sink channels.Sink) error {
	if a.loop.Started() {
		return ErrStarted
	}

	if err := a.whoami(ctx); err != nil {
		a.setError(err)
		if errors.Is(err, ErrTokenRejected) || errors.Is(err, errWrongUser) {
			return fmt.Errorf("start matrix: %w", err)
		}
		a.log.Warn("matrix: homeserver not reachable at start; retrying in the background", logErr, err)
	}

	if !a.loop.Go(ctx, func(ctx context.Context) { a.run(ctx, sink) }) {
		return ErrStarted
	}
	return nil
}

// Stop ends the sync loop and waits for it (or for ctx). Idempotent.
func (a *Adapter) Stop(ctx context.Context) error {
	stopped, err := a.loop.Stop(ctx)
	if err != nil {
		return fmt.Errorf("stop matrix: %w", err)
	}
	if stopped {
		a.setConnected(false, "stopped")
	}
	return nil
}

var errWrongUser = errors.New("matrix: access_token belongs to another user")

func (a *Adapter) whoami(ctx context.Context) error {
	var res struct {
		UserID string `json:"user_id"`
	}
	if err := a.call(ctx, http.MethodGet, "/_matrix/client/v3/account/whoami", nil, nil, &res, a.cfg.Timeout); err != nil {
		return fmt.Errorf("whoami: %w", err)
	}
	if res.UserID != a.cfg.UserID {
		return fmt.Errorf("%w: it is %s, channels.matrix.user_id says %s", errWrongUser, res.UserID, a.cfg.UserID)
	}
	return nil
}

// fetchName learns our display name (best effort: it only helps strip
// "Name: " prefixes).
func (a *Adapter) fetchName(ctx context.Context) {
	var res struct {
		DisplayName string `json:"displayname"`
	}
	err := a.call(ctx, http.MethodGet, "/_matrix/client/v3/profile/"+url.PathEscape(a.cfg.UserID)+"/displayname", nil, nil, &res, a.cfg.Timeout)
	if err != nil {
		a.log.Debug("matrix: no display name", logErr, err)
		return
	}
	a.mu.Lock()
	a.name = res.DisplayName
	a.mu.Unlock()
}

// rooms is what the sync loop remembers about rooms; owned by run.
type rooms struct {
	members map[string]int    // room → joined members
	names   map[string]string // room + "\x00" + user → display name
}

// maxNames bounds the display-name cache; it starts over when full.
const maxNames = 10000

// run syncs until ctx ends.
func (a *Adapter) run(ctx context.Context, sink channels.Sink) {
	rs := &rooms{members: map[string]int{}, names: map[string]string{}}
	fails := 0
	pause := func(err error) {
		fails++
		a.setError(err)
		a.setConnected(false, "retrying")
		d := a.backoff.Delay(fails)
		a.log.Warn("matrix: sync failed; retrying", logErr, err, "in", d)
		channels.Sleep(ctx, d)
	}
	var since string
	loaded, named := false, false
	for ctx.Err() == nil {
		if !loaded {
			s, err := a.store.LoadSince(ctx)
			if err != nil {
				pause(err)
				continue
			}
			since, loaded = s, true
		}
		if !named {
			a.fetchName(ctx)
			named = true
		}
		initial := since == ""
		resp, err := a.sync(ctx, since, initial)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			pause(err)
			continue
		}
		a.setConnected(true, "syncing with "+a.base)
		if err := a.process(ctx, sink, rs, resp, since); err != nil {
			if ctx.Err() != nil {
				return
			}
			pause(err) // the same batch again, from the same since
			continue
		}
		fails = 0
		if initial {
			a.log.Info("matrix: first sync; earlier messages are not answered")
		}
		if resp.NextBatch != since {
			if err := a.store.SaveSince(ctx, resp.NextBatch); err != nil {
				// Go on: after a restart the batch is synced again and
				// the hub drops the duplicates.
				a.setError(err)
				a.log.Error("matrix: cannot save the sync position", logErr, err)
			}
			since = resp.NextBatch
		}
	}
}

// sync does one /sync: a long-poll from since, or with no since a quick
// one that only learns the position.
func (a *Adapter) sync(ctx context.Context, since string, initial bool) (*syncResponse, error) {
	q := url.Values{"filter": {syncFilter}}
	wait := a.pollTimeout
	if initial {
		wait = 0
	} else {
		q.Set("since", since)
	}
	q.Set("timeout", strconv.FormatInt(wait.Milliseconds(), 10))
	var raw json.RawMessage
	if err := a.call(ctx, http.MethodGet, "/_matrix/client/v3/sync", q, nil, &raw, wait+a.cfg.Timeout); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	return parseSync(raw)
}

// process handles one sync batch: invites, room state, then every message
// in order. An error means the batch must be synced again.
func (a *Adapter) process(ctx context.Context, sink channels.Sink, rs *rooms, resp *syncResponse, since string) error {
	if a.cfg.AutoJoin {
		for _, id := range slices.Sorted(maps.Keys(resp.Rooms.Invite)) {
			a.join(ctx, id)
		}
	}
	me := a.me()
	for _, id := range slices.Sorted(maps.Keys(resp.Rooms.Join)) {
		room := resp.Rooms.Join[id]
		rs.learn(id, &room)
		if since == "" {
			continue // the first sync: history is not answered
		}
		events := room.Timeline.Events
		if room.Timeline.Limited && room.Timeline.PrevBatch != "" {
			older, err := a.backfill(ctx, id, room.Timeline.PrevBatch, since)
			if err != nil {
				return fmt.Errorf("fill the gap in %s: %w", id, err)
			}
			events = append(older, events...)
		}
		rs.learnMembers(id, events)
		// A room we just joined shows some of its history: only what
		// follows our join is for us.
		events = afterOwnJoin(events, me.UserID)
		for _, raw := range events {
			if err := a.handle(ctx, sink, rs, id, raw, me); err != nil {
				return err
			}
		}
	}
	return nil
}

// handle delivers one timeline event; an error means it must be retried.
func (a *Adapter) handle(ctx context.Context, sink channels.Sink, rs *rooms, roomID string, raw json.RawMessage, me identity) error {
	var head struct {
		Sender string `json:"sender"`
	}
	_ = json.Unmarshal(raw, &head)
	m, err := toMessage(raw, roomInfo{ID: roomID, SenderName: rs.names[roomID+"\x00"+head.Sender]}, me)
	if err != nil {
		a.log.Warn("matrix: ignoring an event that does not parse", logRoom, roomID, logErr, err)
		return nil
	}
	if m == nil {
		return nil
	}
	direct, err := a.direct(ctx, rs, roomID)
	if err != nil {
		return err
	}
	if direct {
		m.ConversationType = channels.Direct
	}
	err = sink.Deliver(ctx, m)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, channels.ErrInvalid):
		a.log.Warn("matrix: hub refused a message", logRoom, roomID, logEvent, m.ID, logErr, err)
		return nil
	default:
		return fmt.Errorf("deliver %s: %w", m.ID, err)
	}
}

// learn records a room's member count and member names from a sync.
func (rs *rooms) learn(roomID string, room *joinedRoom) {
	if n := room.Summary.JoinedMemberCount; n != nil {
		rs.members[roomID] = *n
	}
	rs.learnMembers(roomID, room.State.Events)
}

// learnMembers records the display names of m.room.member events.
func (rs *rooms) learnMembers(roomID string, events []json.RawMessage) {
	for _, raw := range events {
		var ev event
		if json.Unmarshal(raw, &ev) != nil || ev.Type != "m.room.member" || ev.StateKey == nil {
			continue
		}
		var c memberContent
		if json.Unmarshal(ev.Content, &c) != nil {
			continue
		}
		k := roomID + "\x00" + *ev.StateKey
		if c.Membership == "join" && c.DisplayName != "" {
			if len(rs.names) >= maxNames {
				clear(rs.names)
			}
			rs.names[k] = c.DisplayName
		} else {
			delete(rs.names, k)
		}
	}
}

// afterOwnJoin drops the events before our own latest join, if the list
// has one.
func afterOwnJoin(events []json.RawMessage, userID string) []json.RawMessage {
	for i := len(events) - 1; i >= 0; i-- {
		var ev event
		if json.Unmarshal(events[i], &ev) != nil || ev.Type != "m.room.member" || ev.StateKey == nil || *ev.StateKey != userID {
			continue
		}
		var c memberContent
		var u struct {
			Unsigned struct {
				PrevContent memberContent `json:"prev_content"`
			} `json:"unsigned"`
		}
		_ = json.Unmarshal(events[i], &u)
		// A join after a join is a profile change, not an arrival.
		if json.Unmarshal(ev.Content, &c) == nil && c.Membership == "join" && u.Unsigned.PrevContent.Membership != "join" {
			return events[i+1:]
		}
	}
	return events
}

// direct reports whether a room is a one-to-one chat (at most 2 joined
// members), asking the homeserver when no sync summary said.
func (a *Adapter) direct(ctx context.Context, rs *rooms, roomID string) (bool, error) {
	if n, ok := rs.members[roomID]; ok {
		return n <= 2, nil
	}
	var res struct {
		Joined map[string]json.RawMessage `json:"joined"`
	}
	err := a.call(ctx, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/joined_members", nil, nil, &res, a.cfg.Timeout)
	if err != nil {
		if errors.Is(err, channels.ErrPermanent) {
			// Not a member any more, or not allowed: treat as a group
			// (answered only when mentioned).
			a.log.Warn("matrix: cannot count the room's members; treating it as a group", logRoom, roomID, logErr, err)
			rs.members[roomID] = 3
			return false, nil
		}
		return false, fmt.Errorf("joined members of %s: %w", roomID, err)
	}
	rs.members[roomID] = len(res.Joined)
	return len(res.Joined) <= 2, nil
}

// backfill fetches the messages a limited timeline left out, between the
// previous sync position and prevBatch, oldest first (at most
// backfillMax; older ones are logged as skipped).
func (a *Adapter) backfill(ctx context.Context, roomID, prevBatch, since string) ([]json.RawMessage, error) {
	var got []json.RawMessage
	from := prevBatch
	for len(got) < a.backfillMax {
		q := url.Values{
			"dir":    {"b"},
			"from":   {from},
			"to":     {since},
			"limit":  {strconv.Itoa(min(a.backfillPage, a.backfillMax-len(got)))},
			"filter": {messagesFilter},
		}
		var res struct {
			Chunk []json.RawMessage `json:"chunk"`
			End   string            `json:"end"`
		}
		if err := a.call(ctx, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/messages", q, nil, &res, a.cfg.Timeout); err != nil {
			return nil, err
		}
		got = append(got, res.Chunk...)
		if len(res.Chunk) == 0 || res.End == "" || res.End == from {
			slices.Reverse(got)
			return got, nil
		}
		from = res.End
	}
	a.log.Warn("matrix: too many messages missed in a room; the oldest are not answered", logRoom, roomID, "fetched", len(got))
	slices.Reverse(got)
	return got, nil
}

// join accepts an invite, a few times if the homeserver fails.
func (a *Adapter) join(ctx context.Context, roomID string) {
	for attempt := 1; ; attempt++ {
		err := a.call(ctx, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(roomID), nil, struct{}{}, nil, a.cfg.Timeout)
		if err == nil {
			a.log.Info("matrix: joined a room on invitation", logRoom, roomID)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, channels.ErrPermanent) || attempt >= a.joinAttempts {
			err = fmt.Errorf("join %s: %w", roomID, err)
			a.setError(err)
			a.log.Warn("matrix: cannot join a room", logRoom, roomID, logErr, err)
			return
		}
		if !channels.Sleep(ctx, a.backoff.Delay(attempt)) {
			return
		}
	}
}
