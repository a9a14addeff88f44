package dialogue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/dialogue/domain"
	"github.com/zhiyin/zhiyin/dialogue/lanes"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/dialogue/skill"
	"github.com/zhiyin/zhiyin/internal/store"
	"github.com/zhiyin/zhiyin/internal/store/storetest"
)

// scriptedParser returns the parse the transcript wrote next to the text, so
// the scenarios test the policy, not a model.
type scriptedParser struct {
	mu     sync.Mutex
	parses map[string]*nlu.Result
}

func (p *scriptedParser) CheckText(text string) error {
	if !utf8.ValidString(text) {
		return nlu.ErrInvalidUTF8
	}
	if strings.TrimSpace(text) == "" {
		return nlu.ErrEmpty
	}
	if len([]rune(text)) > 200 {
		return nlu.ErrTooLong
	}
	return nil
}

func (p *scriptedParser) Parse(_ context.Context, text string) (*nlu.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.parses[text]; ok {
		c := *r
		return &c, nil
	}
	return &nlu.Result{Text: text, Intent: nlu.Intent{Name: nlu.FallbackIntent, Confidence: 0.1}}, nil
}

func (p *scriptedParser) set(text string, r *nlu.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.parses == nil {
		p.parses = map[string]*nlu.Result{}
	}
	p.parses[text] = r
}

// fakeOrders stands in for the order_lookup skill; fail makes it time out
// or fail.
type fakeOrders struct {
	mu    sync.Mutex
	fail  string // "", "timeout", "error"
	calls int
	// block, when set, holds Handle until it is closed (lane tests);
	// started then receives a value as each call begins.
	block   chan struct{}
	started chan struct{}
}

func (f *fakeOrders) Name() string                      { return "order_lookup" }
func (f *fakeOrders) CanHandle(req *skill.Request) bool { return true }

func (f *fakeOrders) Handle(ctx context.Context, req *skill.Request) (*skill.Response, error) {
	f.mu.Lock()
	f.calls++
	fail, block, started := f.fail, f.block, f.started
	f.mu.Unlock()
	if block != nil {
		started <- struct{}{}
		<-block
	}
	switch fail {
	case "timeout":
		<-ctx.Done()
		return nil, ctx.Err()
	case "error":
		return nil, errors.New("order system answered 500")
	}
	switch req.Purpose {
	case skill.Validate:
		if req.Value == "20241234567899" {
			no := false
			return &skill.Response{Valid: &no, Replies: []skill.Reply{{Text: "没有找到订单" + req.Value + "。"}}}, nil
		}
		return &skill.Response{}, nil
	case skill.Submit:
		return &skill.Response{Replies: []skill.Reply{{Text: "已为订单" + req.Slots["order_id"] + "登记退货。"}}}, nil
	}
	if no := req.Slots["tracking_no"]; no != "" {
		return &skill.Response{Replies: []skill.Reply{{Text: "包裹" + no + "运输中，已到达杭州转运中心。"}}}, nil
	}
	return &skill.Response{}, nil
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type harness struct {
	e      *Engine
	parser *scriptedParser
	orders *fakeOrders
	clock  *clock
	db     *store.DB
	store  *session.Store
	keys   *session.Keyring
	dir    string
}

func newHarness(t testing.TB, lc lanes.Config) *harness {
	return newHarnessWith(t, lc, store.DefaultConfig())
}

func newHarnessWith(t testing.TB, lc lanes.Config, scfg store.Config) *harness {
	t.Helper()
	dir := t.TempDir()
	db := storetest.Open(t, scfg, store.MigrationSet{Component: session.MigrationComponent, FS: session.Migrations()})
	keys, err := session.LoadKeyring(filepath.Join(dir, "keys", "sessions.keys"), true)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	st := session.New(db, keys, session.Options{HistoryLimit: 50, Now: clk.Now})
	dom, err := domain.Load("testdata/domain")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{parser: &scriptedParser{}, orders: &fakeOrders{}, clock: clk, db: db, store: st, keys: keys, dir: dir}
	reg := skill.NewRegistry()
	if err := reg.Register(h.orders); err != nil {
		t.Fatal(err)
	}
	pool, err := lanes.NewPool(lc, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cfg := DefaultConfig()
	cfg.SkillTimeout = 50 * time.Millisecond
	h.e, err = New(cfg, dom, Deps{DB: db, Store: st, Skills: reg, Pool: pool, Metrics: prometheus.NewRegistry(),
		NLU: func() Parser { return h.parser }, Pick: func(int) int { return 0 }, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// parseLine reads "TEXT | INTENT [CONF] | type=value ...".
func parseUserLine(line string) (string, *nlu.Result, error) {
	parts := strings.Split(line, "|")
	if len(parts) < 2 {
		return "", nil, fmt.Errorf("user line needs TEXT | INTENT: %q", line)
	}
	text := strings.TrimSpace(parts[0])
	res := &nlu.Result{Text: text, Intent: nlu.Intent{Confidence: 1}}
	f := strings.Fields(parts[1])
	res.Intent.Name = f[0]
	if len(f) > 1 {
		if _, err := fmt.Sscanf(f[1], "%g", &res.Intent.Confidence); err != nil {
			return "", nil, fmt.Errorf("confidence %q: %v", f[1], err)
		}
	}
	if len(parts) > 2 {
		for _, kv := range strings.Fields(parts[2]) {
			typ, val, ok := strings.Cut(kv, "=")
			if !ok {
				return "", nil, fmt.Errorf("entity %q: write type=value", kv)
			}
			start := strings.Index(text, val)
			res.Entities = append(res.Entities, nlu.Entity{Type: typ, Value: val, Normalized: val, Start: start, End: start + len([]rune(val)), Extractor: "script", Confidence: 1})
		}
	}
	return text, res, nil
}

// runScenario plays a transcript: user lines are sent, the lines after each
// check the answer.
func runScenario(t *testing.T, h *harness, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	var res *Result
	var replies []Reply
	var prevSession string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		at := fmt.Sprintf("%s:%d", filepath.Base(path), n)
		cmd, arg, _ := strings.Cut(line, ":")
		arg = strings.TrimSpace(arg)
		switch cmd {
		case "user":
			if len(replies) > 0 {
				t.Fatalf("%s: replies of the previous turn not checked: %q", at, texts(replies))
			}
			text, parse, err := parseUserLine(arg)
			if err != nil {
				t.Fatalf("%s: %v", at, err)
			}
			h.parser.set(text, parse)
			if res != nil {
				prevSession = res.SessionID
			}
			res, err = h.e.Handle(ctx, Message{User: "alice", Client: "key:test", Text: text})
			if err != nil {
				t.Fatalf("%s: Handle(%q): %v", at, text, err)
			}
			replies = res.Replies
			h.clock.advance(time.Second)
		case "bot":
			if arg == "-" {
				if len(replies) != 0 {
					t.Fatalf("%s: want no reply, got %q", at, texts(replies))
				}
				continue
			}
			if len(replies) == 0 {
				t.Fatalf("%s: want a reply containing %q, got none (all: %q)", at, arg, texts(res.Replies))
			}
			if !strings.Contains(replies[0].Text, arg) {
				t.Fatalf("%s: want a reply containing %q, got %q (all: %q)", at, arg, replies[0].Text, texts(res.Replies))
			}
			replies = replies[1:]
		case "slots":
			for _, kv := range strings.Fields(arg) {
				k, v, _ := strings.Cut(kv, "=")
				if got := res.Slots[k]; got != v {
					t.Fatalf("%s: slot %s = %q, want %q (slots %v)", at, k, got, v, res.Slots)
				}
			}
		case "stack":
			want := strings.Fields(arg)
			if arg == "-" {
				want = nil
			}
			if strings.Join(res.Stack, " ") != strings.Join(want, " ") {
				t.Fatalf("%s: stack %v, want %v", at, res.Stack, want)
			}
		case "handoff":
			if fmt.Sprint(res.Handoff) != arg {
				t.Fatalf("%s: handoff %v, want %s", at, res.Handoff, arg)
			}
		case "lane":
			if res.Lane != arg {
				t.Fatalf("%s: lane %s, want %s", at, res.Lane, arg)
			}
		case "new-session":
			if !res.NewSession || res.SessionID == prevSession {
				t.Fatalf("%s: want a new session, got %s (previous %s)", at, res.SessionID, prevSession)
			}
		case "resumed":
			v, err := h.e.View(ctx, res.SessionID, 0)
			if err != nil || v.ResumedFrom == "" {
				t.Fatalf("%s: want a resumed session: %+v %v", at, v, err)
			}
		case "advance":
			if len(replies) > 0 {
				t.Fatalf("%s: replies not checked: %q", at, texts(replies))
			}
			d, err := time.ParseDuration(arg)
			if err != nil {
				t.Fatalf("%s: %v", at, err)
			}
			h.clock.advance(d)
		case "release":
			if len(replies) > 0 {
				t.Fatalf("%s: replies not checked: %q", at, texts(replies))
			}
			if _, err := h.e.ChangeHandoff(ctx, res.SessionID, ActionRelease, "agent7"); err != nil {
				t.Fatalf("%s: release: %v", at, err)
			}
		case "fail-skill":
			h.orders.mu.Lock()
			h.orders.fail = arg
			if arg == "off" {
				h.orders.fail = ""
			}
			h.orders.mu.Unlock()
		default:
			t.Fatalf("%s: unknown transcript line %q", at, line)
		}
	}
	if len(replies) > 0 {
		t.Fatalf("%s: replies not checked: %q", path, texts(replies))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func texts(rs []Reply) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Text
	}
	return out
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			runScenario(t, newHarness(t, lanes.DefaultConfig()), f)
		})
	}
}
