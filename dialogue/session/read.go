package session

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// maxHandoffs bounds what Handoffs returns when limit is 0 or larger.
const maxHandoffs = 1000

// sessionCols are the columns scanSession reads, in order.
const sessionCols = `id, channel, conversation, user_id, client, status, handoff, key_id, state,
	version, turns, created_at, updated_at, resumed_from`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanSession reads one row of sessionCols and opens its state.
func (s *Store) scanSession(r scanner) (*Session, error) {
	var (
		sess          Session
		status, keyID string
		blob          []byte
		created, upd  int64
	)
	if err := r.Scan(&sess.ID, &sess.Key.Channel, &sess.Key.Conversation, &sess.Key.User, &sess.Client,
		&status, &sess.Handoff, &keyID, &blob, &sess.Version, &sess.Turns, &created, &upd, &sess.ResumedFrom); err != nil {
		return nil, err
	}
	state, err := s.keys.Open(keyID, blob, sessionAAD(sess.ID))
	if err != nil {
		return nil, fmt.Errorf("session %s state: %w", sess.ID, err)
	}
	sess.Status, sess.State = Status(status), state
	sess.CreatedAt, sess.UpdatedAt = fromMS(created), fromMS(upd)
	return &sess, nil
}

// Get returns the session id with its state decrypted, or ErrNotFound. It
// reads through the read pool; the caller owns the result.
func (s *Store) Get(ctx context.Context, id string) (*Session, error) {
	sess, err := s.scanSession(s.db.Read().QueryRowContext(ctx,
		`SELECT `+sessionCols+` FROM sessions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get session %s: %w", id, err)
	}
	return sess, nil
}

// Latest returns the most recently updated session of k, whatever its
// status (of two updated in the same millisecond, the one created last),
// or ErrNotFound.
func (s *Store) Latest(ctx context.Context, k Key) (*Session, error) {
	sess, err := s.scanSession(s.db.Read().QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions
		WHERE channel = ? AND conversation = ? AND user_id = ?
		ORDER BY updated_at DESC, rowid DESC LIMIT 1`,
		k.Channel, k.Conversation, k.User))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("latest session of %s/%s: %w", k.Channel, k.Conversation, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("latest session of %s/%s: %w", k.Channel, k.Conversation, err)
	}
	return sess, nil
}

// LatestExpired returns the most recently updated expired session of k
// whose last activity (UpdatedAt) is at or after since, or ErrNotFound: the
// session a returning customer may resume.
func (s *Store) LatestExpired(ctx context.Context, k Key, since time.Time) (*Session, error) {
	sess, err := s.scanSession(s.db.Read().QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions
		WHERE channel = ? AND conversation = ? AND user_id = ? AND updated_at >= ? AND status = 'expired'
		ORDER BY updated_at DESC, rowid DESC LIMIT 1`,
		k.Channel, k.Conversation, k.User, ms(since)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("expired session of %s/%s: %w", k.Channel, k.Conversation, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("expired session of %s/%s: %w", k.Channel, k.Conversation, err)
	}
	return sess, nil
}

// History returns the last limit kept turns of session id (all kept turns
// when limit <= 0), oldest first and decrypted. An unknown session has no
// turns (nil, nil).
func (s *Store) History(ctx context.Context, id string, limit int) ([]Turn, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.db.Read().QueryContext(ctx, `SELECT seq, at, key_id, body, intent, confidence, lane
		FROM turns WHERE session_id = ? ORDER BY seq DESC LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("history of session %s: %w", id, err)
	}
	defer rows.Close()
	var out []Turn
	for rows.Next() {
		t, err := s.scanTurn(rows, id)
		if err != nil {
			return nil, fmt.Errorf("history of session %s: %w", id, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of session %s: %w", id, err)
	}
	slices.Reverse(out)
	return out, nil
}

// scanTurn reads seq, at, key_id, body, intent, confidence, lane of a turn
// of session id and opens its body.
func (s *Store) scanTurn(r scanner, id string) (Turn, error) {
	t := Turn{SessionID: id}
	var (
		at    int64
		keyID string
		blob  []byte
	)
	if err := r.Scan(&t.Seq, &at, &keyID, &blob, &t.Intent, &t.Confidence, &t.Lane); err != nil {
		return Turn{}, err
	}
	plain, err := s.keys.Open(keyID, blob, turnAAD(id, t.Seq))
	if err != nil {
		return Turn{}, fmt.Errorf("turn %d: %w", t.Seq, err)
	}
	var b turnBody
	if err := json.Unmarshal(plain, &b); err != nil {
		return Turn{}, fmt.Errorf("turn %d: decode body: %w", t.Seq, err)
	}
	t.At, t.User, t.Replies = fromMS(at), b.User, b.Replies
	return t, nil
}

// handoffCols are the columns scanHandoff reads (h: handoffs, s: sessions).
const handoffCols = `h.session_id, h.status, h.reason, h.agent, h.key_id, h.summary, h.created_at, h.updated_at,
	s.channel, s.conversation, s.user_id`

func (s *Store) scanHandoff(r scanner) (*HandoffEntry, error) {
	var (
		h            HandoffEntry
		keyID        string
		blob         []byte
		created, upd int64
	)
	if err := r.Scan(&h.SessionID, &h.Status, &h.Reason, &h.Agent, &keyID, &blob, &created, &upd,
		&h.Key.Channel, &h.Key.Conversation, &h.Key.User); err != nil {
		return nil, err
	}
	summary, err := s.keys.Open(keyID, blob, handoffAAD(h.SessionID))
	if err != nil {
		return nil, fmt.Errorf("hand-off of session %s: %w", h.SessionID, err)
	}
	h.Summary, h.CreatedAt, h.UpdatedAt = summary, fromMS(created), fromMS(upd)
	return &h, nil
}

// Handoffs returns up to limit hand-offs with the given status ("" means
// waiting and agent: the open ones), oldest first, summaries decrypted. A
// limit <= 0 or above 1000 is 1000.
func (s *Store) Handoffs(ctx context.Context, status string, limit int) ([]HandoffEntry, error) {
	if limit <= 0 || limit > maxHandoffs {
		limit = maxHandoffs
	}
	a, b := status, status
	if status == "" {
		a, b = HandoffStatusWaiting, HandoffStatusAgent
	}
	rows, err := s.db.Read().QueryContext(ctx, `SELECT `+handoffCols+`
		FROM handoffs h JOIN sessions s ON s.id = h.session_id
		WHERE h.status IN (?, ?) ORDER BY h.created_at, h.session_id LIMIT ?`, a, b, limit)
	if err != nil {
		return nil, fmt.Errorf("list hand-offs: %w", err)
	}
	defer rows.Close()
	var out []HandoffEntry
	for rows.Next() {
		h, err := s.scanHandoff(rows)
		if err != nil {
			return nil, fmt.Errorf("list hand-offs: %w", err)
		}
		out = append(out, *h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list hand-offs: %w", err)
	}
	return out, nil
}

// Handoff returns the hand-off of session sessionID, or ErrNotFound.
func (s *Store) Handoff(ctx context.Context, sessionID string) (*HandoffEntry, error) {
	h, err := s.scanHandoff(s.db.Read().QueryRowContext(ctx, `SELECT `+handoffCols+`
		FROM handoffs h JOIN sessions s ON s.id = h.session_id WHERE h.session_id = ?`, sessionID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("hand-off of session %s: %w", sessionID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("hand-off of session %s: %w", sessionID, err)
	}
	return h, nil
}

// Count returns the number of stored sessions and turns (for metrics and
// the console).
func (s *Store) Count(ctx context.Context) (sessions, turns int64, err error) {
	if err := s.db.Read().QueryRowContext(ctx,
		`SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM turns)`).Scan(&sessions, &turns); err != nil {
		return 0, 0, fmt.Errorf("count sessions: %w", err)
	}
	return sessions, turns, nil
}
