package session

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestExportUser(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{}, "normal")
	a := newSession("u1", "c1", `{"slots":{"phone":"13800138000"}}`)
	e.mustSave(t, a, &Turn{User: "查订单", Replies: []string{"请提供订单号"}, Intent: "order_status", Confidence: 0.9, Lane: "normal"})
	e.mustSave(t, a, &Turn{User: "A123", Replies: []string{"已发货"}, Intent: "inform"})
	e.clk.Add(time.Hour)
	b := newSession("u1", "c2", `not json`)
	e.mustSave(t, b, nil)
	if err := e.db.Write(ctx, func(tx *sql.Tx) error {
		return e.st.PutHandoffTx(tx, &HandoffEntry{SessionID: b.ID, Status: HandoffStatusWaiting, Reason: "asked", Summary: []byte(`{"intents":["human"]}`)})
	}); err != nil {
		t.Fatal(err)
	}
	e.mustSave(t, newSession("u2", "c1", `{"slots":{"name":"other user"}}`), &Turn{User: "other user text"})

	var buf bytes.Buffer
	n, err := e.st.ExportUser(ctx, "u1", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("exported %d sessions, want 2", n)
	}
	if strings.Contains(buf.String(), "other user") {
		t.Fatal("the export holds another user's data")
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("export is not one JSON document: %v\n%s", err, buf.String())
	}
	if doc["user_id"] != "u1" || doc["exported_at"] != "2025-03-01T09:00:00Z" {
		t.Errorf("header: %v %v", doc["user_id"], doc["exported_at"])
	}
	sessions := doc["sessions"].([]any)
	if len(sessions) != 2 {
		t.Fatalf("%d sessions in the document", len(sessions))
	}
	byID := map[string]map[string]any{}
	for _, s := range sessions {
		m := s.(map[string]any)
		byID[m["id"].(string)] = m
	}
	sa, sb := byID[a.ID], byID[b.ID]
	if sa == nil || sb == nil {
		t.Fatalf("sessions %v", byID)
	}
	wantKeys := []string{"channel", "client", "conversation", "created_at", "handoff", "handoff_status", "id",
		"resumed_from", "state", "status", "turn_count", "turns", "updated_at", "user_id", "version"}
	var keys []string
	for k := range sa {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("session fields %v, want %v", keys, wantKeys)
	}
	if got := sa["state"].(map[string]any)["slots"].(map[string]any)["phone"]; got != "13800138000" {
		t.Errorf("state not decoded: %v", sa["state"])
	}
	if sb["state"] != "not json" {
		t.Errorf("non-JSON state exported as %v, want a string", sb["state"])
	}
	turns := sa["turns"].([]any)
	if len(turns) != 2 || sa["turn_count"] != 2.0 || sa["handoff"] != nil {
		t.Fatalf("session a: %v", sa)
	}
	t0 := turns[0].(map[string]any)
	want := map[string]any{"seq": 1.0, "at": "2025-03-01T08:00:00Z", "user": "查订单", "replies": []any{"请提供订单号"},
		"intent": "order_status", "confidence": 0.9, "lane": "normal"}
	if !reflect.DeepEqual(t0, want) {
		t.Errorf("turn 1 = %v, want %v", t0, want)
	}
	if got := sb["turns"].([]any); len(got) != 0 {
		t.Errorf("session b turns %v, want []", got)
	}
	h := sb["handoff"].(map[string]any)
	if h["status"] != "waiting" || h["summary"].(map[string]any)["intents"].([]any)[0] != "human" {
		t.Errorf("hand-off %v", h)
	}

	// Unknown user: an empty list, not an error.
	buf.Reset()
	if n, err := e.st.ExportUser(ctx, "nobody", &buf); err != nil || n != 0 {
		t.Fatalf("export of nobody: %d, %v", n, err)
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || len(doc["sessions"].([]any)) != 0 {
		t.Fatalf("export of nobody: %v %s", err, buf.String())
	}
}

func TestExportUserPages(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{}, "normal")
	const count = exportPageSize*2 + 3
	for i := range count {
		e.mustSave(t, newSession("u1", fmt.Sprint(i), fmt.Sprintf(`{"i":%d}`, i)), &Turn{User: "x"})
	}
	var buf bytes.Buffer
	n, err := e.st.ExportUser(ctx, "u1", &buf)
	if err != nil || n != count {
		t.Fatalf("exported %d, %v; want %d", n, err, count)
	}
	var doc struct {
		Sessions []struct {
			ID    string          `json:"id"`
			State json.RawMessage `json:"state"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range doc.Sessions {
		seen[s.ID] = true
	}
	if len(doc.Sessions) != count || len(seen) != count {
		t.Fatalf("%d sessions, %d distinct; want %d", len(doc.Sessions), len(seen), count)
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestExportUserWriteError(t *testing.T) {
	e := newEnv(t, Options{}, "normal")
	e.mustSave(t, newSession("u1", "c", `{}`), nil)
	if _, err := e.st.ExportUser(context.Background(), "u1", &failWriter{n: 60}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v", err)
	}
}

// seed saves sessions of user each with turns turns, every one with a
// hand-off; it returns their ids.
func seed(t testing.TB, e *env, user string, sessions, turns int) []string {
	t.Helper()
	var ids []string
	for i := range sessions {
		s := newSession(user, fmt.Sprint(i), `{"slots":{"x":"y"}}`)
		e.mustSave(t, s, nil)
		for j := range turns {
			e.mustSave(t, s, &Turn{User: fmt.Sprint("text ", j)})
		}
		if err := e.db.Write(context.Background(), func(tx *sql.Tx) error {
			return e.st.PutHandoffTx(tx, &HandoffEntry{SessionID: s.ID, Status: HandoffStatusWaiting})
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	return ids
}

// rows counts the rows of each table.
func (e *env) rows(t testing.TB) (sessions, turns, handoffs int) {
	t.Helper()
	if err := e.db.Read().QueryRow(`SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM turns),
		(SELECT count(*) FROM handoffs)`).Scan(&sessions, &turns, &handoffs); err != nil {
		t.Fatal(err)
	}
	return
}

func TestDeleteUser(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{HistoryLimit: 1000}, "normal")
	// 3 × 400 turns: several 500-row batches, a batch split between
	// turns and sessions.
	seed(t, e, "u1", 3, 400)
	keep := seed(t, e, "u2", 2, 3)

	n, err := e.st.DeleteUser(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("deleted %d sessions, want 3", n)
	}
	if s, tu, h := e.rows(t); s != 2 || tu != 6 || h != 2 {
		t.Fatalf("left %d sessions, %d turns, %d hand-offs; want u2's 2, 6, 2", s, tu, h)
	}
	for _, id := range keep {
		if _, err := e.st.Get(ctx, id); err != nil {
			t.Fatalf("u2's session %s: %v", id, err)
		}
	}
	if n, err := e.st.DeleteUser(ctx, "u1"); err != nil || n != 0 {
		t.Fatalf("second delete: %d, %v", n, err)
	}
}

func TestDeleteBefore(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{}, "normal")
	old := seed(t, e, "u1", 2, 3)
	e.clk.Add(48 * time.Hour)
	cut := e.clk.Now()
	fresh := seed(t, e, "u1", 1, 2)
	// An old session touched again after the cut survives.
	s, err := e.st.Get(ctx, old[1])
	if err != nil {
		t.Fatal(err)
	}
	e.mustSave(t, s, &Turn{User: "back again"})

	n, err := e.st.DeleteBefore(ctx, cut)
	if err != nil || n != 1 {
		t.Fatalf("DeleteBefore = %d, %v; want 1", n, err)
	}
	if _, err := e.st.Get(ctx, old[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old session: %v", err)
	}
	for _, id := range []string{old[1], fresh[0]} {
		if _, err := e.st.Get(ctx, id); err != nil {
			t.Fatalf("kept session %s: %v", id, err)
		}
	}
	if s, tu, h := e.rows(t); s != 2 || tu != 6 || h != 2 {
		t.Fatalf("left %d sessions, %d turns, %d hand-offs", s, tu, h)
	}
}

// notifyHandler is a slog handler that sends every record's message.
type notifyHandler struct{ ch chan<- slog.Record }

func (h notifyHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h notifyHandler) Handle(_ context.Context, r slog.Record) error {
	h.ch <- r
	return nil
}
func (h notifyHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h notifyHandler) WithGroup(string) slog.Handler      { return h }

func TestRunRetention(t *testing.T) {
	e := newEnv(t, Options{}, "normal")
	seed(t, e, "u1", 2, 1)
	e.clk.Add(31 * 24 * time.Hour)
	fresh := seed(t, e, "u1", 1, 1)

	// days <= 0: keep forever, return at once.
	e.st.RunRetention(context.Background(), 0, time.Hour, nil)

	ctx, cancel := context.WithCancel(context.Background())
	records := make(chan slog.Record, 4)
	var wg sync.WaitGroup
	wg.Go(func() { e.st.RunRetention(ctx, 30, time.Hour, slog.New(notifyHandler{records})) })
	r := <-records // the first run happens at start
	cancel()
	wg.Wait()
	if r.Level != slog.LevelInfo || r.Message != "session retention" {
		t.Fatalf("log %v %q", r.Level, r.Message)
	}
	var deleted int64
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == logKeyDeleted {
			deleted = a.Value.Int64()
		}
		return true
	})
	if deleted != 2 {
		t.Fatalf("logged %d deleted, want 2", deleted)
	}
	if s, _, _ := e.rows(t); s != 1 {
		t.Fatalf("%d sessions left, want 1", s)
	}
	if _, err := e.st.Get(context.Background(), fresh[0]); err != nil {
		t.Fatal(err)
	}
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{HistoryLimit: 1000}, "normal")
	oldID := e.keys.ActiveID()
	// More rows than one batch in the turns table.
	ids := seed(t, e, "u1", 3, 250)

	newID, err := AddKey(e.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Reload(); err != nil {
		t.Fatal(err)
	}
	if e.keys.ActiveID() != newID {
		t.Fatalf("active %q after reload, want %q", e.keys.ActiveID(), newID)
	}
	// New writes use the new key at once.
	more := newSession("u2", "c", `{"v":2}`)
	e.mustSave(t, more, &Turn{User: "after rotation"})

	inUse, err := e.st.KeyIDsInUse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := sorted(oldID, newID); !slices.Equal(inUse, want) {
		t.Fatalf("in use before re-encryption %v, want %v", inUse, want)
	}
	n, err := e.st.Reencrypt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 + 3*250 + 3; n != want {
		t.Fatalf("re-sealed %d values, want %d", n, want)
	}
	inUse, err = e.st.KeyIDsInUse(ctx)
	if err != nil || !slices.Equal(inUse, []string{newID}) {
		t.Fatalf("in use after re-encryption %v, %v; want [%s]", inUse, err, newID)
	}
	if n, err := e.st.Reencrypt(ctx); err != nil || n != 0 {
		t.Fatalf("second Reencrypt = %d, %v", n, err)
	}
	removed, err := RetireKeys(e.keyPath, func(id string) bool { return slices.Contains(inUse, id) })
	if err != nil || !slices.Equal(removed, []string{oldID}) {
		t.Fatalf("RetireKeys = %v, %v", removed, err)
	}

	// Everything still opens with a keyring that never saw the old key.
	fresh, err := LoadKeyring(e.keyPath, false)
	if err != nil {
		t.Fatal(err)
	}
	st := New(e.db, fresh, Options{})
	for _, id := range ids {
		s, err := st.Get(ctx, id)
		if err != nil || string(s.State) != `{"slots":{"x":"y"}}` {
			t.Fatalf("Get %s after rotation: %v", id, err)
		}
		hist, err := st.History(ctx, id, 0)
		if err != nil || len(hist) != 250 || hist[249].User != "text 249" {
			t.Fatalf("History %s after rotation: %d turns, %v", id, len(hist), err)
		}
		if _, err := st.Handoff(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestTamperedRows(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{}, "normal")
	a := newSession("u1", "c1", `{"a":1}`)
	b := newSession("u1", "c2", `{"b":2}`)
	e.mustSave(t, a, &Turn{User: "one"})
	e.mustSave(t, a, &Turn{User: "two"})
	e.mustSave(t, b, nil)

	// Moving b's sealed state onto a: the AAD binds it to b's row.
	e.exec(t, `UPDATE sessions SET state = (SELECT state FROM sessions WHERE id = ?) WHERE id = ?`, b.ID, a.ID)
	if _, err := e.st.Get(ctx, a.ID); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Get with another row's state: %v, want ErrDecrypt", err)
	}
	// Copying the body of turn 2 onto turn 1 of the same session.
	e.exec(t, `UPDATE turns SET body = (SELECT body FROM turns WHERE session_id = ? AND seq = 2)
		WHERE session_id = ? AND seq = 1`, a.ID, a.ID)
	if _, err := e.st.History(ctx, a.ID, 0); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("History with a moved turn body: %v, want ErrDecrypt", err)
	}
	// A flipped bit.
	e.exec(t, `UPDATE sessions SET state = substr(state, 1, 20) || x'00' || substr(state, 22) WHERE id = ?`, b.ID)
	if _, err := e.st.Get(ctx, b.ID); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Get of altered state: %v, want ErrDecrypt", err)
	}
	// A key id that is in no key file.
	e.exec(t, `UPDATE sessions SET key_id = 'k19990101000000' WHERE id = ?`, b.ID)
	if _, err := e.st.Get(ctx, b.ID); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Get with unknown key: %v, want ErrUnknownKey", err)
	}
	if _, err := e.st.Reencrypt(ctx); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Reencrypt over an unknown key: %v, want ErrUnknownKey", err)
	}
	if _, err := e.st.ExportUser(ctx, "u1", &bytes.Buffer{}); err == nil {
		t.Fatal("export of undecryptable sessions succeeded")
	}
}

// TestNoPlaintextOnDisk writes customer text, replies, slot values and a
// hand-off summary, then looks for them in the raw database files.
func TestNoPlaintextOnDisk(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{HistoryLimit: 2}, "full")
	const (
		userText = "MARKER-user-我的手机号是13912345678"
		reply    = "MARKER-reply-您的订单已发货"
		slot     = "MARKER-slot-北京市朝阳区建国路88号"
		summary  = "MARKER-summary-客户要求退款"
	)
	markers := []string{userText, reply, slot, summary, "MARKER-", "13912345678", "建国路88号"}
	for i := range 5 {
		s := newSession(fmt.Sprint("u", i), "c", fmt.Sprintf(`{"slots":{"address":%q}}`, slot))
		for j := range 4 { // some turns are trimmed: deleted pages must not hold text either
			e.mustSave(t, s, &Turn{User: fmt.Sprint(userText, j), Replies: []string{reply}, Intent: "order_status"})
		}
		if err := e.db.Write(ctx, func(tx *sql.Tx) error {
			return e.st.PutHandoffTx(tx, &HandoffEntry{SessionID: s.ID, Status: HandoffStatusWaiting, Summary: []byte(fmt.Sprintf(`{"note":%q}`, summary))})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.st.DeleteUser(ctx, "u0"); err != nil {
		t.Fatal(err)
	}
	path := e.db.Path()
	check := func(when string) {
		t.Helper()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			data, err := os.ReadFile(path + suffix)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range markers {
				if bytes.Contains(data, []byte(m)) {
					t.Errorf("%s: %q found in %s", when, m, path+suffix)
				}
			}
		}
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("the WAL should hold the writes before Close: %v", err)
	}
	check("open")
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
}
