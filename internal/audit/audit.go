package audit

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationComponent names this package's migrations in the version table.
const MigrationComponent = "audit"

// Migrations returns the package's numbered SQL migrations (NNNN_name.sql at
// the root of the returned FS), for a store.MigrationSet.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// Limits of an entry. They keep the log small and make it hard to put a
// message in it by mistake.
const (
	// MaxFieldLen bounds Actor, Action, Target and each Detail key and
	// value, in bytes.
	MaxFieldLen = 256
	// MaxDetail bounds the number of Detail entries.
	MaxDetail = 32
	// MaxList is the most entries List returns.
	MaxList = 1000
)

// Entry is one administrative act: who did what to what. It must hold no
// message text: no customer or reply text, no slot values, no secrets —
// only ids, counts, key ids, names of settings.
type Entry struct {
	// At is when it happened; RecordTx uses now when it is zero. Stored
	// to the millisecond.
	At time.Time
	// Actor is who did it: "key:<api key id>", "jwt:<subject>",
	// "cli:<unix user>", "loopback", "system". Required.
	Actor string
	// Action is what was done, e.g. "session.export", "session.delete_user",
	// "session.retention", "keys.add", "keys.retire", "apikey.create".
	// Required.
	Action string
	// Target is what it was done to: a user id, a key id, a session id.
	Target string
	// Detail holds short extra facts (counts, ids).
	Detail map[string]string
}

// validate checks the entry's fields against the limits.
func (e *Entry) validate() error {
	if e.Actor == "" {
		return errors.New("actor is empty: say who acted (key:ID, cli:USER, loopback, system)")
	}
	if e.Action == "" {
		return errors.New("action is empty")
	}
	if len(e.Detail) > MaxDetail {
		return fmt.Errorf("detail has %d entries, at most %d", len(e.Detail), MaxDetail)
	}
	check := func(what, s string) error {
		if len(s) > MaxFieldLen {
			return fmt.Errorf("%s is %d bytes, at most %d: the audit log holds ids and counts, not text", what, len(s), MaxFieldLen)
		}
		if !utf8.ValidString(s) {
			return fmt.Errorf("%s is not valid UTF-8", what)
		}
		return nil
	}
	for what, s := range map[string]string{"actor": e.Actor, "action": e.Action, "target": e.Target} {
		if err := check(what, s); err != nil {
			return err
		}
	}
	for k, v := range e.Detail {
		if err := check("detail key", k); err != nil {
			return err
		}
		if err := check("detail "+k, v); err != nil {
			return err
		}
	}
	return nil
}

// RecordTx appends e to the audit log in the caller's transaction (inside
// store.DB.Write, so the act and its record commit together). It uses no
// context on tx. A zero e.At is now.
func RecordTx(tx *sql.Tx, e Entry) error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("record audit entry %s: %w", e.Action, err)
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("record audit entry %s: %w", e.Action, err)
		}
	}
	if _, err := tx.Exec(`INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`,
		e.At.UnixMilli(), e.Actor, e.Action, e.Target, string(detail)); err != nil {
		return fmt.Errorf("record audit entry %s: %w", e.Action, err)
	}
	return nil
}

// Record appends e to the audit log in its own durable write; it blocks
// until it is committed (store.DB.Write).
func Record(ctx context.Context, db *store.DB, e Entry) error {
	return db.Write(ctx, func(tx *sql.Tx) error { return RecordTx(tx, e) })
}

// List returns up to limit entries at or after since, newest first (limit
// <= 0 or above MaxList is MaxList). It reads through the read pool; times
// are UTC.
func List(ctx context.Context, db *store.DB, since time.Time, limit int) ([]Entry, error) {
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	rows, err := db.Read().QueryContext(ctx, `SELECT at, actor, action, target, detail FROM audit_log
		WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?`, since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var (
			e      Entry
			at     int64
			detail string
		)
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.Target, &detail); err != nil {
			return nil, fmt.Errorf("list audit entries: %w", err)
		}
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			return nil, fmt.Errorf("list audit entries: detail of %s at %d: %w", e.Action, at, err)
		}
		if len(e.Detail) == 0 {
			e.Detail = nil
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	return out, nil
}
