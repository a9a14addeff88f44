package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExclusiveOpenLocksOutSecondDaemon(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	db, err := Open(ctx, cfg, testLog(t), nil, Options{Exclusive: true}, itemsSet())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(fileBytes(t, cfg.Path+".lock"))); got != fmt.Sprint(os.Getpid()) {
		t.Errorf("lock file holds %q, want our pid", got)
	}

	_, err = Open(ctx, cfg, testLog(t), nil, Options{Exclusive: true}, itemsSet())
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second exclusive Open: err = %v, want ErrLocked", err)
	}
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("err = %#v, want a *LockedError with pid %d", err, os.Getpid())
	}
	want := fmt.Sprintf("database %s is in use by another zhiyin process (pid %d): stop it first, e.g. systemctl stop zhiyin", cfg.Path, os.Getpid())
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q\nwant it to contain %q", err, want)
	}

	// A CLI tool opens beside the daemon and writes through WAL.
	cli := openT(t, cfg, Options{}, itemsSet())
	if err := cli.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (1, 'from cli')`)
		return err
	}); err != nil {
		t.Fatalf("non-exclusive write beside the daemon: %v", err)
	}
	if n := count(t, db.Read(), "items"); n != 1 {
		t.Fatalf("daemon sees %d items", n)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileBytes(t, cfg.Path+".lock"); len(got) != 0 {
		t.Errorf("lock file still holds %q after Close", got)
	}
	db2, err := Open(ctx, cfg, testLog(t), nil, Options{Exclusive: true}, itemsSet())
	if err != nil {
		t.Fatalf("exclusive Open after Close: %v", err)
	}
	db2.Close()
}

func TestLockedErrorWithoutPID(t *testing.T) {
	err := error(&LockedError{Path: "/var/lib/zhiyin/zhiyin.db"})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid unknown") {
		t.Fatalf("%v", err)
	}
}

func TestOpenCreatesParentDirectory(t *testing.T) {
	cfg := DefaultConfig()
	dir := filepath.Join(t.TempDir(), "a", "b")
	cfg.Path = filepath.Join(dir, "zhiyin.db")
	db := openT(t, cfg, Options{Exclusive: true})
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&^0o750 != 0 {
		t.Errorf("directory mode %v, want at most 0750", st.Mode().Perm())
	}
	if db.Path() != cfg.Path {
		t.Errorf("Path() = %s", db.Path())
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"empty path", func(c *Config) { c.Path = "" }, "storage.path is empty"},
		{"max batch", func(c *Config) { c.GroupCommit.MaxBatch = 0 }, "group_commit.max_batch"},
		{"synchronous", func(c *Config) { c.Synchronous = "off" }, "synchronous"},
		{"journal size", func(c *Config) { c.JournalSizeLimit = -1 }, "journal_size_limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.mod(&cfg)
			_, err := Open(context.Background(), cfg, nil, nil, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestSynchronousNormal(t *testing.T) {
	cfg := testConfig(t)
	cfg.Synchronous = "normal"
	db := openT(t, cfg, Options{})
	var sync int
	if err := db.Write(context.Background(), func(tx *sql.Tx) error {
		return tx.QueryRow(`PRAGMA synchronous`).Scan(&sync)
	}); err != nil {
		t.Fatal(err)
	}
	if sync != 1 {
		t.Fatalf("synchronous = %d, want 1 (NORMAL)", sync)
	}
}

func TestPathWithURICharacters(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = t.TempDir() + "/we?ird#na%me.db"
	db := openT(t, cfg, Options{Exclusive: true}, itemsSet())
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.Path); err != nil {
		t.Fatalf("database not at the literal path: %v", err)
	}
}
