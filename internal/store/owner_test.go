package store

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestRootRunGivesFilesTheDirectoryOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: checks that files created by a root CLI run get the daemon's owner")
	}
	const uid, gid = 54321, 54322
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(dir, "zhiyin.db")
	check := func(when string, names ...string) {
		t.Helper()
		for _, n := range names {
			fi, err := os.Stat(filepath.Join(dir, n))
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != uid || st.Gid != gid {
				t.Errorf("%s: %s owned by %d:%d, want %d:%d", when, n, st.Uid, st.Gid, uid, gid)
			}
		}
	}
	db := openT(t, cfg, Options{Exclusive: true}, itemsSet())
	check("open", "zhiyin.db", "zhiyin.db-wal", "zhiyin.db-shm", "zhiyin.db.lock")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// A read-only check recreates -wal/-shm.
	if err := IntegrityCheck(context.Background(), cfg.Path); err != nil {
		t.Fatal(err)
	}
	check("integrity check", "zhiyin.db", "zhiyin.db-wal", "zhiyin.db-shm")
	b := filepath.Join(t.TempDir(), "b.db")
	if err := BackupFile(context.Background(), cfg.Path, b); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(context.Background(), b, cfg.Path, itemsSet()); err != nil {
		t.Fatal(err)
	}
	check("restore", "zhiyin.db", "zhiyin.db.lock")
}
