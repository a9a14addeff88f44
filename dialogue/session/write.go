package session

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// turnBody is what a turn seals: the customer's text and the replies.
type turnBody struct {
	User    string   `json:"user"`
	Replies []string `json:"replies"`
}

// SaveTx writes sess, and turn when it is not nil, in the caller's
// transaction: call it inside store.DB.Write (and use no cancellable
// context on tx). sess.Version must be the stored version (0 inserts a new
// session, assigning NewID when sess.ID is empty); otherwise SaveTx fails
// with ErrConflict, or ErrNotFound when the session was deleted.
//
// It seals State with the active key, sets UpdatedAt (and CreatedAt of a
// new session) to now, and inserts the turn with Seq = sess.Turns+1 (At
// defaults to now), deleting the turns beyond Options.HistoryLimit. The
// Key and CreatedAt of a stored session do not change; ResumedFrom is set
// once (by a resume after the session started) and then kept.
//
// Only when SaveTx returns nil does it update sess (ID, Status "" →
// Active, Version+1, Turns, times) and turn (SessionID, Seq, At). If the
// surrounding Write then fails, sess no longer matches the database:
// reload it.
func (s *Store) SaveTx(tx *sql.Tx, sess *Session, turn *Turn) error {
	if sess == nil {
		return errors.New("save session: sess is nil")
	}
	status := sess.Status
	if status == "" {
		status = Active
	}
	if err := checkStatus(status, sess.Handoff); err != nil {
		return fmt.Errorf("save session %s: %w", sess.ID, err)
	}
	id := sess.ID
	if id == "" {
		if sess.Version != 0 {
			return errors.New("save session: a stored session (version > 0) has no id")
		}
		id = NewID()
	}
	now := msTime(s.now())
	keyID, state, err := s.keys.Seal(sess.State, sessionAAD(id))
	if err != nil {
		return fmt.Errorf("save session %s: %w", id, err)
	}
	turns, version := sess.Turns, sess.Version+1
	created := sess.CreatedAt
	if sess.Version == 0 {
		if created.IsZero() {
			created = now
		}
		created = msTime(created)
		res, err := tx.Exec(`INSERT INTO sessions (id, channel, conversation, user_id, client, status, handoff,
				key_id, state, version, turns, created_at, updated_at, resumed_from)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			id, sess.Key.Channel, sess.Key.Conversation, sess.Key.User, sess.Client, string(status), sess.Handoff,
			keyID, state, version, turns+boolInt(turn != nil), ms(created), ms(now), sess.ResumedFrom)
		if err != nil {
			return fmt.Errorf("save session %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("save session %s: %w", id, err)
		} else if n == 0 {
			return fmt.Errorf("save new session %s: it already exists: %w", id, ErrConflict)
		}
	} else {
		// resumed_from is set once, when a resume brings an expired
		// session's context into this one.
		res, err := tx.Exec(`UPDATE sessions SET client = ?, status = ?, handoff = ?, key_id = ?, state = ?,
				version = ?, turns = ?, updated_at = ?,
				resumed_from = CASE WHEN resumed_from = '' THEN ? ELSE resumed_from END
			WHERE id = ? AND version = ?`,
			sess.Client, string(status), sess.Handoff, keyID, state,
			version, turns+boolInt(turn != nil), ms(now), sess.ResumedFrom, id, sess.Version)
		if err != nil {
			return fmt.Errorf("save session %s: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("save session %s: %w", id, err)
		}
		if n == 0 {
			var stored int64
			switch err := tx.QueryRow(`SELECT version FROM sessions WHERE id = ?`, id).Scan(&stored); {
			case errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("save session %s: %w", id, ErrNotFound)
			case err != nil:
				return fmt.Errorf("save session %s: %w", id, err)
			}
			return fmt.Errorf("save session %s version %d: stored version is %d: %w", id, sess.Version, stored, ErrConflict)
		}
	}

	var seq int
	at := now
	if turn != nil {
		seq = turns + 1
		turns = seq
		if !turn.At.IsZero() {
			at = msTime(turn.At)
		}
		body, err := json.Marshal(turnBody{User: turn.User, Replies: turn.Replies})
		if err != nil {
			return fmt.Errorf("save turn %d of session %s: %w", seq, id, err)
		}
		tkey, sealed, err := s.keys.Seal(body, turnAAD(id, seq))
		if err != nil {
			return fmt.Errorf("save turn %d of session %s: %w", seq, id, err)
		}
		if _, err := tx.Exec(`INSERT INTO turns (session_id, seq, at, key_id, body, intent, confidence, lane)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			id, seq, ms(at), tkey, sealed, turn.Intent, turn.Confidence, turn.Lane); err != nil {
			return fmt.Errorf("save turn %d of session %s: %w", seq, id, err)
		}
		if seq > s.limit {
			if _, err := tx.Exec(`DELETE FROM turns WHERE session_id = ? AND seq <= ?`, id, seq-s.limit); err != nil {
				return fmt.Errorf("trim turns of session %s: %w", id, err)
			}
		}
	}

	sess.ID, sess.Status, sess.Version, sess.Turns, sess.UpdatedAt = id, status, version, turns, now
	if version == 1 {
		sess.CreatedAt = created
	}
	if turn != nil {
		turn.SessionID, turn.Seq, turn.At = id, seq, at
	}
	return nil
}

// ExpireTx marks the active session id expired in the caller's transaction
// (inside store.DB.Write) and bumps its version, so that a concurrent save
// of the old version fails with ErrConflict. UpdatedAt keeps the time of
// the last activity (resume windows and retention count from it). An
// expired or closed session is left as it is; an unknown one is
// ErrNotFound.
func (s *Store) ExpireTx(tx *sql.Tx, id string) error {
	res, err := tx.Exec(`UPDATE sessions SET status = 'expired', version = version + 1
		WHERE id = ? AND status = 'active'`, id)
	if err != nil {
		return fmt.Errorf("expire session %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("expire session %s: %w", id, err)
	}
	if n > 0 {
		return nil
	}
	return s.existsTx(tx, id, "expire session")
}

// PutHandoffTx inserts or updates the hand-off of h.SessionID in the
// caller's transaction (inside store.DB.Write), sealing h.Summary. It sets
// h.UpdatedAt to now and h.CreatedAt to the time the hand-off was first
// put (h.CreatedAt, or now, on insert). It does not change the session row:
// the engine sets Session.Handoff with SaveTx in the same transaction. An
// unknown session is ErrNotFound.
func (s *Store) PutHandoffTx(tx *sql.Tx, h *HandoffEntry) error {
	if h == nil {
		return errors.New("put hand-off: entry is nil")
	}
	switch h.Status {
	case HandoffStatusWaiting, HandoffStatusAgent, HandoffStatusReleased:
	default:
		return fmt.Errorf("put hand-off of session %s: status %q: want waiting, agent or released", h.SessionID, h.Status)
	}
	if err := s.existsTx(tx, h.SessionID, "put hand-off of session"); err != nil {
		return err
	}
	keyID, summary, err := s.keys.Seal(h.Summary, handoffAAD(h.SessionID))
	if err != nil {
		return fmt.Errorf("put hand-off of session %s: %w", h.SessionID, err)
	}
	now := msTime(s.now())
	created := now
	if !h.CreatedAt.IsZero() {
		created = msTime(h.CreatedAt)
	}
	var stored int64
	if err := tx.QueryRow(`INSERT INTO handoffs (session_id, status, reason, key_id, summary, created_at, updated_at, agent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (session_id) DO UPDATE SET status = excluded.status, reason = excluded.reason,
			key_id = excluded.key_id, summary = excluded.summary, updated_at = excluded.updated_at, agent = excluded.agent
		RETURNING created_at`,
		h.SessionID, h.Status, h.Reason, keyID, summary, ms(created), ms(now), h.Agent).Scan(&stored); err != nil {
		return fmt.Errorf("put hand-off of session %s: %w", h.SessionID, err)
	}
	h.CreatedAt, h.UpdatedAt = fromMS(stored), now
	return nil
}

// existsTx returns nil when session id exists, else ErrNotFound prefixed
// with op.
func (s *Store) existsTx(tx *sql.Tx, id, op string) error {
	var one int
	switch err := tx.QueryRow(`SELECT 1 FROM sessions WHERE id = ?`, id).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s %s: %w", op, id, ErrNotFound)
	case err != nil:
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
	return nil
}

// checkStatus validates a session's status and hand-off state.
func checkStatus(st Status, handoff string) error {
	switch st {
	case Active, Expired, Closed:
	default:
		return fmt.Errorf("status %q: want active, expired or closed", st)
	}
	switch handoff {
	case HandoffNone, HandoffWaiting, HandoffAgent:
	default:
		return fmt.Errorf("hand-off %q: want \"\", waiting or agent", handoff)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
