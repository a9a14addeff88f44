package channels

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/zhiyin/zhiyin/internal/store"
)

// ErrNoSuchRow: Retry or Drop named an outbox row that does not exist or
// is not in a state the operation applies to.
var ErrNoSuchRow = errors.New("no such outbox row in that state")

// OutboxRow is one outbox row as operators see it.
type OutboxRow struct {
	ID           int64     `json:"id"`
	Key          string    `json:"key"`
	Channel      string    `json:"channel"`
	Conversation string    `json:"conversation"`
	InboxID      int64     `json:"inbox_id"`
	Part         int       `json:"part"`
	Parts        int       `json:"parts"`
	State        string    `json:"state"`
	Attempts     int       `json:"attempts"`
	NextAt       time.Time `json:"next_at"`
	CreatedAt    time.Time `json:"created_at"`
	LastError    string    `json:"last_error,omitempty"`
	// Text is the reply part, when the caller can open it (nil Sealer:
	// not shown).
	Text string `json:"text,omitempty"`
}

// OutboxFilter selects rows for ListOutbox.
type OutboxFilter struct {
	// State is queued, sending, sent, dead, retried or dropped; empty
	// means every open row (queued, sending, dead).
	State   string
	Channel string
	Limit   int
}

// ListOutbox lists outbox rows, newest first. With a sealer the text of
// rows that still hold it is shown.
func ListOutbox(ctx context.Context, db *sql.DB, sealer Sealer, f OutboxFilter) ([]OutboxRow, error) {
	q := `SELECT id, key, channel, conversation, COALESCE(inbox_id, 0), part, parts, state, attempts, next_at, created_at, last_error, COALESCE(key_id, ''), body FROM channel_outbox WHERE `
	var args []any
	switch f.State {
	case "":
		q += `state IN ('queued', 'sending', 'dead')`
	case "queued", "sending", "sent", "dead", "retried", "dropped":
		q += `state = ?`
		args = append(args, f.State)
	default:
		return nil, fmt.Errorf("unknown state %q: use queued, sending, sent, dead, retried or dropped", f.State)
	}
	if f.Channel != "" {
		q += ` AND channel = ?`
		args = append(args, f.Channel)
	}
	limit := f.Limit
	if limit <= 0 || limit > 10_000 {
		limit = 100
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var r OutboxRow
		var next, created int64
		var keyID string
		var blob []byte
		if err := rows.Scan(&r.ID, &r.Key, &r.Channel, &r.Conversation, &r.InboxID, &r.Part, &r.Parts, &r.State, &r.Attempts, &next, &created, &r.LastError, &keyID, &blob); err != nil {
			return nil, fmt.Errorf("list outbox: %w", err)
		}
		r.NextAt, r.CreatedAt = time.UnixMilli(next).UTC(), time.UnixMilli(created).UTC()
		if sealer != nil && blob != nil {
			if plain, err := sealer.Open(keyID, blob, outboxAAD(r.Key)); err == nil {
				var b outBody
				if json.Unmarshal(plain, &b) == nil {
					r.Text = b.Text
				}
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RetryOutbox queues a dead letter again as a new row (the same key, so a
// platform that deduplicates still drops a repeat) and marks the old one
// retried. A running daemon picks it up within a few seconds. It returns
// the new row's id.
func RetryOutbox(ctx context.Context, db *store.DB, id int64, now time.Time) (int64, error) {
	var newID int64
	err := db.Write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`INSERT INTO channel_outbox (key, channel, conversation, inbox_id, part, parts, state, attempts, next_at, created_at, key_id, body)
			SELECT key, channel, conversation, inbox_id, part, parts, 'queued', 0, ?, ?, key_id, body FROM channel_outbox WHERE id = ? AND state = 'dead'`,
			now.UnixMilli(), now.UnixMilli(), id)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNoSuchRow
		}
		if newID, err = r.LastInsertId(); err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE channel_outbox SET state = 'retried', key_id = NULL, body = NULL WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("retry outbox row %d: %w", id, err)
	}
	return newID, nil
}

// DropOutbox gives up on a dead or queued row: it is never sent and its
// text is erased.
func DropOutbox(ctx context.Context, db *store.DB, id int64) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`UPDATE channel_outbox SET state = 'dropped', key_id = NULL, body = NULL WHERE id = ? AND state IN ('dead', 'queued')`, id)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNoSuchRow
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("drop outbox row %d: %w", id, err)
	}
	return nil
}

// Prune deletes answered inbox rows and finished outbox rows older than
// keep, and dead letters older than four times keep (at least 30 days).
func Prune(ctx context.Context, db *store.DB, keep time.Duration, now time.Time) (inbox, outbox int64, err error) {
	cut := now.Add(-keep).UnixMilli()
	deadCut := now.Add(-max(4*keep, 30*24*time.Hour)).UnixMilli()
	err = db.Write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`DELETE FROM channel_inbox WHERE state != 'pending' AND received_at < ?`, cut)
		if err != nil {
			return err
		}
		if inbox, err = r.RowsAffected(); err != nil {
			return err
		}
		r, err = tx.Exec(`DELETE FROM channel_outbox WHERE (state IN ('sent', 'retried', 'dropped') AND created_at < ?) OR (state = 'dead' AND created_at < ?)`, cut, deadCut)
		if err != nil {
			return err
		}
		outbox, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("prune inbox and outbox: %w", err)
	}
	return inbox, outbox, nil
}

// RunPrune runs Prune now and then every hour until ctx ends.
func (h *Hub) RunPrune(ctx context.Context) {
	for {
		in, out, err := Prune(ctx, h.deps.DB, h.cfg.Keep, h.now())
		switch {
		case err != nil && ctx.Err() == nil:
			h.log.Warn("prune channels inbox/outbox", "err", err)
		case in+out > 0:
			h.log.Info("pruned channels inbox/outbox", "inbox", in, "outbox", out)
		}
		if !Sleep(ctx, time.Hour) {
			return
		}
	}
}

// KeyIDsInUse returns, sorted, the keys the inbox and outbox rows are
// sealed with (a key still in use must not be retired).
func KeyIDsInUse(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT DISTINCT key_id FROM channel_inbox WHERE key_id IS NOT NULL
		UNION SELECT DISTINCT key_id FROM channel_outbox WHERE key_id IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("channel key ids: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, rows.Err()
}

// Rekeyer is a Sealer that names its active key: *session.Keyring.
type Rekeyer interface {
	Sealer
	ActiveID() string
}

// Reencrypt re-seals with the active key every inbox and outbox body that
// another key sealed, in batches; rows written meanwhile already use the
// active key. It returns the rows rewritten.
func Reencrypt(ctx context.Context, db *store.DB, keys Rekeyer) (int, error) {
	total := 0
	for _, t := range []struct {
		table string
		aad   func(channel, key string) []byte
		key   string
	}{
		{"channel_inbox", inboxAAD, "dedup_key"},
		{"channel_outbox", func(_, key string) []byte { return outboxAAD(key) }, "key"},
	} {
		var last int64
		for {
			active := keys.ActiveID()
			rows, err := db.Read().QueryContext(ctx, `SELECT id, channel, `+t.key+`, key_id, body FROM `+t.table+`
				WHERE id > ? AND key_id IS NOT NULL AND key_id != ? ORDER BY id LIMIT 200`, last, active)
			if err != nil {
				return total, fmt.Errorf("re-encrypt %s: %w", t.table, err)
			}
			type row struct {
				id                int64
				channel, key, kid string
				blob              []byte
			}
			var batch []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.id, &r.channel, &r.key, &r.kid, &r.blob); err != nil {
					rows.Close()
					return total, err
				}
				batch = append(batch, r)
			}
			if err := rows.Close(); err != nil {
				return total, err
			}
			if len(batch) == 0 {
				break
			}
			err = db.Write(ctx, func(tx *sql.Tx) error {
				for _, r := range batch {
					plain, err := keys.Open(r.kid, r.blob, t.aad(r.channel, r.key))
					if err != nil {
						return fmt.Errorf("row %d: %w", r.id, err)
					}
					kid, blob, err := keys.Seal(plain, t.aad(r.channel, r.key))
					if err != nil {
						return err
					}
					// Only if the row was not answered or rewritten meanwhile.
					if _, err := tx.Exec(`UPDATE `+t.table+` SET key_id = ?, body = ? WHERE id = ? AND key_id = ?`, kid, blob, r.id, r.kid); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return total, fmt.Errorf("re-encrypt %s: %w", t.table, err)
			}
			total += len(batch)
			last = batch[len(batch)-1].id
		}
	}
	return total, nil
}
