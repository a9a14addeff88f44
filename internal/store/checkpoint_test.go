package store

import (
	"context"
	"database/sql"
	"testing"
)

// The writer never checkpoints in its commits; the checkpointer's PASSIVE
// checkpoint copies what they wrote.
func TestCheckpointBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	db := openT(t, testConfig(t), Options{}, itemsSet())
	var auto int
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&auto)
	}); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Fatalf("writer wal_autocheckpoint = %d, want 0", auto)
	}
	for i := 0; i < 50; i++ {
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO items (v) VALUES (?)`, string(make([]byte, 3000)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	frames, done, err := db.Checkpoint(ctx, "PASSIVE")
	if err != nil || frames == 0 || done != frames {
		t.Fatalf("checkpoint: %d frames, %d copied, %v", frames, done, err)
	}
	if _, _, err := db.Checkpoint(ctx, "VACUUM"); err == nil {
		t.Error("a bad mode was accepted")
	}
	db.Close()
	if _, _, err := db.Checkpoint(ctx, "PASSIVE"); err == nil {
		t.Error("checkpoint after Close succeeded")
	}
}
