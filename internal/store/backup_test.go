package store

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const (
	bankAccounts = 10
	bankOpening  = 1000
)

// bankSet is a ledger whose total is invariant under transfers: a backup
// that caught half a transfer, or a lost one, breaks the books.
func bankSet() MigrationSet {
	return set("bank", map[string]string{
		"0001_bank.sql": `
			CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
			CREATE TABLE transfers (id INTEGER PRIMARY KEY, src INTEGER NOT NULL REFERENCES accounts(id),
				dst INTEGER NOT NULL REFERENCES accounts(id), amount INTEGER NOT NULL);
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
			INSERT INTO accounts(id, balance) SELECT i, 1000 FROM n;`,
	})
}

// transfer moves amount from src to dst and records it.
func transfer(src, dst, amount int) func(*sql.Tx) error {
	return func(tx *sql.Tx) error {
		if _, err := tx.Exec(`UPDATE accounts SET balance = balance - ? WHERE id = ?`, amount, src); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE accounts SET balance = balance + ? WHERE id = ?`, amount, dst); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO transfers(src, dst, amount) VALUES (?, ?, ?)`, src, dst, amount)
		return err
	}
}

// checkBooks verifies the ledger in db and returns the number of transfers.
func checkBooks(t *testing.T, db *sql.DB, label string) int {
	t.Helper()
	var total, n int
	if err := db.QueryRow(`SELECT sum(balance), (SELECT count(*) FROM transfers) FROM accounts`).Scan(&total, &n); err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	if total != bankAccounts*bankOpening {
		t.Errorf("%s: balances sum to %d, want %d", label, total, bankAccounts*bankOpening)
	}
	// Each balance is the opening balance plus the transfers recorded.
	var bad int
	if err := db.QueryRow(`SELECT count(*) FROM accounts a WHERE a.balance != 1000
		- coalesce((SELECT sum(amount) FROM transfers WHERE src = a.id), 0)
		+ coalesce((SELECT sum(amount) FROM transfers WHERE dst = a.id), 0)`).Scan(&bad); err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	if bad != 0 {
		t.Errorf("%s: %d accounts disagree with their transfers", label, bad)
	}
	return n
}

// runTransfers keeps writers busy until stop is called; it returns how many
// transfers committed.
func runTransfers(t *testing.T, db *DB) (stop func() int64) {
	var done atomic.Bool
	var committed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for !done.Load() {
				src, dst := 1+rng.IntN(bankAccounts), 1+rng.IntN(bankAccounts)
				if err := db.Write(context.Background(), transfer(src, dst, 1+rng.IntN(50))); err != nil {
					t.Errorf("transfer: %v", err)
					return
				}
				committed.Add(1)
			}
		})
	}
	return func() int64 {
		done.Store(true)
		wg.Wait()
		return committed.Load()
	}
}

func TestBackupUnderWriteLoadAndRestore(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	db, err := Open(ctx, cfg, testLog(t), nil, Options{Exclusive: true}, bankSet())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// History before the first backup, so that the snapshot takes a while
	// (≈ 20k transfers, a few MB) while the writers run.
	for range 4 {
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			for i := range 5000 {
				if err := transfer(1+i%bankAccounts, 1+(i*7)%bankAccounts, 1+i%13)(tx); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	stop := runTransfers(t, db)
	backups := filepath.Join(t.TempDir(), "backups")
	if err := os.Mkdir(backups, 0o700); err != nil {
		t.Fatal(err)
	}
	viaDB := filepath.Join(backups, "via-db.db")
	viaFile := filepath.Join(backups, "via-file.db")
	if err := db.Backup(ctx, viaDB); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	// The CLI path: a separate read-only connection beside the daemon.
	if err := BackupFile(ctx, cfg.Path, viaFile); err != nil {
		t.Fatalf("BackupFile: %v", err)
	}
	committed := stop()
	if committed == 0 {
		t.Fatal("no transfer ran during the backups")
	}
	live := checkBooks(t, db.Read(), "live database")

	var inBackup int
	for _, b := range []string{viaDB, viaFile} {
		if err := IntegrityCheck(ctx, b); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		fi, err := os.Stat(b)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600 (it holds customer data)", b, fi.Mode().Perm())
		}
		raw := rawOpen(t, b)
		var mode string
		if err := raw.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "delete" {
			t.Errorf("%s: journal_mode = %q, %v; want a self-contained file (delete)", b, mode, err)
		}
		n := checkBooks(t, raw, b)
		if n < 20000 || n > live {
			t.Errorf("%s: %d transfers, want between 20000 and %d", b, n, live)
		}
		if b == viaDB {
			inBackup = n
		}
		raw.Close()
	}
	entries, _ := os.ReadDir(backups)
	if len(entries) != 2 {
		t.Errorf("backup directory holds %d entries, want only the 2 backups (temporary files left?)", len(entries))
	}
	t.Logf("%d transfers committed during the backups; backup holds %d, live %d", committed, inBackup, live)

	// Restore is refused while the daemon holds the lock; nothing changes.
	if _, err := Restore(ctx, viaDB, cfg.Path, bankSet()); !errors.Is(err, ErrLocked) {
		t.Fatalf("Restore beside the daemon: err = %v, want ErrLocked", err)
	}
	if n := checkBooks(t, db.Read(), "after refused restore"); n != live {
		t.Fatalf("refused restore changed the database: %d transfers, want %d", n, live)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg.Path, 0o600); err != nil {
		t.Fatal(err)
	}

	kept, err := Restore(ctx, viaDB, cfg.Path, bankSet())
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !strings.HasPrefix(kept, cfg.Path+".pre-restore-") {
		t.Fatalf("old database kept as %q", kept)
	}
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("restored database mode %v, want the old one's 0600", fi.Mode().Perm())
	}
	for _, side := range []string{"-wal", "-shm"} {
		if fi, err := os.Stat(cfg.Path + side); err == nil && fi.Size() > 0 {
			t.Errorf("stale %s of %d bytes beside the restored database", side, fi.Size())
		}
	}
	db, err = Open(ctx, cfg, testLog(t), nil, Options{Exclusive: true}, bankSet())
	if err != nil {
		t.Fatalf("Open the restored database: %v", err)
	}
	if n := checkBooks(t, db.Read(), "restored"); n != inBackup {
		t.Errorf("restored database has %d transfers, the backup %d", n, inBackup)
	}
	// It is a working database again.
	if err := db.Write(ctx, transfer(3, 4, 5)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	old := rawOpen(t, kept)
	if n := checkBooks(t, old, "kept old database"); n != live {
		t.Errorf("kept database has %d transfers, want the pre-restore %d", n, live)
	}
}

func TestBackupDestinationRules(t *testing.T) {
	ctx := context.Background()
	db := openT(t, testConfig(t), Options{}, itemsSet())
	dir := t.TempDir()
	dst := filepath.Join(dir, "b.db")
	if err := os.WriteFile(dst, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := db.Backup(ctx, dst); !errors.Is(err, ErrExists) {
		t.Fatalf("Backup over an existing file: err = %v, want ErrExists", err)
	}
	if string(fileBytes(t, dst)) != "precious" {
		t.Fatal("refused backup touched dst")
	}
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (1, 'x')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Backup(ctx, dst, WithOverwrite()); err != nil {
		t.Fatalf("Backup WithOverwrite: %v", err)
	}
	if n := count(t, rawOpen(t, dst), "items"); n != 1 {
		t.Fatalf("overwritten backup has %d items", n)
	}
	if err := BackupFile(ctx, db.Path(), dst); !errors.Is(err, ErrExists) {
		t.Fatalf("BackupFile over an existing file: %v", err)
	}
	if err := db.Backup(ctx, filepath.Join(dir, "missing", "b.db")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Backup into a missing directory: %v", err)
	}
	if err := db.Backup(ctx, db.Path(), WithOverwrite()); err == nil {
		t.Fatal("Backup onto the database itself succeeded")
	}
	if err := BackupFile(ctx, filepath.Join(dir, "nope.db"), filepath.Join(dir, "c.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("BackupFile of a missing database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("BackupFile created the missing database")
	}
	ctxDone, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.Backup(ctxDone, filepath.Join(dir, "d.db")); err == nil {
		t.Fatal("Backup with a cancelled ctx succeeded")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "b.db" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestRestoreRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	db := openT(t, cfg, Options{}, itemsSet())
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (1, 'current')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	if err := db.Backup(ctx, good); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileBytes(t, cfg.Path)
	goodBytes := fileBytes(t, good)

	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A backup written by a newer zhiyin.
	newer := filepath.Join(dir, "newer.db")
	if err := os.WriteFile(newer, goodBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	raw := rawOpen(t, newer)
	if _, err := raw.Exec(`INSERT INTO schema_migrations VALUES ('test', 2, 'future', 'x')`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	// An SQLite file that is not a zhiyin database.
	foreign := filepath.Join(dir, "foreign.db")
	raw = rawOpen(t, foreign)
	if _, err := raw.Exec(`CREATE TABLE x (y)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	// A live database (with a WAL beside it).
	liveDB := write("live.db", goodBytes)
	write("live.db-wal", []byte("not empty"))
	// A corrupted b-tree page header (page 2).
	if len(goodBytes) < 3*4096 {
		t.Fatalf("backup has %d bytes, want at least 3 pages", len(goodBytes))
	}
	corrupt := append([]byte(nil), goodBytes...)
	for i := 4096; i < 4096+12; i++ {
		corrupt[i] = 0xA5
	}

	tests := []struct {
		name string
		src  string
		want error
		text string
	}{
		{"missing file", filepath.Join(dir, "missing.db"), fs.ErrNotExist, "does not exist"},
		{"text file", write("notes.txt", []byte("these are not the droids\n")), ErrNotDatabase, "not an SQLite file"},
		{"empty file", write("empty.db", nil), ErrNotDatabase, "not an SQLite file"},
		{"header only", write("header.db", goodBytes[:100]), ErrCorrupt, ""},
		{"truncated to half", write("half.db", goodBytes[:len(goodBytes)/2]), ErrCorrupt, ""},
		{"corrupt page", write("corrupt.db", corrupt), ErrCorrupt, ""},
		{"not zhiyin", foreign, ErrNotDatabase, "schema_migrations"},
		{"newer schema", newer, ErrSchemaTooNew, "newer zhiyin"},
		{"live database", liveDB, nil, "live database"},
		{"the database itself", cfg.Path, nil, "database itself"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Restore(ctx, tc.src, cfg.Path, itemsSet())
			if err == nil {
				t.Fatal("Restore succeeded")
			}
			t.Log(err)
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err = %q, want it to say %q", err, tc.text)
			}
			if string(fileBytes(t, cfg.Path)) != string(before) {
				t.Fatal("the current database changed")
			}
			entries, _ := os.ReadDir(filepath.Dir(cfg.Path))
			for _, e := range entries {
				if n := e.Name(); n != "zhiyin.db" && n != "zhiyin.db.lock" {
					t.Errorf("left beside the database: %s", n)
				}
			}
		})
	}
	// The database still opens with its own content.
	db = openT(t, cfg, Options{}, itemsSet())
	var v string
	if err := db.Read().QueryRow(`SELECT v FROM items WHERE id = 1`).Scan(&v); err != nil || v != "current" {
		t.Fatalf("current database: %q, %v", v, err)
	}
}

func TestRestoreOntoFreshServer(t *testing.T) {
	ctx := context.Background()
	src := testConfig(t)
	db := openT(t, src, Options{}, itemsSet())
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (7, 'moved')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(t.TempDir(), "b.db")
	if err := db.Backup(ctx, b); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "new", "zhiyin.db")
	kept, err := Restore(ctx, b, target, itemsSet())
	if err != nil || kept != "" {
		t.Fatalf("Restore onto nothing: kept %q, %v", kept, err)
	}
	cfg := DefaultConfig()
	cfg.Path = target
	db2 := openT(t, cfg, Options{Exclusive: true}, itemsSet())
	if n := count(t, db2.Read(), "items"); n != 1 {
		t.Fatalf("items = %d", n)
	}
}

func TestIntegrityCheck(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	db := openT(t, cfg, Options{}, itemsSet())
	for i := range 300 {
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (?, ?)`, i, strings.Repeat("v", 200))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// While the daemon has it open (WAL, uncheckpointed writes).
	if err := IntegrityCheck(ctx, cfg.Path); err != nil {
		t.Fatalf("healthy open database: %v", err)
	}
	b := filepath.Join(t.TempDir(), "b.db")
	if err := db.Backup(ctx, b); err != nil {
		t.Fatal(err)
	}
	good := fileBytes(t, b)
	dir := t.TempDir()
	corrupt := append([]byte(nil), good...)
	for i := 3*4096 + 8; i < 3*4096+2000; i++ {
		corrupt[i] = byte(i)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"good", write("good.db", good), nil},
		{"corrupt", write("corrupt.db", corrupt), ErrCorrupt},
		{"truncated", write("trunc.db", good[:len(good)/3]), ErrCorrupt},
		{"not sqlite", write("x.txt", []byte("hello")), ErrNotDatabase},
		{"missing", filepath.Join(dir, "missing.db"), fs.ErrNotExist},
		{"directory", dir, ErrNotDatabase},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := IntegrityCheck(ctx, tc.path)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("IntegrityCheck created the missing file")
	}
}
