package store

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRestore feeds arbitrary bytes to Restore as a backup file: it either
// refuses them and leaves the current database byte for byte as it was, or
// installs a database that passes the integrity check.
func FuzzRestore(f *testing.F) {
	ctx := context.Background()
	seedDir := f.TempDir()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(seedDir, "seed.db")
	db, err := Open(ctx, cfg, nil, nil, Options{}, itemsSet())
	if err != nil {
		f.Fatal(err)
	}
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO items(id, v) VALUES (1, 'seed')`)
		return err
	}); err != nil {
		f.Fatal(err)
	}
	good := filepath.Join(seedDir, "good.db")
	if err := db.Backup(ctx, good); err != nil {
		f.Fatal(err)
	}
	db.Close()
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(goodBytes)
	f.Add(goodBytes[:len(goodBytes)/2])
	f.Add(goodBytes[:100])
	f.Add([]byte(sqliteHeader))
	f.Add([]byte("not a database"))
	f.Add([]byte{})
	flipped := bytes.Clone(goodBytes)
	flipped[4096+3] ^= 0xff
	f.Add(flipped)

	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		dbPath := filepath.Join(dir, "zhiyin.db")
		if err := os.WriteFile(dbPath, goodBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(dir, "backup.db")
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Restore(ctx, src, dbPath, itemsSet())
		if err != nil {
			got, rerr := os.ReadFile(dbPath)
			if rerr != nil || !bytes.Equal(got, goodBytes) {
				t.Fatalf("refused restore (%v) changed the database", err)
			}
			return
		}
		if err := IntegrityCheck(ctx, dbPath); err != nil {
			t.Fatalf("restore accepted a backup that fails the check: %v", err)
		}
	})
}
