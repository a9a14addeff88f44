package channels_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/internal/store"
	"github.com/zhiyin/zhiyin/internal/store/storetest"
)

// fakeAdapter records sends; send decides each attempt's outcome.
type fakeAdapter struct {
	name   string
	limits channels.Limits
	idem   bool
	send   func(out *channels.Outgoing) error

	mu      sync.Mutex
	sent    []channels.Outgoing
	calls   int
	changed chan struct{}
	sink    channels.Sink
}

func newFake(name string) *fakeAdapter {
	return &fakeAdapter{name: name, changed: make(chan struct{})}
}

func (f *fakeAdapter) Name() string { return f.name }
func (f *fakeAdapter) Start(_ context.Context, s channels.Sink) error {
	f.mu.Lock()
	f.sink = s
	f.mu.Unlock()
	return nil
}
func (f *fakeAdapter) Stop(context.Context) error { return nil }
func (f *fakeAdapter) Limits() channels.Limits    { return f.limits }
func (f *fakeAdapter) IdempotentSend() bool       { return f.idem }
func (f *fakeAdapter) Send(_ context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	var err error
	if f.send != nil {
		err = f.send(out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if err == nil {
		f.sent = append(f.sent, *out)
	}
	close(f.changed)
	f.changed = make(chan struct{})
	return channels.Receipt{PlatformID: "p-" + out.Key}, err
}

func (f *fakeAdapter) Sink() channels.Sink {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sink
}

// waitSent waits until n parts were sent.
func (f *fakeAdapter) waitSent(t *testing.T, n int) []channels.Outgoing {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		f.mu.Lock()
		if len(f.sent) >= n {
			out := slices.Clone(f.sent)
			f.mu.Unlock()
			return out
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			f.mu.Lock()
			defer f.mu.Unlock()
			t.Fatalf("waited for %d sent parts, got %d: %+v", n, len(f.sent), f.sent)
		}
	}
}

func (f *fakeAdapter) sentTexts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, o := range f.sent {
		out = append(out, o.Text)
	}
	return out
}

// echo is a Dialogue that answers "echo: <text>" (or what reply says) in
// the turn's transaction, like dialogue.Engine does.
type echo struct {
	db    *store.DB
	fail  func(t *channels.Turn) error
	reply func(t *channels.Turn) []channels.Reply
	mu    sync.Mutex
	turns []string
}

func (e *echo) Respond(ctx context.Context, t *channels.Turn, commit func(*sql.Tx, *channels.Answer) error) error {
	if e.fail != nil {
		if err := e.fail(t); err != nil {
			return err
		}
	}
	replies := []channels.Reply{{Text: "echo: " + t.Text}}
	if e.reply != nil {
		replies = e.reply(t)
	}
	err := e.db.Write(ctx, func(tx *sql.Tx) error {
		return commit(tx, &channels.Answer{SessionID: "s-" + t.Conversation, Replies: replies})
	})
	if err == nil {
		e.mu.Lock()
		e.turns = append(e.turns, t.Text)
		e.mu.Unlock()
	}
	return err
}

func (e *echo) turnCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.turns)
}

type rig struct {
	t    *testing.T
	path string
	keys *session.Keyring
	db   *store.DB
	hub  *channels.Hub
	dlg  *echo
}

func testConfig() channels.Config {
	cfg := channels.DefaultConfig()
	cfg.Outbox.BackoffMin = 10 * time.Millisecond
	cfg.Outbox.BackoffMax = 50 * time.Millisecond
	cfg.Outbox.MaxAttempts = 4
	cfg.Workers = 8
	cfg.Queue = 64
	return cfg
}

// newRig opens (or reopens) the database in dir and starts a hub with the
// adapters.
func newRig(t *testing.T, dir string, cfg channels.Config, dlg *echo, adapters ...*fakeAdapter) *rig {
	t.Helper()
	path := filepath.Join(dir, "zhiyin.db")
	scfg := storetest.Fast()
	scfg.Path = path
	db, err := store.Open(context.Background(), scfg, nil, nil, store.Options{}, store.MigrationSet{Component: channels.MigrationComponent, FS: channels.Migrations()})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := session.LoadKeyring(filepath.Join(dir, "keys"), true)
	if err != nil {
		t.Fatal(err)
	}
	if dlg == nil {
		dlg = &echo{}
	}
	dlg.db = db
	h, err := channels.New(cfg, channels.Deps{DB: db, Dialogue: dlg, Sealer: keys})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range adapters {
		if err := h.Register(a, channels.Common{Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, path: path, keys: keys, db: db, hub: h, dlg: dlg}
	t.Cleanup(r.close)
	return r
}

func (r *rig) close() {
	r.hub.Stop(context.Background())
	r.db.Close()
}

func msg(id, conv, text string) *channels.Message {
	return &channels.Message{ID: id, Conversation: conv, ConversationType: channels.Direct, Sender: channels.Sender{ID: "u-" + conv, Name: "客户"}, Text: text}
}

func (r *rig) count(q string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.db.Read().QueryRow(q, args...).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

// waitCount polls a count query until it equals want (state changes are
// committed by other goroutines).
func (r *rig) waitCount(want int, q string, args ...any) {
	r.t.Helper()
	for i := 0; i < 2000; i++ {
		if r.count(q, args...) == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("%s: got %d, want %d", q, r.count(q, args...), want)
}

func TestDeliverAnswersOnceAndDeduplicates(t *testing.T) {
	a := newFake("fake")
	r := newRig(t, t.TempDir(), testConfig(), nil, a)
	ctx := context.Background()
	for range 3 { // the platform redelivers twice
		if err := a.Sink().Deliver(ctx, msg("m1", "c1", "你好")); err != nil {
			t.Fatal(err)
		}
	}
	sent := a.waitSent(t, 1)
	r.waitCount(1, `SELECT count(*) FROM channel_outbox WHERE state = 'sent'`)
	if got := r.count(`SELECT count(*) FROM channel_inbox`); got != 1 {
		t.Fatalf("inbox rows = %d, want 1", got)
	}
	if sent[0].Text != "echo: 你好" || sent[0].Conversation != "c1" || sent[0].ReplyTo != "m1" || sent[0].Recipient != "u-c1" || sent[0].Attempt != 1 {
		t.Fatalf("sent %+v", sent[0])
	}
	if r.dlg.turnCount() != 1 {
		t.Fatalf("turns = %d, want 1", r.dlg.turnCount())
	}
	// Answered rows keep no text.
	if got := r.count(`SELECT count(*) FROM channel_inbox WHERE body IS NOT NULL OR state != 'done'`); got != 0 {
		t.Fatalf("%d inbox rows still hold text or are not done", got)
	}
	if got := r.count(`SELECT count(*) FROM channel_outbox WHERE body IS NOT NULL`); got != 0 {
		t.Fatalf("%d sent rows still hold text", got)
	}
	// A later redelivery is still a duplicate.
	if err := a.Sink().Deliver(ctx, msg("m1", "c1", "你好")); err != nil {
		t.Fatal(err)
	}
	if r.dlg.turnCount() != 1 {
		t.Fatal("a redelivery after the answer ran a second turn")
	}
}

func TestTextIsEncryptedAtRest(t *testing.T) {
	a := newFake("fake")
	a.send = func(*channels.Outgoing) error { return errors.New("platform down") }
	cfg := testConfig()
	cfg.Outbox.BackoffMin, cfg.Outbox.BackoffMax = time.Hour, time.Hour
	r := newRig(t, t.TempDir(), cfg, &echo{fail: func(*channels.Turn) error { return errors.New("nlu down") }}, a)
	if err := a.Sink().Deliver(context.Background(), msg("m1", "c1", "我的手机号是13800138000")); err != nil {
		t.Fatal(err)
	}
	var body []byte
	if err := r.db.Read().QueryRow(`SELECT body FROM channel_inbox`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "13800138000") || len(body) == 0 {
		t.Fatalf("inbox body is not sealed: %q", body)
	}
}

func TestGroupPolicy(t *testing.T) {
	mention, all := newFake("mention"), newFake("all")
	dir := t.TempDir()
	cfg := testConfig()
	path := filepath.Join(dir, "zhiyin.db")
	scfg := storetest.Fast()
	scfg.Path = path
	db, err := store.Open(context.Background(), scfg, nil, nil, store.Options{}, store.MigrationSet{Component: channels.MigrationComponent, FS: channels.Migrations()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, _ := session.LoadKeyring(filepath.Join(dir, "keys"), true)
	h, err := channels.New(cfg, channels.Deps{DB: db, Dialogue: &echo{db: db}, Sealer: keys})
	if err != nil {
		t.Fatal(err)
	}
	h.Register(mention, channels.Common{Enabled: true})
	h.Register(all, channels.Common{Enabled: true, Groups: "all"})
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Stop(context.Background())
	ctx := context.Background()
	g := func(id string, mentioned bool) *channels.Message {
		m := msg(id, "room", "查订单")
		m.ConversationType = channels.Group
		m.Mentioned = mentioned
		return m
	}
	mention.Sink().Deliver(ctx, g("1", false))
	mention.Sink().Deliver(ctx, g("2", true))
	all.Sink().Deliver(ctx, g("3", false))
	bot := msg("4", "c", "I am a bot")
	bot.Sender.IsBot = true
	all.Sink().Deliver(ctx, bot)
	mention.waitSent(t, 1)
	all.waitSent(t, 1)
	var n int
	db.Read().QueryRow(`SELECT count(*) FROM channel_inbox`).Scan(&n)
	if n != 2 {
		t.Fatalf("inbox rows = %d, want 2 (the unmentioned group message and the bot's are ignored)", n)
	}
}

func TestInvalidMessages(t *testing.T) {
	a := newFake("fake")
	newRig(t, t.TempDir(), testConfig(), nil, a)
	ctx := context.Background()
	for name, m := range map[string]*channels.Message{
		"no id":           {Conversation: "c", Sender: channels.Sender{ID: "u"}, Text: "x"},
		"no conversation": {ID: "1", Sender: channels.Sender{ID: "u"}, Text: "x"},
		"no sender":       {ID: "1", Conversation: "c", Text: "x"},
		"bad type":        {ID: "1", Conversation: "c", ConversationType: "mob", Sender: channels.Sender{ID: "u"}, Text: "x"},
		"long id":         {ID: strings.Repeat("9", 600), Conversation: "c", Sender: channels.Sender{ID: "u"}, Text: "x"},
		"bad utf8":        {ID: "1", Conversation: "c", Sender: channels.Sender{ID: "u"}, Text: "\xff"},
		"huge text":       {ID: "1", Conversation: "c", Sender: channels.Sender{ID: "u"}, Text: strings.Repeat("长", 30000)},
	} {
		if err := a.Sink().Deliver(ctx, m); !errors.Is(err, channels.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestDialogueRefusalAndMedia(t *testing.T) {
	a := newFake("fake")
	dlg := &echo{fail: func(t *channels.Turn) error {
		if t.Text == "bad" {
			return fmt.Errorf("%w: too long", channels.ErrInvalid)
		}
		return nil
	}}
	cfg := testConfig()
	r := newRig(t, t.TempDir(), cfg, dlg, a)
	ctx := context.Background()
	a.Sink().Deliver(ctx, msg("1", "c1", "bad"))
	voice := msg("2", "c2", "")
	voice.Media = []channels.Media{{Kind: channels.Voice, Key: "v1", Duration: 3 * time.Second}}
	a.Sink().Deliver(ctx, voice)
	img := msg("3", "c3", "")
	img.Media = []channels.Media{{Kind: channels.Image, Key: "i1"}}
	a.Sink().Deliver(ctx, img)
	a.waitSent(t, 3)
	got := a.sentTexts()
	slices.Sort(got)
	want := []string{cfg.Texts.Invalid, cfg.Texts.VoiceUnavailable, cfg.Texts.MediaUnsupported}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("sent %q, want %q", got, want)
	}
	r.waitCount(1, `SELECT count(*) FROM channel_inbox WHERE state = 'rejected'`)
}

// A crash after the inbox commit and before the answer: the next start
// answers exactly once.
func TestRestartAnswersCommittedMessagesOnce(t *testing.T) {
	dir := t.TempDir()
	a := newFake("fake")
	down := &echo{fail: func(*channels.Turn) error { return errors.New("nlu not loaded") }}
	r := newRig(t, dir, testConfig(), down, a)
	for i := range 5 {
		if err := a.Sink().Deliver(context.Background(), msg(fmt.Sprint(i), "c1", fmt.Sprint("第", i, "条"))); err != nil {
			t.Fatal(err)
		}
	}
	r.close()

	b := newFake("fake")
	r2 := newRig(t, dir, testConfig(), nil, b)
	sent := b.waitSent(t, 5)
	r2.waitCount(5, `SELECT count(*) FROM channel_outbox WHERE state = 'sent'`)
	for i, o := range sent {
		if want := fmt.Sprint("echo: 第", i, "条"); o.Text != want {
			t.Fatalf("part %d = %q, want %q (order per conversation)", i, o.Text, want)
		}
	}
	if r2.dlg.turnCount() != 5 {
		t.Fatalf("turns = %d, want 5", r2.dlg.turnCount())
	}
	// A redelivery of the same messages after the restart is a duplicate.
	for i := range 5 {
		b.Sink().Deliver(context.Background(), msg(fmt.Sprint(i), "c1", "again"))
	}
	if r2.dlg.turnCount() != 5 || len(b.sentTexts()) != 5 {
		t.Fatal("redelivery after restart answered again")
	}
}

// A crash while sending: a platform that deduplicates gets the part again
// with the same key; one that does not never gets it twice.
func TestRestartWhileSending(t *testing.T) {
	for _, idem := range []bool{false, true} {
		t.Run(fmt.Sprint("idempotent=", idem), func(t *testing.T) {
			dir := t.TempDir()
			a := newFake("fake")
			a.idem = idem
			block := make(chan struct{})
			entered := make(chan string, 1)
			a.send = func(out *channels.Outgoing) error {
				entered <- out.Key
				<-block // the process "dies" during the send
				return errors.New("killed")
			}
			r := newRig(t, dir, testConfig(), nil, a)
			a.Sink().Deliver(context.Background(), msg("1", "c1", "你好"))
			key := <-entered
			if !idem {
				r.waitCount(1, `SELECT count(*) FROM channel_outbox WHERE state = 'sending'`)
			}
			// Simulate the crash: the row's state is what the dead process
			// left (mark it sending for the idempotent case too, the worst
			// case), and the database is closed under the send.
			r.db.Write(context.Background(), func(tx *sql.Tx) error {
				_, err := tx.Exec(`UPDATE channel_outbox SET state = 'sending'`)
				return err
			})
			close(block)
			r.close()

			b := newFake("fake")
			b.idem = idem
			r2 := newRig(t, dir, testConfig(), nil, b)
			if idem {
				sent := b.waitSent(t, 1)
				if sent[0].Key != key {
					t.Fatalf("resent with key %q, want the same key %q", sent[0].Key, key)
				}
				return
			}
			r2.waitCount(1, `SELECT count(*) FROM channel_outbox WHERE state = 'dead'`)
			if n := len(b.sentTexts()); n != 0 {
				t.Fatalf("a part whose outcome was unknown was sent again (%d)", n)
			}
			rows, err := channels.ListOutbox(context.Background(), r2.db.Read(), r2.keys, channels.OutboxFilter{State: "dead"})
			if err != nil || len(rows) != 1 || rows[0].Text != "echo: 你好" || !strings.Contains(rows[0].LastError, "outbox retry") {
				t.Fatalf("dead letters %+v, %v", rows, err)
			}
			// The operator retries it: sent once.
			if _, err := channels.RetryOutbox(context.Background(), r2.db, rows[0].ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			b.waitSent(t, 1)
			r2.waitCount(1, `SELECT count(*) FROM channel_outbox WHERE state = 'retried'`)
		})
	}
}

func TestSendRetriesAndDeadLetters(t *testing.T) {
	a := newFake("fake")
	var mu sync.Mutex
	tries := map[string]int{}
	a.send = func(out *channels.Outgoing) error {
		mu.Lock()
		defer mu.Unlock()
		tries[out.Text]++
		switch {
		case out.Text == "echo: 429" && tries[out.Text] == 1:
			return channels.RetryAfter(30*time.Millisecond, errors.New("429"))
		case out.Text == "echo: flaky" && tries[out.Text] < 3:
			return errors.New("503")
		case out.Text == "echo: gone":
			return channels.Permanent(errors.New("chat not found"))
		case out.Text == "echo: down":
			return errors.New("connection refused")
		}
		return nil
	}
	cfg := testConfig()
	r := newRig(t, t.TempDir(), cfg, nil, a)
	for i, text := range []string{"429", "flaky", "gone", "down"} {
		a.Sink().Deliver(context.Background(), msg(fmt.Sprint(i), fmt.Sprint("c", i), text))
	}
	a.waitSent(t, 2)
	r.waitCount(2, `SELECT count(*) FROM channel_outbox WHERE state = 'dead'`)
	r.waitCount(2, `SELECT count(*) FROM channel_outbox WHERE state = 'sent'`)
	mu.Lock()
	defer mu.Unlock()
	if tries["echo: gone"] != 1 {
		t.Errorf("a permanent failure was tried %d times", tries["echo: gone"])
	}
	if tries["echo: down"] != cfg.Outbox.MaxAttempts {
		t.Errorf("a failing part was tried %d times, want max_attempts %d", tries["echo: down"], cfg.Outbox.MaxAttempts)
	}
	if tries["echo: flaky"] != 3 || tries["echo: 429"] != 2 {
		t.Errorf("tries %v", tries)
	}
}

func TestSplitAndOrder(t *testing.T) {
	a := newFake("fake")
	a.limits = channels.Limits{MaxText: 10}
	long := "第一句话很长很长。第二句话也很长。第三句。"
	r := newRig(t, t.TempDir(), testConfig(), &echo{reply: func(t *channels.Turn) []channels.Reply {
		return []channels.Reply{{Text: long}, {Text: "再见"}}
	}}, a)
	a.Sink().Deliver(context.Background(), msg("1", "c1", "x"))
	sent := a.waitSent(t, 4)
	var texts []string
	for _, o := range sent {
		texts = append(texts, o.Text)
	}
	want := []string{"第一句话很长很长。", "第二句话也很长。", "第三句。", "再见"}
	if !slices.Equal(texts, want) {
		t.Fatalf("parts %q, want %q", texts, want)
	}
	if sent[0].Part != 1 || sent[0].Parts != 3 || sent[3].Parts != 1 {
		t.Fatalf("numbering %+v", sent)
	}
	_ = r
}

// Sends over a platform's rate wait in the queue; they are not dropped.
func TestRateLimitQueues(t *testing.T) {
	a := newFake("fake")
	a.limits = channels.Limits{PerChat: channels.Rate{N: 1, Per: time.Hour}}
	r := newRig(t, t.TempDir(), testConfig(), &echo{reply: func(*channels.Turn) []channels.Reply {
		return []channels.Reply{{Text: "一"}, {Text: "二"}}
	}}, a)
	a.Sink().Deliver(context.Background(), msg("1", "c1", "x"))
	a.Sink().Deliver(context.Background(), msg("2", "c2", "x"))
	a.waitSent(t, 2) // one per conversation
	r.waitCount(2, `SELECT count(*) FROM channel_outbox WHERE state = 'sent'`)
	if got := r.count(`SELECT count(*) FROM channel_outbox WHERE state = 'queued'`); got != 2 {
		t.Fatalf("queued = %d, want 2 (held back by the per-chat rate)", got)
	}
	for _, o := range a.sent {
		if o.Text != "一" {
			t.Fatalf("sent %q before the first part", o.Text)
		}
	}
}

// A platform down for long: the parts wait on disk, memory holds at most
// the window.
func TestOutboxWindowBoundsMemory(t *testing.T) {
	a := newFake("fake")
	a.send = func(*channels.Outgoing) error { return errors.New("down") }
	cfg := testConfig()
	cfg.Outbox.Window = 16
	cfg.Outbox.BackoffMin, cfg.Outbox.BackoffMax = time.Hour, time.Hour
	r := newRig(t, t.TempDir(), cfg, nil, a)
	for i := range 200 {
		if err := a.Sink().Deliver(context.Background(), msg(fmt.Sprint(i), fmt.Sprint("c", i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	r.waitCount(200, `SELECT count(*) FROM channel_outbox WHERE state = 'queued'`)
	for _, s := range r.hub.Statuses() {
		if s.Backlog > 16 {
			t.Fatalf("backlog in memory %d > window 16", s.Backlog)
		}
	}
}

func TestPruneAndReencrypt(t *testing.T) {
	a := newFake("fake")
	r := newRig(t, t.TempDir(), testConfig(), nil, a)
	a.Sink().Deliver(context.Background(), msg("1", "c1", "x"))
	a.waitSent(t, 1)
	r.waitCount(1, `SELECT count(*) FROM channel_outbox WHERE state = 'sent'`)
	in, out, err := channels.Prune(context.Background(), r.db, time.Hour, time.Now().Add(2*time.Hour))
	if err != nil || in != 1 || out != 1 {
		t.Fatalf("prune = %d, %d, %v", in, out, err)
	}
	ids, err := channels.KeyIDsInUse(context.Background(), r.db.Read())
	if err != nil || len(ids) != 0 {
		t.Fatalf("keys in use %v %v", ids, err)
	}
}
