package session

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Log attribute keys.
const (
	logKeyDeleted = "deleted_sessions"
	logKeyCutoff  = "cutoff"
	logKeyDays    = "retention_days"
	logKeyError   = "error"
)

// exportPageSize is the number of sessions ExportUser reads per read
// transaction (with their turns and hand-offs).
const exportPageSize = 100

// export document types: the JSON shape of ExportUser.
type (
	exportDoc struct {
		UserID     string    `json:"user_id"`
		ExportedAt time.Time `json:"exported_at"`
	}
	exportSession struct {
		ID            string          `json:"id"`
		Channel       string          `json:"channel"`
		Conversation  string          `json:"conversation"`
		UserID        string          `json:"user_id"`
		Client        string          `json:"client"`
		Status        Status          `json:"status"`
		HandoffStatus string          `json:"handoff_status"`
		Version       int64           `json:"version"`
		TurnCount     int             `json:"turn_count"`
		CreatedAt     time.Time       `json:"created_at"`
		UpdatedAt     time.Time       `json:"updated_at"`
		ResumedFrom   string          `json:"resumed_from"`
		State         json.RawMessage `json:"state"`
		Turns         []exportTurn    `json:"turns"`
		Handoff       *exportHandoff  `json:"handoff"`
	}
	exportTurn struct {
		Seq        int       `json:"seq"`
		At         time.Time `json:"at"`
		User       string    `json:"user"`
		Replies    []string  `json:"replies"`
		Intent     string    `json:"intent"`
		Confidence float64   `json:"confidence"`
		Lane       string    `json:"lane"`
	}
	exportHandoff struct {
		Status    string          `json:"status"`
		Reason    string          `json:"reason"`
		Agent     string          `json:"agent"`
		Summary   json.RawMessage `json:"summary"`
		CreatedAt time.Time       `json:"created_at"`
		UpdatedAt time.Time       `json:"updated_at"`
	}
)

// rawJSON returns b as JSON: itself when it is valid JSON, null when empty,
// else a JSON string of it (opaque data that was not JSON).
func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b))
	return s
}

// ExportUser writes every session of user, decrypted, to w as one JSON
// document (a data-subject access request):
//
//	{"user_id": "...", "exported_at": "RFC 3339",
//	 "sessions": [{"id", "channel", "conversation", "user_id", "client",
//	   "status", "handoff_status", "version", "turn_count", "created_at",
//	   "updated_at", "resumed_from", "state": <the engine's JSON>,
//	   "turns": [{"seq", "at", "user", "replies", "intent", "confidence", "lane"}],
//	   "handoff": null | {"status", "reason", "agent", "summary", "created_at", "updated_at"}}]}
//
// It reads through the read pool, exportPageSize sessions per read transaction,
// and streams to w, so memory stays small; sessions written while it runs
// may or may not be included. On error w holds a truncated document:
// discard it. It returns the number of sessions written.
func (s *Store) ExportUser(ctx context.Context, user string, w io.Writer) (sessions int, err error) {
	head, err := json.Marshal(exportDoc{UserID: user, ExportedAt: msTime(s.now())})
	if err != nil {
		return 0, fmt.Errorf("export user: %w", err)
	}
	// {"user_id":…,"exported_at":…} + ,"sessions":[ … ]}
	if _, err := io.WriteString(w, string(head[:len(head)-1])+`,"sessions":[`); err != nil {
		return 0, fmt.Errorf("export user: write: %w", err)
	}
	after := ""
	for {
		page, err := s.exportPage(ctx, user, after)
		if err != nil {
			return sessions, fmt.Errorf("export user: %w", err)
		}
		for _, es := range page {
			b, err := json.Marshal(es)
			if err != nil {
				return sessions, fmt.Errorf("export user: session %s: %w", es.ID, err)
			}
			if sessions > 0 {
				b = append([]byte{','}, b...)
			}
			if _, err := w.Write(b); err != nil {
				return sessions, fmt.Errorf("export user: write: %w", err)
			}
			sessions++
			after = es.ID
		}
		if len(page) < exportPageSize {
			break
		}
	}
	if _, err := io.WriteString(w, "]}\n"); err != nil {
		return sessions, fmt.Errorf("export user: write: %w", err)
	}
	return sessions, nil
}

// exportPage reads the next sessions of user after id `after`, with their
// turns and hand-offs, in one read transaction.
func (s *Store) exportPage(ctx context.Context, user, after string) (page []exportSession, err error) {
	tx, err := s.db.Read().BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() // read only: nothing to keep
	rows, err := tx.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions
		WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?`, user, after, exportPageSize)
	if err != nil {
		return nil, err
	}
	var list []*Session
	for rows.Next() {
		sess, err := s.scanSession(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		list = append(list, sess)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, sess := range list {
		es := exportSession{
			ID: sess.ID, Channel: sess.Key.Channel, Conversation: sess.Key.Conversation, UserID: sess.Key.User,
			Client: sess.Client, Status: sess.Status, HandoffStatus: sess.Handoff, Version: sess.Version,
			TurnCount: sess.Turns, CreatedAt: sess.CreatedAt, UpdatedAt: sess.UpdatedAt,
			ResumedFrom: sess.ResumedFrom, State: rawJSON(sess.State), Turns: []exportTurn{},
		}
		trows, err := tx.QueryContext(ctx, `SELECT seq, at, key_id, body, intent, confidence, lane
			FROM turns WHERE session_id = ? ORDER BY seq`, sess.ID)
		if err != nil {
			return nil, err
		}
		for trows.Next() {
			t, err := s.scanTurn(trows, sess.ID)
			if err != nil {
				trows.Close()
				return nil, fmt.Errorf("session %s: %w", sess.ID, err)
			}
			es.Turns = append(es.Turns, exportTurn{Seq: t.Seq, At: t.At, User: t.User, Replies: t.Replies,
				Intent: t.Intent, Confidence: t.Confidence, Lane: t.Lane})
		}
		trows.Close()
		if err := trows.Err(); err != nil {
			return nil, err
		}
		h, err := s.scanHandoff(tx.QueryRowContext(ctx, `SELECT `+handoffCols+`
			FROM handoffs h JOIN sessions s ON s.id = h.session_id WHERE h.session_id = ?`, sess.ID))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, err
		default:
			es.Handoff = &exportHandoff{Status: h.Status, Reason: h.Reason, Agent: h.Agent,
				Summary: rawJSON(h.Summary), CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt}
		}
		page = append(page, es)
	}
	return page, nil
}

// DeleteUser deletes every session of user with its turns and hand-off (a
// data-subject erasure request) and returns how many sessions it deleted.
// It works through store.DB.Write in transactions of at most 500 rows, so
// the engine's writes go on meanwhile; if it fails half-way the rows
// deleted so far stay deleted and running it again finishes the job.
func (s *Store) DeleteUser(ctx context.Context, user string) (sessions int, err error) {
	n, err := s.deleteWhere(ctx, `s.user_id = ?`, user)
	if err != nil {
		return n, fmt.Errorf("delete sessions of user: %w", err)
	}
	return n, nil
}

// DeleteBefore deletes every session last updated before t, with its turns
// and hand-off (retention), in transactions of at most 500 rows like
// DeleteUser, and returns how many sessions it deleted.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (sessions int, err error) {
	n, err := s.deleteWhere(ctx, `s.updated_at < ?`, ms(t))
	if err != nil {
		return n, fmt.Errorf("delete sessions updated before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// deleteWhere deletes the sessions s matching where (over sessions AS s)
// in batches: first their turns, batchRows at a time, then the sessions,
// whose cascade removes their hand-off (at most one row each) and any turn
// added meanwhile. It returns the sessions deleted.
func (s *Store) deleteWhere(ctx context.Context, where string, arg any) (int, error) {
	total := 0
	for {
		var nt, ns int64
		err := s.db.Write(ctx, func(tx *sql.Tx) error {
			nt, ns = 0, 0
			res, err := tx.Exec(`DELETE FROM turns WHERE (session_id, seq) IN (
				SELECT t.session_id, t.seq FROM sessions s JOIN turns t ON t.session_id = s.id
				WHERE `+where+` LIMIT ?)`, arg, batchRows)
			if err != nil {
				return fmt.Errorf("delete turns: %w", err)
			}
			if nt, err = res.RowsAffected(); err != nil {
				return err
			}
			// A session and its hand-off are two rows.
			room := (batchRows - nt) / 2
			if room < 1 {
				return nil
			}
			res, err = tx.Exec(`DELETE FROM sessions WHERE id IN (
				SELECT s.id FROM sessions s WHERE `+where+` LIMIT ?)`, arg, room)
			if err != nil {
				return fmt.Errorf("delete sessions: %w", err)
			}
			ns, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, err
		}
		total += int(ns)
		if nt == 0 && ns == 0 {
			return total, nil
		}
	}
}

// Reencrypt re-seals with the active key every sealed column (session
// state, turn body, hand-off summary) whose key is another one, and returns
// how many values it re-sealed. It finds candidates on the read pool and
// re-seals at most 500 per store.DB.Write transaction (re-reading each row
// there, so a concurrent save is never overwritten), and repeats until a
// pass finds nothing: when it returns nil, every row uses the active key
// of this process. Another process still sealing with an older key (it
// has not seen the new one yet, see RetireKeys) can add rows with it
// afterwards: check KeyIDsInUse right before retiring. Rows whose key is
// unknown fail it with ErrUnknownKey; rows that fail authentication with
// ErrDecrypt.
func (s *Store) Reencrypt(ctx context.Context) (rows int, err error) {
	for {
		n := 0
		for _, t := range sealedTables() {
			m, err := s.reencryptTable(ctx, t)
			n += m
			rows += m
			if err != nil {
				return rows, fmt.Errorf("re-encrypt %s: %w", t.name, err)
			}
		}
		if n == 0 {
			return rows, nil
		}
	}
}

// sealedTable describes one table with a sealed column for Reencrypt.
type sealedTable struct {
	name string
	// pk are the primary key columns; cursor comparisons use them in order.
	pk []string
	// col is the sealed column.
	col string
	// aad builds the associated data from the primary key values.
	aad func(pk []any) []byte
}

// sealedTables lists the tables Reencrypt walks.
func sealedTables() []sealedTable {
	return []sealedTable{
		{name: "sessions", pk: []string{"id"}, col: "state",
			aad: func(pk []any) []byte { return sessionAAD(pk[0].(string)) }},
		{name: "turns", pk: []string{"session_id", "seq"}, col: "body",
			aad: func(pk []any) []byte { return turnAAD(pk[0].(string), int(pk[1].(int64))) }},
		{name: "handoffs", pk: []string{"session_id"}, col: "summary",
			aad: func(pk []any) []byte { return handoffAAD(pk[0].(string)) }},
	}
}

// reencryptTable makes one pass over t in primary key order.
func (s *Store) reencryptTable(ctx context.Context, t sealedTable) (int, error) {
	pkList, cursor, where := t.pk[0], []any{""}, t.pk[0]+" = ?"
	if len(t.pk) == 2 {
		pkList = "(" + t.pk[0] + ", " + t.pk[1] + ")"
		cursor = []any{"", int64(-1 << 62)}
		where = t.pk[0] + " = ? AND " + t.pk[1] + " = ?"
	}
	cols := t.pk[0]
	if len(t.pk) == 2 {
		cols += ", " + t.pk[1]
	}
	find := `SELECT ` + cols + ` FROM ` + t.name + ` WHERE ` + pkList + ` > (` + placeholders(len(t.pk)) +
		`) AND key_id != ? ORDER BY ` + cols + ` LIMIT ?`
	get := `SELECT key_id, ` + t.col + ` FROM ` + t.name + ` WHERE ` + where
	set := `UPDATE ` + t.name + ` SET key_id = ?, ` + t.col + ` = ? WHERE ` + where

	total := 0
	for {
		active := s.keys.ActiveID()
		args := append(append([]any{}, cursor...), active, batchRows)
		rows, err := s.db.Read().QueryContext(ctx, find, args...)
		if err != nil {
			return total, err
		}
		var pks [][]any
		for rows.Next() {
			pk := make([]any, len(t.pk))
			var id string
			var seq int64
			dest := []any{&id}
			if len(t.pk) == 2 {
				dest = append(dest, &seq)
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return total, err
			}
			pk[0] = id
			if len(t.pk) == 2 {
				pk[1] = seq
			}
			pks = append(pks, pk)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return total, err
		}
		if len(pks) == 0 {
			return total, nil
		}
		var n int
		err = s.db.Write(ctx, func(tx *sql.Tx) error {
			n = 0
			for _, pk := range pks {
				var keyID string
				var blob []byte
				err := tx.QueryRow(get, pk...).Scan(&keyID, &blob)
				if errors.Is(err, sql.ErrNoRows) {
					continue // deleted meanwhile
				}
				if err != nil {
					return err
				}
				if keyID == s.keys.ActiveID() {
					continue // saved meanwhile
				}
				aad := t.aad(pk)
				plain, err := s.keys.Open(keyID, blob, aad)
				if err != nil {
					return fmt.Errorf("%s %v: %w", t.name, pk, err)
				}
				newID, sealed, err := s.keys.Seal(plain, aad)
				if err != nil {
					return err
				}
				if _, err := tx.Exec(set, append([]any{newID, sealed}, pk...)...); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		cursor = pks[len(pks)-1]
		if len(pks) < batchRows {
			return total, nil
		}
	}
}

func placeholders(n int) string {
	if n == 2 {
		return "?, ?"
	}
	return "?"
}

// KeyIDsInUse returns, sorted, the ids of the keys that stored rows are
// sealed with: the keys that RetireKeys must keep. It scans every table
// (read pool).
func (s *Store) KeyIDsInUse(ctx context.Context) ([]string, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT key_id FROM sessions
		UNION SELECT key_id FROM turns UNION SELECT key_id FROM handoffs ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list session keys in use: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list session keys in use: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list session keys in use: %w", err)
	}
	return ids, nil
}

// RunRetention deletes the sessions not updated for days days
// (DeleteBefore) at once and then every `every` (an hour when every <= 0),
// until ctx ends; it blocks until then. days <= 0 keeps sessions forever:
// it returns at once. Failures are logged (Warn) and retried at the next
// run; runs that delete something log at Info, the others at Debug. log
// may be nil.
func (s *Store) RunRetention(ctx context.Context, days int, every time.Duration, log *slog.Logger) {
	if days <= 0 {
		return
	}
	if every <= 0 {
		every = time.Hour
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keep := time.Duration(days) * 24 * time.Hour
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		cutoff := s.now().Add(-keep)
		n, err := s.DeleteBefore(ctx, cutoff)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("session retention failed, retrying at the next run", logKeyError, err, logKeyDeleted, n)
		case n > 0:
			log.Info("session retention", logKeyDeleted, n, logKeyCutoff, cutoff, logKeyDays, days)
		default:
			log.Debug("session retention", logKeyDeleted, 0, logKeyCutoff, cutoff, logKeyDays, days)
		}
		timer.Reset(every)
	}
}
