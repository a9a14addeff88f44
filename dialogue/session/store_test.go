package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewID()
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) || seen[id] {
			t.Fatalf("NewID = %q", id)
		}
		seen[id] = true
	}
}

func TestSaveGetRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{}, "normal")
	sess := newSession("u1", "c1", `{"slots":{"phone":"13800138000"}}`)
	turn := &Turn{User: "我要查订单", Replies: []string{"请提供订单号", "谢谢"}, Intent: "order_status", Confidence: 0.93, Lane: "normal"}
	e.mustSave(t, sess, turn)

	if sess.ID == "" || sess.Version != 1 || sess.Turns != 1 || sess.Status != Active {
		t.Fatalf("after insert: %+v", sess)
	}
	if !sess.CreatedAt.Equal(e.clk.Now()) || !sess.UpdatedAt.Equal(e.clk.Now()) {
		t.Errorf("times %v %v, want %v", sess.CreatedAt, sess.UpdatedAt, e.clk.Now())
	}
	if turn.SessionID != sess.ID || turn.Seq != 1 || !turn.At.Equal(e.clk.Now()) {
		t.Errorf("turn after save: %+v", turn)
	}
	got, err := e.st.Get(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sess) {
		t.Fatalf("Get =\n%+v\nwant\n%+v", got, sess)
	}

	// Update: state, status, hand-off and a second turn.
	e.clk.Add(time.Minute)
	sess.State = []byte(`{"slots":{}}`)
	sess.Handoff = HandoffWaiting
	turn2 := &Turn{User: "转人工", Replies: nil, Intent: "human", At: e.clk.Now().Add(-time.Second)}
	e.mustSave(t, sess, turn2)
	if sess.Version != 2 || sess.Turns != 2 || turn2.Seq != 2 || !sess.UpdatedAt.Equal(e.clk.Now()) {
		t.Fatalf("after update: %+v / %+v", sess, turn2)
	}
	got, err = e.st.Get(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sess) {
		t.Fatalf("Get after update =\n%+v\nwant\n%+v", got, sess)
	}
	hist, err := e.st.History(ctx, sess.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Turn{*turn, *turn2}; !reflect.DeepEqual(hist, want) {
		t.Fatalf("History =\n%+v\nwant\n%+v", hist, want)
	}
	hist, err = e.st.History(ctx, sess.ID, 1)
	if err != nil || len(hist) != 1 || hist[0].Seq != 2 {
		t.Fatalf("History(1) = %+v, %v", hist, err)
	}
	if hist, err := e.st.History(ctx, "nope", 0); err != nil || len(hist) != 0 {
		t.Fatalf("History of unknown = %v, %v", hist, err)
	}
	if _, err := e.st.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get unknown: %v", err)
	}

	// A save without a turn keeps the turn count.
	e.mustSave(t, sess, nil)
	if sess.Version != 3 || sess.Turns != 2 {
		t.Fatalf("save without turn: %+v", sess)
	}
	if s, tu, err := e.st.Count(ctx); err != nil || s != 1 || tu != 2 {
		t.Fatalf("Count = %d %d %v", s, tu, err)
	}
}

func TestSaveRefusals(t *testing.T) {
	e := newEnv(t, Options{}, "normal")
	sess := newSession("u1", "c1", `{}`)
	e.mustSave(t, sess, &Turn{User: "hi"})

	t.Run("stale version", func(t *testing.T) {
		a, b := *sess, *sess
		e.mustSave(t, &a, &Turn{User: "from a"})
		before := b
		turn := &Turn{User: "from b"}
		if err := e.save(&b, turn); !errors.Is(err, ErrConflict) {
			t.Fatalf("stale save: %v, want ErrConflict", err)
		}
		if !reflect.DeepEqual(b, before) || turn.Seq != 0 || turn.SessionID != "" {
			t.Fatalf("a failed save changed its arguments: %+v %+v", b, turn)
		}
		*sess = a
	})
	t.Run("insert existing id", func(t *testing.T) {
		dup := newSession("u1", "c1", `{}`)
		dup.ID = sess.ID
		if err := e.save(dup, nil); !errors.Is(err, ErrConflict) {
			t.Fatalf("insert of an existing id: %v, want ErrConflict", err)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		gone := newSession("u2", "c2", `{}`)
		e.mustSave(t, gone, nil)
		if _, err := e.st.DeleteUser(context.Background(), "u2"); err != nil {
			t.Fatal(err)
		}
		if err := e.save(gone, &Turn{User: "x"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("save of a deleted session: %v, want ErrNotFound", err)
		}
	})
	t.Run("bad status", func(t *testing.T) {
		bad := newSession("u1", "c1", `{}`)
		bad.Status = "paused"
		if err := e.save(bad, nil); err == nil {
			t.Fatal("status paused accepted")
		}
		bad.Status, bad.Handoff = Active, "maybe"
		if err := e.save(bad, nil); err == nil {
			t.Fatal("hand-off maybe accepted")
		}
	})
}

func TestHistoryTrim(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{HistoryLimit: 3}, "normal")
	sess := newSession("u1", "c1", `{}`)
	for i := 1; i <= 7; i++ {
		e.mustSave(t, sess, &Turn{User: fmt.Sprintf("turn %d", i)})
	}
	hist, err := e.st.History(ctx, sess.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int
	for _, h := range hist {
		seqs = append(seqs, h.Seq)
		if h.User != fmt.Sprintf("turn %d", h.Seq) {
			t.Errorf("turn %d holds %q", h.Seq, h.User)
		}
	}
	if !reflect.DeepEqual(seqs, []int{5, 6, 7}) {
		t.Fatalf("kept %v, want [5 6 7]", seqs)
	}
	if sess.Turns != 7 {
		t.Fatalf("Turns = %d, want 7 (all turns ever taken)", sess.Turns)
	}
	if _, n, _ := e.st.Count(ctx); n != 3 {
		t.Fatalf("turn rows = %d, want 3", n)
	}
}

func TestLatestAndExpire(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{}, "normal")
	k := Key{Channel: "web", Conversation: "c1", User: "u1"}
	if _, err := e.st.Latest(ctx, k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Latest of nothing: %v", err)
	}

	first := &Session{Key: k, State: []byte(`{"n":1}`)}
	e.mustSave(t, first, &Turn{User: "a"})
	e.clk.Add(10 * time.Minute)
	other := &Session{Key: Key{Channel: "web", Conversation: "c2", User: "u1"}}
	e.mustSave(t, other, nil)

	got, err := e.st.Latest(ctx, k)
	if err != nil || got.ID != first.ID {
		t.Fatalf("Latest = %v, %v", got, err)
	}
	if _, err := e.st.LatestExpired(ctx, k, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LatestExpired with none expired: %v", err)
	}

	// The engine expires the idle session; UpdatedAt keeps the last activity.
	e.clk.Add(time.Hour)
	if err := e.db.Write(ctx, func(tx *sql.Tx) error { return e.st.ExpireTx(tx, first.ID) }); err != nil {
		t.Fatal(err)
	}
	exp, err := e.st.Get(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Status != Expired || exp.Version != first.Version+1 || !exp.UpdatedAt.Equal(first.UpdatedAt) {
		t.Fatalf("expired session: %+v", exp)
	}
	if err := e.save(first, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("save of the pre-expiry copy: %v, want ErrConflict", err)
	}
	// Expiring again, or an unknown id.
	if err := e.db.Write(ctx, func(tx *sql.Tx) error { return e.st.ExpireTx(tx, first.ID) }); err != nil {
		t.Fatalf("second expiry: %v", err)
	}
	if err := e.db.Write(ctx, func(tx *sql.Tx) error { return e.st.ExpireTx(tx, "nope") }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expire unknown: %v", err)
	}

	// A new session resumes it.
	resumed := &Session{Key: k, ResumedFrom: exp.ID, State: exp.State}
	e.mustSave(t, resumed, nil)

	tests := []struct {
		name  string
		since time.Time
		want  string
	}{
		{"within window", exp.UpdatedAt.Add(-time.Minute), exp.ID},
		{"at the boundary", exp.UpdatedAt, exp.ID},
		{"window passed", exp.UpdatedAt.Add(time.Millisecond), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.st.LatestExpired(ctx, k, tt.since)
			if tt.want == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("got %v, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil || got.ID != tt.want || string(got.State) != `{"n":1}` {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
	got, err = e.st.Latest(ctx, k)
	if err != nil || got.ID != resumed.ID || got.ResumedFrom != exp.ID {
		t.Fatalf("Latest after resume = %+v, %v", got, err)
	}
}

func TestHandoffs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{}, "normal")
	put := func(h *HandoffEntry) error {
		return e.db.Write(ctx, func(tx *sql.Tx) error { return e.st.PutHandoffTx(tx, h) })
	}
	var ids []string
	for i := range 3 {
		s := newSession(fmt.Sprintf("u%d", i), "c", `{}`)
		e.mustSave(t, s, nil)
		ids = append(ids, s.ID)
		e.clk.Add(time.Second)
		if err := put(&HandoffEntry{SessionID: s.ID, Status: HandoffStatusWaiting, Reason: "asked", Summary: []byte(`{"intents":["refund"]}`)}); err != nil {
			t.Fatal(err)
		}
	}
	created := e.clk.Now() // of ids[2]
	e.clk.Add(time.Minute)
	h := &HandoffEntry{SessionID: ids[2], Status: HandoffStatusAgent, Agent: "alice", Reason: "asked", Summary: []byte(`{"intents":["refund","human"]}`)}
	if err := put(h); err != nil {
		t.Fatal(err)
	}
	if !h.CreatedAt.Equal(created) || !h.UpdatedAt.Equal(e.clk.Now()) {
		t.Errorf("upsert times: created %v (want %v), updated %v", h.CreatedAt, created, h.UpdatedAt)
	}
	if err := put(&HandoffEntry{SessionID: ids[0], Status: HandoffStatusReleased}); err != nil {
		t.Fatal(err)
	}

	got, err := e.st.Handoff(ctx, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	want := *h
	want.Key = Key{Channel: "web", Conversation: "c", User: "u2"}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("Handoff =\n%+v\nwant\n%+v", *got, want)
	}
	if _, err := e.st.Handoff(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Handoff unknown: %v", err)
	}

	tests := []struct {
		status string
		limit  int
		want   []string
	}{
		{"", 0, []string{ids[1], ids[2]}},
		{HandoffStatusWaiting, 0, []string{ids[1]}},
		{HandoffStatusAgent, 0, []string{ids[2]}},
		{HandoffStatusReleased, 0, []string{ids[0]}},
		{"", 1, []string{ids[1]}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%d", tt.status, tt.limit), func(t *testing.T) {
			list, err := e.st.Handoffs(ctx, tt.status, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, h := range list {
				got = append(got, h.SessionID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	if err := put(&HandoffEntry{SessionID: "nope", Status: HandoffStatusWaiting}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("hand-off of unknown session: %v", err)
	}
	if err := put(&HandoffEntry{SessionID: ids[1], Status: "done"}); err == nil {
		t.Fatal("status done accepted")
	}
}

func TestConcurrentSavesOneWins(t *testing.T) {
	e := newEnv(t, Options{}, "normal")
	sess := newSession("u1", "c1", `{}`)
	e.mustSave(t, sess, nil)
	const n = 16
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := *sess
			errs <- e.save(&c, &Turn{User: fmt.Sprint(i)})
		})
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrConflict):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d saves of version 1 won, want exactly 1", won)
	}
	got, err := e.st.Get(context.Background(), sess.ID)
	if err != nil || got.Version != 2 || got.Turns != 1 {
		t.Fatalf("after the race: %+v, %v", got, err)
	}
}
