package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

// wait bounds every wait for the adapter; generous, never a timing claim.
const wait = 10 * time.Second

func testConfig(f *fakeHS) Config {
	c := DefaultConfig()
	c.Enabled = true
	c.BaseURL = f.srv.URL + "/"
	c.UserID = f.userID
	c.AccessToken = config.NewSecret(f.token)
	c.Timeout = 5 * time.Second
	return c
}

// memStore is a TokenStore in memory that records every save.
type memStore struct {
	mu    sync.Mutex
	token string
	saves []string
}

func (s *memStore) LoadSince(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token, nil
}

func (s *memStore) SaveSince(_ context.Context, t string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = t
	s.saves = append(s.saves, t)
	return nil
}

func (s *memStore) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

func newTestAdapter(t *testing.T, cfg Config, store TokenStore) *Adapter {
	t.Helper()
	a, err := New(cfg, store, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	a.pollTimeout = 200 * time.Millisecond
	a.backoff = channels.Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond}
	return a
}

func start(t *testing.T, a *Adapter, sink channels.Sink) {
	t.Helper()
	if err := a.Start(t.Context(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, a) })
}

func stop(t *testing.T, a *Adapter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Error(err)
	}
}

const (
	dm    = "!dm:hs.test"
	group = "!group:hs.test"
	alice = "@alice:hs.test"
	bob   = "@bob:hs.test"
)

func TestInbound(t *testing.T) {
	f := newFakeHS(t)
	f.room(dm, map[string]string{alice: "Alice"})
	f.room(group, map[string]string{alice: "Alice", bob: "Bob", "@carol:hs.test": "Carol"})
	f.message(dm, alice, text("old history, not to be answered"))
	a := newTestAdapter(t, testConfig(f), &memStore{})
	sink := channelstest.NewSink()
	start(t, a, sink)
	f.waitSync(t, f.position()) // the first sync is done, the loop polls

	hello := f.message(dm, alice, text("  hello there  "))
	mention := f.message(group, bob, map[string]any{
		"msgtype": "m.text", "body": "Zhiyin Bot: where is my parcel?",
		"m.mentions": map[string]any{"user_ids": []string{f.userID}},
	})
	legacy := f.message(group, alice, text("zhiyin, any news?"))
	chatter := f.message(group, alice, text("lunch?"))
	// Not answered: a notice, an edit, a redacted event, our own message.
	f.message(group, bob, map[string]any{"msgtype": "m.notice", "body": "build passed"})
	f.message(group, bob, map[string]any{"msgtype": "m.text", "body": "* fixed", "m.new_content": text("fixed"),
		"m.relates_to": map[string]any{"rel_type": "m.replace", "event_id": mention}})
	f.message(group, bob, map[string]any{})
	if _, err := a.Send(t.Context(), &channels.Outgoing{Key: "own1", Conversation: dm, Text: "my own words"}); err != nil {
		t.Fatal(err)
	}
	reply := f.message(dm, alice, map[string]any{
		"msgtype":      "m.text",
		"body":         "> <@zhiyin:hs.test> Your order shipped.\n> Tracking follows.\n\nthanks! when?",
		"m.relates_to": map[string]any{"m.in_reply_to": map[string]any{"event_id": hello}},
	})
	thread := f.message(group, bob, map[string]any{
		"msgtype": "m.text", "body": "in the thread",
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": mention, "is_falling_back": true,
			"m.in_reply_to": map[string]any{"event_id": mention}},
		"m.mentions": map[string]any{},
	})
	image := f.message(dm, alice, map[string]any{"msgtype": "m.image", "body": "receipt.png", "url": "mxc://hs.test/abc",
		"info": map[string]any{"mimetype": "image/png", "size": 12345, "w": 100, "h": 80}})
	voice := f.message(dm, alice, map[string]any{"msgtype": "m.audio", "body": "Voice message", "url": "mxc://hs.test/voice",
		"info": map[string]any{"mimetype": "audio/ogg", "size": "2048", "duration": 3500}})
	caption := f.message(dm, alice, map[string]any{"msgtype": "m.file", "body": "the contract, please check", "filename": "contract.pdf",
		"url": "mxc://hs.test/pdf", "info": map[string]any{"mimetype": "application/pdf", "size": 99}})

	want := []string{hello, mention, legacy, chatter, reply, thread, image, voice, caption}
	got := sink.WaitMessages(len(want), wait)
	f.waitSync(t, f.position())
	got = sink.Messages()
	if len(got) != len(want) {
		for _, m := range got {
			t.Logf("%s %q", m.ID, m.Text)
		}
		t.Fatalf("delivered %d messages, want %d", len(got), len(want))
	}
	// In order within each room (rooms of one batch may interleave).
	pos := map[string]int{}
	for i, id := range want {
		pos[id] = i
	}
	last := map[string]int{}
	by := map[string]*channels.Message{}
	for _, m := range got {
		by[m.ID] = m
		p, ok := pos[m.ID]
		if !ok {
			t.Errorf("unexpected message %s %q", m.ID, m.Text)
			continue
		}
		if l, seen := last[m.Conversation]; seen && l > p {
			t.Errorf("%s delivered out of order in %s", m.ID, m.Conversation)
		}
		last[m.Conversation] = p
		if m.Platform != "matrix" || m.Bot != f.userID || len(m.Raw) == 0 || m.Time.IsZero() || m.Time.Location() != time.UTC {
			t.Errorf("%s: %+v", m.ID, m)
		}
	}
	if m := by[hello]; m.ConversationType != channels.Direct || m.Conversation != dm || m.Text != "hello there" || m.Sender != (channels.Sender{ID: alice, Name: "Alice"}) || m.Mentioned {
		t.Errorf("hello = %+v", m)
	}
	if m := by[mention]; m.ConversationType != channels.Group || !m.Mentioned || m.Text != "where is my parcel?" || len(m.Mentions) != 1 {
		t.Errorf("mention = %+v", m)
	}
	if m := by[legacy]; !m.Mentioned || m.Text != "any news?" {
		t.Errorf("legacy = %+v", m)
	}
	if m := by[chatter]; m.Mentioned || m.Text != "lunch?" {
		t.Errorf("chatter = %+v", m)
	}
	if m := by[reply]; m.ReplyTo != hello || m.Text != "thanks! when?" {
		t.Errorf("reply = %+v", m)
	}
	if m := by[thread]; m.Thread != mention || m.ReplyTo != "" || m.Mentioned {
		t.Errorf("thread = %+v", m)
	}
	if m := by[image]; m.Text != "" || len(m.Media) != 1 || m.Media[0] != (channels.Media{Kind: channels.Image, URL: "mxc://hs.test/abc", MIME: "image/png", Size: 12345, Name: "receipt.png"}) {
		t.Errorf("image = %+v", m)
	}
	if m := by[voice]; len(m.Media) != 1 || m.Media[0] != (channels.Media{Kind: channels.Voice, URL: "mxc://hs.test/voice", MIME: "audio/ogg", Size: 2048, Name: "Voice message", Duration: 3500 * time.Millisecond}) {
		t.Errorf("voice = %+v", m)
	}
	if m := by[caption]; m.Text != "the contract, please check" || len(m.Media) != 1 || m.Media[0].Name != "contract.pdf" || m.Media[0].Kind != channels.File {
		t.Errorf("caption = %+v", m)
	}
	if st := a.State(); !st.Connected {
		t.Errorf("state = %+v", st)
	}
}

func TestRestartResumes(t *testing.T) {
	f := newFakeHS(t)
	f.room(dm, map[string]string{alice: "Alice"})
	f.message(dm, alice, text("history"))
	store := FileTokenStore{Path: filepath.Join(t.TempDir(), "channels", "matrix.since")}

	a := newTestAdapter(t, testConfig(f), store)
	sink := channelstest.NewSink()
	if err := a.Start(t.Context(), sink); err != nil {
		t.Fatal(err)
	}
	f.waitSync(t, f.position())
	if tok, _ := store.LoadSince(t.Context()); tok != "s"+strconv.Itoa(f.position()) {
		t.Fatalf("first sync saved %q", tok)
	}
	one := f.message(dm, alice, text("one"))
	two := f.message(dm, alice, text("two"))
	sink.WaitMessages(2, wait)
	f.waitSync(t, f.position()) // batch 1 saved
	stop(t, a)

	three := f.message(dm, alice, text("three while down"))
	b := newTestAdapter(t, testConfig(f), store)
	sink2 := channelstest.NewSink()
	start(t, b, sink2)
	sink2.WaitMessages(1, wait)
	f.waitSync(t, f.position())
	if got := sink.Messages(); len(got) != 2 || got[0].ID != one || got[1].ID != two {
		t.Errorf("first run delivered %+v", got)
	}
	if got := sink2.Messages(); len(got) != 1 || got[0].ID != three {
		t.Errorf("second run delivered %+v, want only %s", got, three)
	}
}

// flakySink fails deliveries while fails > 0 and checks that the sync
// position was not saved past an undelivered message.
type flakySink struct {
	*channelstest.Sink
	fails  atomic.Int32
	store  *memStore
	before string // the position saved before the failing batch
	bad    atomic.Value
}

func (s *flakySink) Deliver(ctx context.Context, m *channels.Message) error {
	if s.fails.Add(-1) >= 0 {
		if got := s.store.get(); got != s.before {
			s.bad.Store("position " + got + " saved before delivery of " + m.ID)
		}
		return errors.New("hub busy")
	}
	return s.Sink.Deliver(ctx, m)
}

func TestDeliverFailureResyncs(t *testing.T) {
	f := newFakeHS(t)
	f.room(dm, map[string]string{alice: "Alice"})
	store := &memStore{}
	a := newTestAdapter(t, testConfig(f), store)
	sink := &flakySink{Sink: channelstest.NewSink(), store: store}
	start(t, a, sink)
	f.waitSync(t, f.position())
	sink.before = store.get()
	sink.fails.Store(3)
	f.mu.Lock()
	one := f.addLocked(dm, map[string]any{"type": "m.room.message", "sender": alice, "content": text("one")})
	two := f.addLocked(dm, map[string]any{"type": "m.room.message", "sender": alice, "content": text("two")})
	f.mu.Unlock()
	got := sink.WaitMessages(2, wait)
	f.waitSync(t, f.position())
	if len(got) != 2 || got[0].ID != one || got[1].ID != two {
		t.Fatalf("got %+v", got)
	}
	if bad := sink.bad.Load(); bad != nil {
		t.Error(bad)
	}
	if st := a.State(); !strings.Contains(st.LastError, "hub busy") {
		t.Errorf("state = %+v", st)
	}
}

func TestInviteAutoJoin(t *testing.T) {
	f := newFakeHS(t)
	const room = "!new:hs.test"
	f.invite(room, "@inviter:hs.test")
	f.message(room, "@inviter:hs.test", text("said before the bot came"))
	a := newTestAdapter(t, testConfig(f), &memStore{})
	sink := channelstest.NewSink()
	start(t, a, sink)
	// The first sync joins; the next shows the room with its history, of
	// which nothing before the join is answered.
	deadline := time.After(wait)
	for {
		f.mu.Lock()
		joined := len(f.joins)
		f.mu.Unlock()
		if joined > 0 {
			break
		}
		select {
		case <-f.syncs:
		case <-deadline:
			t.Fatal("invite not accepted")
		}
	}
	f.waitSync(t, f.position())
	after := f.message(room, "@inviter:hs.test", text("welcome, bot"))
	got := sink.WaitMessages(1, wait)
	f.waitSync(t, f.position())
	got = sink.Messages()
	if len(got) != 1 || got[0].ID != after || got[0].ConversationType != channels.Direct {
		t.Fatalf("got %+v", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.joins) != 1 || f.joins[0] != room {
		t.Errorf("joins = %v", f.joins)
	}
}

func TestAutoJoinOff(t *testing.T) {
	f := newFakeHS(t)
	f.invite("!new:hs.test", "@inviter:hs.test")
	cfg := testConfig(f)
	cfg.AutoJoin = false
	a := newTestAdapter(t, cfg, &memStore{})
	start(t, a, channelstest.NewSink())
	f.waitSync(t, f.position())
	f.waitSync(t, f.position())
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.joins) != 0 {
		t.Errorf("joined %v with auto_join off", f.joins)
	}
}

func TestLimitedTimelineBackfilled(t *testing.T) {
	f := newFakeHS(t)
	f.room(dm, map[string]string{alice: "Alice"})
	f.timelineLimit = 2
	store := &memStore{}
	a := newTestAdapter(t, testConfig(f), store)
	start(t, a, channelstest.NewSink())
	f.waitSync(t, f.position())
	stop(t, a)

	var want []string
	for i := range 7 {
		want = append(want, f.message(dm, alice, text("m"+strconv.Itoa(i))))
	}
	b := newTestAdapter(t, testConfig(f), store)
	b.backfillPage = 2 // 5 missing: three pages
	sink := channelstest.NewSink()
	start(t, b, sink)
	sink.WaitMessages(len(want), wait)
	f.waitSync(t, f.position())
	got := sink.Messages()
	if len(got) != len(want) {
		t.Fatalf("delivered %d, want %d", len(got), len(want))
	}
	for i, m := range got {
		if m.ID != want[i] {
			t.Errorf("message %d = %s, want %s", i, m.ID, want[i])
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pages != 3 {
		t.Errorf("/messages requests = %d, want 3", f.pages)
	}
}

func TestMembersWithoutSummary(t *testing.T) {
	f := newFakeHS(t)
	f.room(dm, map[string]string{alice: "Alice"})
	f.room(group, map[string]string{alice: "Alice", bob: "Bob"})
	f.rooms[dm].noSummary = true
	f.rooms[group].noSummary = true
	a := newTestAdapter(t, testConfig(f), &memStore{})
	sink := channelstest.NewSink()
	start(t, a, sink)
	f.waitSync(t, f.position())
	f.message(dm, alice, text("hi"))
	f.message(group, alice, text("hi all"))
	got := sink.WaitMessages(2, wait)
	if len(got) != 2 || got[0].ConversationType != channels.Direct || got[1].ConversationType != channels.Group {
		t.Fatalf("got %+v", got)
	}
}

func TestSend(t *testing.T) {
	f := newFakeHS(t)
	f.room(dm, map[string]string{alice: "Alice"})
	const odd = "!odd/room#x:hs.test"
	f.room(odd, nil)
	a := newTestAdapter(t, testConfig(f), &memStore{})

	f.limitOnce = true
	out := &channels.Outgoing{Key: "part-1_a", Conversation: dm, Text: "**Done** <b>&\nbye", Markdown: true, Thread: "$root", Attempt: 1}
	_, err := a.Send(t.Context(), out)
	var ra *channels.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 1500*time.Millisecond {
		t.Fatalf("Send = %v, want retry after 1.5s", err)
	}
	r1, err := a.Send(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := a.Send(t.Context(), out) // the same part again: the same event
	if err != nil || r2.PlatformID != r1.PlatformID || r1.PlatformID == "" {
		t.Fatalf("resend = %+v, %v; first %+v", r2, err, r1)
	}
	f.mu.Lock()
	sends := f.sends
	content := f.events[len(f.events)-1].ev["content"].(map[string]any)
	f.mu.Unlock()
	if sends != 1 {
		t.Errorf("homeserver stored %d events, want 1", sends)
	}
	b, _ := json.Marshal(content)
	wantJSON := `{"body":"**Done** \u003cb\u003e\u0026\nbye","format":"org.matrix.custom.html","formatted_body":"\u003cstrong\u003eDone\u003c/strong\u003e \u0026lt;b\u0026gt;\u0026amp;\u003cbr\u003ebye","m.relates_to":{"event_id":"$root","is_falling_back":true,"m.in_reply_to":{"event_id":"$root"},"rel_type":"m.thread"},"msgtype":"m.text"}`
	if string(b) != wantJSON {
		t.Errorf("content = %s\nwant      %s", b, wantJSON)
	}
	// Room ids are escaped in the path.
	if _, err := a.Send(t.Context(), &channels.Outgoing{Key: "k2", Conversation: odd, Text: "plain"}); err != nil {
		t.Errorf("odd room: %v", err)
	}
	// A room the bot is not in.
	_, err = a.Send(t.Context(), &channels.Outgoing{Key: "k3", Conversation: "!gone:hs.test", Text: "x"})
	if !errors.Is(err, channels.ErrPermanent) {
		t.Errorf("forbidden: %v", err)
	}
	if !a.IdempotentSend() {
		t.Error("not idempotent")
	}
}

func TestSendErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		code      int
		body      string
		header    map[string]string
		permanent bool
		token     bool
		after     time.Duration
	}{
		{code: 403, body: `{"errcode":"M_FORBIDDEN","error":"not in room"}`, permanent: true},
		{code: 404, body: `{"errcode":"M_NOT_FOUND","error":"no room"}`, permanent: true},
		{code: 401, body: `{"errcode":"M_UNKNOWN_TOKEN","error":"bad token"}`, permanent: true, token: true},
		{code: 400, body: `{"errcode":"M_BAD_JSON","error":"bad"}`, permanent: true},
		{code: 408, body: `timeout`},
		{code: 429, body: `{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":2500}`, after: 2500 * time.Millisecond},
		{code: 429, body: `{"errcode":"M_LIMIT_EXCEEDED","error":"slow down"}`, header: map[string]string{"Retry-After": "4"}, after: 4 * time.Second},
		{code: 429, body: `nope`, after: time.Second},
		{code: 500, body: `{"errcode":"M_UNKNOWN","error":"internal"}`},
		{code: 502, body: `<html>bad gateway</html>`},
	} {
		t.Run(strconv.Itoa(tc.code)+tc.body, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.code)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			cfg := DefaultConfig()
			cfg.BaseURL, cfg.UserID, cfg.AccessToken = srv.URL, "@b:x", config.NewSecret("t")
			a, err := New(cfg, &memStore{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Send(t.Context(), &channels.Outgoing{Key: "k", Conversation: "!r:x", Text: "x"})
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
			case tc.token != errors.Is(err, ErrTokenRejected):
				t.Errorf("err = %v, token rejected = %v", err, !tc.token)
			case errors.As(err, &ra):
				t.Errorf("err = %v is a retry-after", err)
			}
		})
	}
}

func TestStartRefused(t *testing.T) {
	f := newFakeHS(t)
	cfg := testConfig(f)
	cfg.AccessToken = config.NewSecret("wrong")
	a := newTestAdapter(t, cfg, &memStore{})
	if err := a.Start(t.Context(), channelstest.NewSink()); !errors.Is(err, ErrTokenRejected) {
		t.Errorf("bad token: Start = %v", err)
	}
	cfg = testConfig(f)
	cfg.UserID = "@someone:hs.test"
	a = newTestAdapter(t, cfg, &memStore{})
	if err := a.Start(t.Context(), channelstest.NewSink()); err == nil || !strings.Contains(err.Error(), "@zhiyin:hs.test") {
		t.Errorf("wrong user: Start = %v", err)
	}
	if err := a.Stop(t.Context()); err != nil {
		t.Error(err)
	}
}

func TestStartServerDown(t *testing.T) {
	f := newFakeHS(t)
	cfg := testConfig(f)
	f.srv.Close()
	a := newTestAdapter(t, cfg, &memStore{})
	if err := a.Start(t.Context(), channelstest.NewSink()); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context(), channelstest.NewSink()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start = %v", err)
	}
	stop(t, a)
	stop(t, a)
	if st := a.State(); st.Connected || st.LastError == "" {
		t.Errorf("state = %+v", st)
	}
}

func TestFileTokenStore(t *testing.T) {
	dir := t.TempDir()
	s := FileTokenStore{Path: filepath.Join(dir, "sub", "matrix.since")}
	if tok, err := s.LoadSince(t.Context()); err != nil || tok != "" {
		t.Fatalf("missing file: %q, %v", tok, err)
	}
	for _, tok := range []string{"s72594_4483_1934", "s72595_4483_1935"} {
		if err := s.SaveSince(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		if got, err := s.LoadSince(t.Context()); err != nil || got != tok {
			t.Fatalf("load = %q, %v; want %q", got, err, tok)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "sub"))
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	if err := (FileTokenStore{Path: filepath.Join(dir, "sub", "matrix.since", "x")}).SaveSince(t.Context(), "t"); err == nil {
		t.Error("saved under a file")
	}
}

func TestConfig(t *testing.T) {
	c := DefaultConfig()
	if !c.AutoJoin {
		t.Error("auto_join defaults to off")
	}
	v := config.NewValidator("channels.matrix")
	c.Validate(v)
	if err := v.Err(); err != nil {
		t.Errorf("disabled default: %v", err)
	}
	c.Enabled = true
	c.BaseURL, c.UserID = "ftp://x", "zhiyin"
	v = config.NewValidator("channels.matrix")
	c.Validate(v)
	err := v.Err()
	for _, want := range []string{"base_url", "user_id", "access_token"} {
		if err == nil || !strings.Contains(err.Error(), "channels.matrix."+want) {
			t.Errorf("missing %s error in %v", want, err)
		}
	}
	for _, id := range []string{"@zhiyin:example.org", "@a.b_c=d-e/f:[::1]:8448"} {
		if !validUserID(id) {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range []string{"zhiyin:example.org", "@zhiyin", "@:example.org", "@zhiyin:", "@a b:x"} {
		if validUserID(id) {
			t.Errorf("%q accepted", id)
		}
	}
	c = DefaultConfig()
	c.BaseURL, c.UserID, c.AccessToken = "https://matrix.example.org/", "@zhiyin:example.org", config.NewSecret("x")
	if _, err := New(c, nil, nil); !errors.Is(err, ErrNoStore) {
		t.Errorf("New without store = %v", err)
	}
	c.SinceFile = filepath.Join(t.TempDir(), "matrix.since")
	a, err := New(c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() != "matrix" || a.base != "https://matrix.example.org" || a.store != (FileTokenStore{Path: c.SinceFile}) {
		t.Errorf("adapter = %+v", a)
	}
	if l := a.Limits(); l.MaxText != 30000 || l.Unit != channels.Runes || l.Global != (channels.Rate{N: 10, Per: time.Second}) || l.PerChat != (channels.Rate{}) {
		t.Errorf("limits = %+v", l)
	}
}

func TestStripReplyFallback(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"> <@a:x> hi\n\nreply", "reply"},
		{"> <@a:x> hi\n> more\n\nreply\nline 2", "reply\nline 2"},
		{"> <@a:x> hi\nreply", "reply"},
		{"> only a quote", "> only a quote"},
		{"plain", "plain"},
		{"", ""},
	} {
		if got := stripReplyFallback(tc.in); got != tc.want {
			t.Errorf("stripReplyFallback(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStripMentionPrefix(t *testing.T) {
	me := identity{UserID: "@zhiyin:hs.test", DisplayName: "Zhiyin Bot"}
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Zhiyin Bot: hi", "hi", true},
		{"zhiyin bot, hi", "hi", true},
		{"@zhiyin:hs.test hi", "hi", true},
		{"@zhiyin:hs.test: hi", "hi", true},
		{"zhiyin: hi", "hi", true},
		{"@Zhiyin Bot hi", "hi", true},
		{"zhiyin is great", "zhiyin is great", false},
		{"Zhiyin Bot", "", true},
		{"hi Zhiyin Bot", "hi Zhiyin Bot", false},
		{"知音: 你好", "知音: 你好", false},
	} {
		got, ok := stripMentionPrefix(tc.in, me)
		if got != tc.want || ok != tc.ok {
			t.Errorf("stripMentionPrefix(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestMarkdownHTML(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"**a** b", "<strong>a</strong> b"},
		{"x ** y", "x ** y"},
		{"****", "****"},
		{"<script>&", "&lt;script&gt;&amp;"},
		{"a\nb", "a<br>b"},
		{"**1** and **2**", "<strong>1</strong> and <strong>2</strong>"},
	} {
		if got := markdownHTML(tc.in); got != tc.want {
			t.Errorf("markdownHTML(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
