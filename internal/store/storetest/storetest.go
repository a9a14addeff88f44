// Package storetest opens real zhiyin databases for other packages' tests.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/zhiyin/zhiyin/internal/store"
)

// Open opens a database in a fresh temp folder with cfg's settings (its
// Path is replaced) and the given migration sets, non-exclusive, and closes
// it at cleanup. Tests usually pass store.DefaultConfig() with
// Synchronous "normal".
func Open(tb testing.TB, cfg store.Config, sets ...store.MigrationSet) *store.DB {
	tb.Helper()
	cfg.Path = filepath.Join(tb.TempDir(), "zhiyin.db")
	db, err := store.Open(context.Background(), cfg, nil, nil, store.Options{}, sets...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Fast is store.DefaultConfig with synchronous=normal: tests need no
// fsync per commit.
func Fast() store.Config {
	cfg := store.DefaultConfig()
	cfg.Synchronous = "normal"
	return cfg
}
