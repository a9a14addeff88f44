package store

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// testLog returns a logger that writes to the test log when -v is given.
func testLog(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// testConfig returns the defaults with a database in a fresh temp dir.
func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "zhiyin.db")
	return cfg
}

// set builds a MigrationSet from name → SQL.
func set(component string, files map[string]string) MigrationSet {
	fsys := fstest.MapFS{}
	for name, body := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(body), Mode: 0o644}
	}
	return MigrationSet{Component: component, FS: fsys}
}

// itemsSet is a small schema used by most tests.
func itemsSet() MigrationSet {
	return set("test", map[string]string{
		"0001_items.sql": `CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT NOT NULL);`,
	})
}

// openT opens cfg (non-exclusive) with sets and closes it at cleanup.
func openT(t testing.TB, cfg Config, opts Options, sets ...MigrationSet) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := Open(ctx, cfg, testLog(t), prometheus.NewRegistry(), opts, sets...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// count returns SELECT count(*) FROM table through the read pool.
func count(t testing.TB, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// rawOpen opens path with a plain read-write connection (for checks that
// must not go through Open).
func rawOpen(t testing.TB, path string) *sql.DB {
	t.Helper()
	db := sql.OpenDB(newConnector(fileURI(path)+"?_busy_timeout=5000", DefaultConfig()))
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// fileBytes returns the content of path, failing the test on error.
func fileBytes(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
