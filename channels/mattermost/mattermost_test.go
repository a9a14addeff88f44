package mattermost

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

// wait bounds every wait for the adapter; generous, never a timing claim.
const wait = 10 * time.Second

func testConfig(f *fakeMM) Config {
	c := DefaultConfig()
	c.Enabled = true
	c.BaseURL = f.srv.URL + "/"
	c.Token = config.NewSecret(f.token)
	c.Timeout = 5 * time.Second
	return c
}

func newTestAdapter(t *testing.T, cfg Config) *Adapter {
	t.Helper()
	a, err := New(cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	a.reconnect = channels.Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond}
	a.deliverBackoff = channels.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}
	return a
}

func start(t *testing.T, a *Adapter, sink channels.Sink) {
	t.Helper()
	if err := a.Start(t.Context(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
}

func mkPost(id, channel, user, msg string) map[string]any {
	return map[string]any{
		"id": id, "create_at": int64(1700000000123), "update_at": int64(1700000000123),
		"user_id": user, "channel_id": channel, "root_id": "", "message": msg, "type": "",
		"props": map[string]any{}, "hashtags": "", "pending_post_id": "",
	}
}

func TestInbound(t *testing.T) {
	f := newFakeMM(t)
	a := newTestAdapter(t, testConfig(f))
	sink := channelstest.NewSink()
	start(t, a, sink)
	f.waitConn(t)

	// A direct message.
	f.posted(mkPost("p1", "dm1", "alice", "  where is my order?  "), "D", "alice", f.bot.ID)
	// A channel message mentioning the bot.
	f.posted(mkPost("p2", "town", "bob", "@helper: refund please"), "O", "bob", f.bot.ID)
	// A channel message not for the bot.
	f.posted(mkPost("p3", "town", "carol", "lunch anyone? cc @helperbot"), "O", "carol")
	// Not answered: the bot's own post, a system post, another bot, an
	// edit, a typing event, an unknown event.
	f.posted(mkPost("own", "town", f.bot.ID, "I am the bot"), "O", "helper")
	sys := mkPost("sys", "town", "dave", "dave joined the channel.")
	sys["type"] = "system_join_channel"
	f.posted(sys, "O", "dave")
	bot := mkPost("otherbot", "town", "robot", "beep")
	bot["props"] = map[string]any{"from_bot": "true"}
	f.posted(bot, "O", "robot")
	f.emit("post_edited", map[string]any{"post": `{"id":"p1","channel_id":"dm1","message":"edited"}`}, broadcast{ChannelID: "dm1"})
	f.emit("typing", map[string]any{"parent_id": ""}, broadcast{ChannelID: "dm1"})
	f.emit("some_future_event", map[string]any{"x": 1}, broadcast{})
	// A thread reply with files, in a group message.
	th := mkPost("p4", "gm1", "erin", "see attached @HELPER")
	th["root_id"] = "p2"
	th["file_ids"] = []string{"f1", "f2"}
	th["metadata"] = map[string]any{"files": []map[string]any{{"id": "f1", "name": "invoice.png", "size": 2048, "mime_type": "image/png"}}}
	f.posted(th, "G", "erin", f.bot.ID)
	// Redelivery of p1 (a resumed stream replays): one message.
	f.posted(mkPost("p1", "dm1", "alice", "where is my order?"), "D", "alice")

	got := sink.WaitMessages(4, wait)
	if len(got) != 4 {
		t.Fatalf("delivered %d messages, want 4: %+v", len(got), got)
	}
	byID := map[string]*channels.Message{}
	for _, m := range got {
		byID[m.ID] = m
		if m.Platform != "mattermost" || m.Bot != f.bot.ID || m.Raw == nil {
			t.Errorf("%s: platform %q bot %q raw %d bytes", m.ID, m.Platform, m.Bot, len(m.Raw))
		}
	}
	m := byID["p1"]
	if m == nil || m.ConversationType != channels.Direct || m.Conversation != "dm1" || m.Text != "where is my order?" ||
		m.Sender != (channels.Sender{ID: "alice", Name: "alice"}) || !m.Time.Equal(time.UnixMilli(1700000000123)) || m.Time.Location() != time.UTC {
		t.Errorf("p1 = %+v", m)
	}
	m = byID["p2"]
	if m == nil || m.ConversationType != channels.Channel || !m.Mentioned || m.Text != "refund please" || len(m.Mentions) != 1 || m.Mentions[0] != f.bot.ID {
		t.Errorf("p2 = %+v", m)
	}
	m = byID["p3"]
	if m == nil || m.Mentioned || m.Text != "lunch anyone? cc @helperbot" {
		t.Errorf("p3 = %+v", m)
	}
	m = byID["p4"]
	if m == nil || m.ConversationType != channels.Group || m.Thread != "p2" || !m.Mentioned || m.Text != "see attached" || len(m.Media) != 2 {
		t.Fatalf("p4 = %+v", m)
	}
	if m.Media[0] != (channels.Media{Kind: channels.Image, Key: "f1", MIME: "image/png", Size: 2048, Name: "invoice.png"}) ||
		m.Media[1] != (channels.Media{Kind: channels.File, Key: "f2"}) {
		t.Errorf("p4 media = %+v", m.Media)
	}
	if st := a.State(); !st.Connected {
		t.Errorf("state = %+v", st)
	}
}

func TestReconnectResumes(t *testing.T) {
	f := newFakeMM(t)
	a := newTestAdapter(t, testConfig(f))
	sink := channelstest.NewSink()
	start(t, a, sink)
	f.waitConn(t)

	f.posted(mkPost("p1", "dm1", "alice", "one"), "D", "alice")
	sink.WaitMessages(1, wait)
	// The connection drops; a post arrives meanwhile; the adapter resumes
	// with connection_id and sequence_number and the server replays it.
	f.drop()
	f.posted(mkPost("p2", "dm1", "alice", "two"), "D", "alice")
	f.waitConn(t)
	if got := sink.WaitMessages(2, wait); len(got) != 2 || got[1].Text != "two" {
		t.Fatalf("after resume: %+v", got)
	}
	f.mu.Lock()
	q := f.dials[len(f.dials)-1]
	f.mu.Unlock()
	if q.Get("connection_id") != "conn1" || q.Get("sequence_number") != "2" {
		t.Errorf("resume query = %v, want connection_id=conn1 sequence_number=2", q)
	}

	// A server restart: it cannot resume and starts a fresh stream; the
	// adapter follows the new sequence.
	f.mu.Lock()
	f.forget = true
	f.mu.Unlock()
	f.drop()
	f.waitConn(t)
	f.posted(mkPost("p3", "dm1", "alice", "three"), "D", "alice")
	if got := sink.WaitMessages(3, wait); len(got) != 3 || got[2].Text != "three" {
		t.Fatalf("after restart: %+v", got)
	}
	if st := a.State(); !strings.Contains(st.LastError, "not resumed") {
		t.Errorf("state = %+v, want the missed posts noted", st)
	}
}

func TestSequenceGapReconnects(t *testing.T) {
	f := newFakeMM(t)
	a := newTestAdapter(t, testConfig(f))
	sink := channelstest.NewSink()
	start(t, a, sink)
	f.waitConn(t)

	// An event is numbered but never sent on this connection: the next one
	// shows a gap; the adapter reconnects and the server replays both.
	f.mu.Lock()
	f.frameLocked("posted", map[string]any{"channel_type": "D", "post": `{"id":"lost","channel_id":"dm1","user_id":"alice","message":"skipped"}`}, broadcast{})
	f.mu.Unlock()
	f.posted(mkPost("p2", "dm1", "alice", "after gap"), "D", "alice")
	f.waitConn(t)
	got := sink.WaitMessages(2, wait)
	if len(got) != 2 || got[0].ID != "lost" || got[1].ID != "p2" {
		t.Fatalf("got %+v", got)
	}
}

func TestIdleConnectionReconnects(t *testing.T) {
	f := newFakeMM(t)
	a := newTestAdapter(t, testConfig(f))
	a.pingInterval, a.idleTimeout = 20*time.Millisecond, 60*time.Millisecond
	f.stallNext = true // the first connection never answers pings
	sink := channelstest.NewSink()
	start(t, a, sink)
	f.waitConn(t)
	f.waitConn(t) // the adapter gave up on the silent one and reconnected
	f.posted(mkPost("p1", "dm1", "alice", "hi"), "D", "alice")
	if got := sink.WaitMessages(1, wait); len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
}

func TestChallengeWithoutHeader(t *testing.T) {
	f := newFakeMM(t)
	a := newTestAdapter(t, testConfig(f))
	// A proxy strips the Authorization header from the upgrade request.
	a.ws.Transport = stripAuth{}
	sink := channelstest.NewSink()
	start(t, a, sink)
	f.waitConn(t)
	f.posted(mkPost("p1", "dm1", "alice", "hi"), "D", "alice")
	if got := sink.WaitMessages(1, wait); len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.headerless != 1 {
		t.Errorf("headerless connections = %d, want 1", f.headerless)
	}
}

type stripAuth struct{}

func (stripAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Del("Authorization")
	return http.DefaultTransport.RoundTrip(r)
}

// flakySink fails the first fails deliveries, like a hub that is busy.
type flakySink struct {
	*channelstest.Sink
	fails atomic.Int32
}

func (s *flakySink) Deliver(ctx context.Context, m *channels.Message) error {
	if s.fails.Add(-1) >= 0 {
		return errors.New("hub busy")
	}
	return s.Sink.Deliver(ctx, m)
}

func TestDeliverRetried(t *testing.T) {
	f := newFakeMM(t)
	a := newTestAdapter(t, testConfig(f))
	sink := &flakySink{Sink: channelstest.NewSink()}
	sink.fails.Store(3)
	start(t, a, sink)
	f.waitConn(t)
	f.posted(mkPost("p1", "dm1", "alice", "hi"), "D", "alice")
	if got := sink.WaitMessages(1, wait); len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
}

func TestDeliverGivesUp(t *testing.T) {
	f := newFakeMM(t)
	a := newTestAdapter(t, testConfig(f))
	a.deliverAttempts = 2
	sink := &flakySink{Sink: channelstest.NewSink()}
	sink.fails.Store(2)
	start(t, a, sink)
	f.waitConn(t)
	f.posted(mkPost("p1", "dm1", "alice", "lost"), "D", "alice")
	f.posted(mkPost("p2", "dm1", "alice", "kept"), "D", "alice")
	got := sink.WaitMessages(1, wait)
	if len(got) != 1 || got[0].ID != "p2" {
		t.Fatalf("got %+v", got)
	}
	if st := a.State(); !strings.Contains(st.LastError, "p1 lost") {
		t.Errorf("state = %+v", st)
	}
}

func TestStartBadToken(t *testing.T) {
	f := newFakeMM(t)
	cfg := testConfig(f)
	cfg.Token = config.NewSecret("wrong")
	a := newTestAdapter(t, cfg)
	err := a.Start(t.Context(), channelstest.NewSink())
	if !errors.Is(err, ErrTokenRejected) {
		t.Fatalf("Start = %v, want ErrTokenRejected", err)
	}
	if err := a.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestStartServerDown(t *testing.T) {
	f := newFakeMM(t)
	cfg := testConfig(f)
	f.srv.Close()
	a := newTestAdapter(t, cfg)
	// The loop keeps trying in the background; Stop ends it.
	if err := a.Start(t.Context(), channelstest.NewSink()); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context(), channelstest.NewSink()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start = %v", err)
	}
	if err := a.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := a.State(); st.Connected || st.LastError == "" {
		t.Errorf("state = %+v", st)
	}
}

func TestSend(t *testing.T) {
	f := newFakeMM(t)
	a := newTestAdapter(t, testConfig(f))
	f.limitOnce = true
	out := &channels.Outgoing{Key: "k1", Conversation: "town", Thread: "p2", Text: "**done**", Markdown: true, Part: 1, Parts: 1, Attempt: 1}
	_, err := a.Send(t.Context(), out)
	var ra *channels.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 3*time.Second {
		t.Fatalf("Send = %v, want retry after 3s", err)
	}
	r, err := a.Send(t.Context(), out)
	if err != nil || r.PlatformID != "post1" {
		t.Fatalf("Send = %+v, %v", r, err)
	}
	f.mu.Lock()
	p := f.posts[0]
	f.mu.Unlock()
	want := map[string]string{"channel_id": "town", "message": "**done**", "root_id": "p2", "pending_post_id": "k1"}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("post %s = %q, want %q", k, p[k], v)
		}
	}
	// A channel the bot cannot post in.
	_, err = a.Send(t.Context(), &channels.Outgoing{Key: "k2", Conversation: "nochannel", Text: "x"})
	if !errors.Is(err, channels.ErrPermanent) {
		t.Errorf("forbidden: %v", err)
	}
	// A revoked token.
	cfg := testConfig(f)
	cfg.Token = config.NewSecret("revoked")
	b := newTestAdapter(t, cfg)
	_, err = b.Send(t.Context(), out)
	if !errors.Is(err, channels.ErrPermanent) || !errors.Is(err, ErrTokenRejected) {
		t.Errorf("bad token: %v", err)
	}
}

func TestSendErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		code      int
		header    map[string]string
		permanent bool
		after     time.Duration
	}{
		{code: 400, permanent: true},
		{code: 401, permanent: true},
		{code: 403, permanent: true},
		{code: 404, permanent: true},
		{code: 408},
		{code: 429, after: time.Second},
		{code: 429, header: map[string]string{"Retry-After": "7"}, after: 7 * time.Second},
		{code: 429, header: map[string]string{"X-Ratelimit-Reset": "2"}, after: 2 * time.Second},
		{code: 500},
		{code: 502},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				apiErr(w, tc.code, "some.app_error", "nope")
			}))
			defer srv.Close()
			cfg := DefaultConfig()
			cfg.BaseURL, cfg.Token = srv.URL, config.NewSecret("t")
			a, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Send(t.Context(), &channels.Outgoing{Key: "k", Conversation: "c", Text: "x"})
			var ra *channels.RetryAfterError
			switch {
			case err == nil:
				t.Fatal("no error")
			case tc.after > 0:
				if !errors.As(err, &ra) || ra.After != tc.after {
					t.Errorf("err = %v, want retry after %s", err, tc.after)
				}
			case tc.permanent != errors.Is(err, channels.ErrPermanent):
				t.Errorf("err = %v, permanent = %v", err, !tc.permanent)
			case errors.As(err, &ra):
				t.Errorf("err = %v is a retry-after", err)
			}
			if !strings.Contains(err.Error(), "nope") {
				t.Errorf("err = %v lacks the server's message", err)
			}
			if a.State().LastError == "" {
				t.Error("send error not in State")
			}
		})
	}
}

func TestConfig(t *testing.T) {
	c := DefaultConfig()
	v := config.NewValidator("channels.mattermost")
	c.Validate(v)
	if err := v.Err(); err != nil {
		t.Errorf("disabled default: %v", err)
	}
	c.Enabled = true
	c.BaseURL = "mattermost.example.com"
	c.Timeout = 0
	v = config.NewValidator("channels.mattermost")
	c.Validate(v)
	err := v.Err()
	for _, want := range []string{"base_url", "token", "timeout"} {
		if err == nil || !strings.Contains(err.Error(), "channels.mattermost."+want) {
			t.Errorf("missing %s error in %v", want, err)
		}
	}
	if _, err := New(c, nil); err == nil {
		t.Error("New accepted an invalid config")
	}
	c = DefaultConfig()
	c.BaseURL, c.Token = "https://mm.example.com/", config.NewSecret("x")
	a, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() != "mattermost" || a.base != "https://mm.example.com" {
		t.Errorf("name %q base %q", a.Name(), a.base)
	}
	if l := a.Limits(); l.MaxText != 16383 || l.Unit != channels.Runes || l.Global != (channels.Rate{N: 10, Per: time.Second}) || l.PerChat != (channels.Rate{}) {
		t.Errorf("limits = %+v", l)
	}
}

func TestStripMention(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"@helper hi", "hi"},
		{"@helper: hi", "hi"},
		{"@Helper, hi", "hi"},
		{"hi @helper", "hi"},
		{"hi @helper there", "hi there"},
		{"hi @helper.", "hi"},
		{"@helperbot hi", "@helperbot hi"},
		{"mail helper@helper.com", "mail helper@helper.com"},
		{"@helper", ""},
		{"  plain  ", "plain"},
		{"你好 @helper 在吗", "你好 在吗"},
	} {
		if got := stripMention(tc.in, "helper"); got != tc.want {
			t.Errorf("stripMention(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOversizeFrameSkipped(t *testing.T) {
	f := newFakeMM(t)
	cfg := testConfig(f)
	cfg.MaxBody = 4 << 10
	a := newTestAdapter(t, cfg)
	sink := channelstest.NewSink()
	start(t, a, sink)
	f.waitConn(t)
	f.posted(mkPost("big", "dm1", "alice", strings.Repeat("x", 5000)), "D", "alice")
	f.posted(mkPost("p2", "dm1", "alice", "small"), "D", "alice")
	f.waitConn(t) // the read failed; the adapter resumed past the big one
	got := sink.WaitMessages(1, wait)
	if len(got) != 1 || got[0].ID != "p2" {
		t.Fatalf("got %+v", got)
	}
	if st := a.State(); !strings.Contains(st.LastError, "over max_body") {
		t.Errorf("state = %+v", st)
	}
}
