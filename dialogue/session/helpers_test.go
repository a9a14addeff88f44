package session

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/internal/store"
)

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a real database with this package's schema, a key file and a
// Store on them.
type env struct {
	db      *store.DB
	keys    *Keyring
	keyPath string
	st      *Store
	clk     *clock
}

// newEnv opens a fresh database and key file. sync is storage.synchronous.
func newEnv(t testing.TB, opts Options, sync string) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := store.DefaultConfig()
	cfg.Path = filepath.Join(dir, "zhiyin.db")
	cfg.Synchronous = sync
	db, err := store.Open(context.Background(), cfg, nil, nil, store.Options{},
		store.MigrationSet{Component: MigrationComponent, FS: Migrations()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keyPath := filepath.Join(dir, "keys", "session.keys")
	keys, err := LoadKeyring(keyPath, true)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	return &env{db: db, keys: keys, keyPath: keyPath, st: New(db, keys, opts), clk: clk}
}

// save runs SaveTx in its own Write.
func (e *env) save(sess *Session, turn *Turn) error {
	return e.db.Write(context.Background(), func(tx *sql.Tx) error { return e.st.SaveTx(tx, sess, turn) })
}

// mustSave saves and fails the test on error.
func (e *env) mustSave(t testing.TB, sess *Session, turn *Turn) {
	t.Helper()
	if err := e.save(sess, turn); err != nil {
		t.Fatal(err)
	}
}

// exec runs a raw statement through the writer (to tamper with rows).
func (e *env) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if err := e.db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// newSession returns an unsaved session of user on channel "web".
func newSession(user, conv string, state string) *Session {
	return &Session{Key: Key{Channel: "web", Conversation: conv, User: user}, Client: "widget", State: []byte(state)}
}
