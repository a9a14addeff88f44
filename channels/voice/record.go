package voice

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationComponent names this package's migrations in the version table.
const MigrationComponent = "voice"

// Migrations returns the call record schema for a store.MigrationSet.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// dbTimeout bounds a record write; records are written even while the
// call's context is ending.
const dbTimeout = 10 * time.Second

// maxReason bounds the stored end reason (it comes from the transport).
const maxReason = 200

// turnRow is one turn as stored.
type turnRow struct {
	seq                                        int
	source                                     string
	at                                         time.Time
	caller, bot                                string
	vadWait, asr, dialogue, ttsFirst, response time.Duration
	barged                                     bool
	err                                        string
}

// turnBody is the sealed part of a turn row.
type turnBody struct {
	Caller string `json:"caller"`
	Bot    string `json:"bot"`
}

func turnAAD(callID string, seq int) []byte {
	return []byte("voice-turn/" + callID + "/" + strconv.Itoa(seq))
}

func (c *call) write(what string, fn func(*sql.Tx) error) {
	db := c.e.deps.DB
	if db == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), dbTimeout)
	defer cancel()
	if err := db.Write(ctx, fn); err != nil {
		c.e.log.Warn("voice call: record not saved", logKeyCall, c.info.ID, "record", what, logKeyError, err)
	}
}

// saveStart inserts the call's row (pipeline goroutine).
func (c *call) saveStart() {
	c.write("call", func(tx *sql.Tx) error {
		i := c.info
		started := i.Started
		if started.IsZero() {
			started = c.e.now()
		}
		r, err := tx.Exec(`INSERT INTO voice_calls (call_id, channel, from_uri, to_uri, remote, started_at, setup_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING`,
			i.ID, i.Channel, i.From, i.To, i.Remote, started.UnixMilli(), i.Setup.Milliseconds())
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return fmt.Errorf("call id %q is already recorded", i.ID)
		}
		c.row, err = r.LastInsertId()
		return err
	})
}

// saveTurn stores a turn with its sealed transcript (pipeline goroutine).
func (c *call) saveTurn(t turnRow) {
	if c.row == 0 {
		return
	}
	plain, err := json.Marshal(turnBody{Caller: t.caller, Bot: t.bot})
	if err != nil {
		return
	}
	keyID, blob, err := c.e.deps.Sealer.Seal(plain, turnAAD(c.info.ID, t.seq))
	if err != nil {
		c.e.log.Warn("voice call: transcript not sealed", logKeyCall, c.info.ID, logKeyError, err)
		return
	}
	c.write("turn", func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO voice_turns (call_row, seq, source, at, vad_wait_us, asr_us, dialogue_us, tts_first_us, response_us, barged, error, key_id, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			c.row, t.seq, t.source, t.at.UnixMilli(), t.vadWait.Microseconds(), t.asr.Microseconds(), t.dialogue.Microseconds(),
			t.ttsFirst.Microseconds(), t.response.Microseconds(), t.barged, t.err, keyID, blob)
		return err
	})
}

// saveEnd completes the call's row (finish, after the pipeline ended).
func (c *call) saveEnd(label, reason string, s RTPStats, recPath string) {
	if c.row == 0 {
		return
	}
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	c.write("call end", func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE voice_calls SET session_id = ?, ended_at = ?, end_label = ?, end_reason = ?, turns = ?, barge_ins = ?,
			dtmf_digits = ?, dropped_frames = ?, rtp_received = ?, rtp_lost = ?, rtp_late = ?, rtp_concealed = ?, rtp_jitter_us = ?, recording = ?
			WHERE id = ?`,
			c.sessionID, c.e.now().UnixMilli(), label, reason, c.turns, c.bargeIns.Load(), c.digits.Load(), c.dropped.Load(),
			s.Received, s.Lost, s.Late, s.Concealed, s.Jitter.Microseconds(), recPath, c.row)
		return err
	})
}

// CallRecord is one call as operators see it.
type CallRecord struct {
	ID            int64         `json:"id"`
	CallID        string        `json:"call_id"`
	Channel       string        `json:"channel"`
	SessionID     string        `json:"session_id,omitempty"`
	From          string        `json:"from"`
	To            string        `json:"to"`
	Remote        string        `json:"remote,omitempty"`
	Started       time.Time     `json:"started"`
	Setup         time.Duration `json:"setup"`
	Ended         time.Time     `json:"ended,omitzero"`
	End           string        `json:"end,omitempty"`
	EndReason     string        `json:"end_reason,omitempty"`
	Turns         int           `json:"turns"`
	BargeIns      int           `json:"barge_ins"`
	DTMFDigits    int           `json:"dtmf_digits"`
	DroppedFrames int           `json:"dropped_frames"`
	RTP           RTPStats      `json:"rtp"`
	Recording     string        `json:"recording,omitempty"`
	// Transcript is the call's turns (GetCall, or ListCalls with
	// CallFilter.Turns).
	Transcript []TurnRecord `json:"transcript,omitempty"`
}

// TurnRecord is one turn of a call record.
type TurnRecord struct {
	Seq      int           `json:"seq"`
	Source   string        `json:"source"`
	At       time.Time     `json:"at"`
	VADWait  time.Duration `json:"vad_wait"`
	ASR      time.Duration `json:"asr"`
	Dialogue time.Duration `json:"dialogue"`
	TTSFirst time.Duration `json:"tts_first"`
	Response time.Duration `json:"response"`
	Barged   bool          `json:"barged"`
	Error    string        `json:"error,omitempty"`
	// Caller and Bot are the texts, when the sealer given opens them.
	Caller string `json:"caller,omitempty"`
	Bot    string `json:"bot,omitempty"`
}

// CallFilter selects calls for ListCalls.
type CallFilter struct {
	Channel string
	// Since and Until bound the start time (zero: open).
	Since, Until time.Time
	// Turns loads each call's transcript.
	Turns bool
	// Limit is at most 10000; 0 means 100.
	Limit int
}

const callColumns = `id, call_id, channel, session_id, from_uri, to_uri, remote, started_at, setup_ms, COALESCE(ended_at, 0), end_label, end_reason,
	turns, barge_ins, dtmf_digits, dropped_frames, rtp_received, rtp_lost, rtp_late, rtp_concealed, rtp_jitter_us, recording`

func scanCall(sc interface{ Scan(...any) error }) (CallRecord, error) {
	var r CallRecord
	var started, setup, ended, jitter int64
	err := sc.Scan(&r.ID, &r.CallID, &r.Channel, &r.SessionID, &r.From, &r.To, &r.Remote, &started, &setup, &ended, &r.End, &r.EndReason,
		&r.Turns, &r.BargeIns, &r.DTMFDigits, &r.DroppedFrames, &r.RTP.Received, &r.RTP.Lost, &r.RTP.Late, &r.RTP.Concealed, &jitter, &r.Recording)
	r.Started = time.UnixMilli(started).UTC()
	r.Setup = time.Duration(setup) * time.Millisecond
	if ended > 0 {
		r.Ended = time.UnixMilli(ended).UTC()
	}
	r.RTP.Jitter = time.Duration(jitter) * time.Microsecond
	return r, err
}

// ListCalls lists calls, newest first. With f.Turns and a sealer the
// transcripts are opened (turns that do not open show no text). It reads
// only.
func ListCalls(ctx context.Context, db *sql.DB, sealer channels.Sealer, f CallFilter) ([]CallRecord, error) {
	q := `SELECT ` + callColumns + ` FROM voice_calls WHERE 1 = 1`
	var args []any
	if f.Channel != "" {
		q += ` AND channel = ?`
		args = append(args, f.Channel)
	}
	if !f.Since.IsZero() {
		q += ` AND started_at >= ?`
		args = append(args, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		q += ` AND started_at < ?`
		args = append(args, f.Until.UnixMilli())
	}
	limit := f.Limit
	if limit <= 0 || limit > 10_000 {
		limit = 100
	}
	q += ` ORDER BY started_at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list calls: %w", err)
	}
	defer rows.Close()
	var out []CallRecord
	for rows.Next() {
		r, err := scanCall(rows)
		if err != nil {
			return nil, fmt.Errorf("list calls: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list calls: %w", err)
	}
	if f.Turns {
		for i := range out {
			if out[i].Transcript, err = listTurns(ctx, db, sealer, out[i].ID, out[i].CallID); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// GetCall returns one call with its transcript, by call id (or the row's
// number). It returns ErrNoSuchCall for an unknown one.
func GetCall(ctx context.Context, db *sql.DB, sealer channels.Sealer, id string) (*CallRecord, error) {
	q := `SELECT ` + callColumns + ` FROM voice_calls WHERE call_id = ?`
	args := []any{id}
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		q += ` OR id = ? ORDER BY call_id = ? DESC LIMIT 1`
		args = append(args, n, id)
	}
	r, err := scanCall(db.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("call %q: %w", id, ErrNoSuchCall)
	}
	if err != nil {
		return nil, fmt.Errorf("get call %q: %w", id, err)
	}
	if r.Transcript, err = listTurns(ctx, db, sealer, r.ID, r.CallID); err != nil {
		return nil, err
	}
	return &r, nil
}

func listTurns(ctx context.Context, db *sql.DB, sealer channels.Sealer, row int64, callID string) ([]TurnRecord, error) {
	rows, err := db.QueryContext(ctx, `SELECT seq, source, at, vad_wait_us, asr_us, dialogue_us, tts_first_us, response_us, barged, error,
		COALESCE(key_id, ''), body FROM voice_turns WHERE call_row = ? ORDER BY seq`, row)
	if err != nil {
		return nil, fmt.Errorf("call turns: %w", err)
	}
	defer rows.Close()
	var out []TurnRecord
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	for rows.Next() {
		var t TurnRecord
		var at, vw, asr, dlg, tts, resp int64
		var keyID string
		var blob []byte
		if err := rows.Scan(&t.Seq, &t.Source, &at, &vw, &asr, &dlg, &tts, &resp, &t.Barged, &t.Error, &keyID, &blob); err != nil {
			return nil, fmt.Errorf("call turns: %w", err)
		}
		t.At = time.UnixMilli(at).UTC()
		t.VADWait, t.ASR, t.Dialogue, t.TTSFirst, t.Response = us(vw), us(asr), us(dlg), us(tts), us(resp)
		if sealer != nil && blob != nil {
			if plain, err := sealer.Open(keyID, blob, turnAAD(callID, t.Seq)); err == nil {
				var b turnBody
				if json.Unmarshal(plain, &b) == nil {
					t.Caller, t.Bot = b.Caller, b.Bot
				}
			}
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// pruneBatch bounds one retention transaction.
const pruneBatch = 500

// Prune deletes the records of calls that ended before before, their
// turns and their recordings (only files inside dir are removed; empty
// dir removes none). It returns how many calls it deleted. Calls still
// going on are kept. It does I/O and blocks.
func Prune(ctx context.Context, db *store.DB, dir string, before time.Time) (int64, error) {
	var total int64
	for {
		type victim struct {
			id   int64
			path string
		}
		var vs []victim
		err := db.Write(ctx, func(tx *sql.Tx) error {
			vs = vs[:0]
			rows, err := tx.Query(`SELECT id, recording FROM voice_calls WHERE ended_at IS NOT NULL AND started_at < ? ORDER BY id LIMIT ?`,
				before.UnixMilli(), pruneBatch)
			if err != nil {
				return err
			}
			for rows.Next() {
				var v victim
				if err := rows.Scan(&v.id, &v.path); err != nil {
					rows.Close()
					return err
				}
				vs = append(vs, v)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, v := range vs {
				if _, err := tx.Exec(`DELETE FROM voice_turns WHERE call_row = ?`, v.id); err != nil {
					return err
				}
				if _, err := tx.Exec(`DELETE FROM voice_calls WHERE id = ?`, v.id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("prune calls: %w", err)
		}
		total += int64(len(vs))
		for _, v := range vs {
			if err := removeRecording(dir, v.path); err != nil {
				return total, err
			}
		}
		if len(vs) < pruneBatch {
			return total, nil
		}
	}
}

// removeRecording removes path when it lies inside dir.
func removeRecording(dir, path string) error {
	if dir == "" || path == "" {
		return nil
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("prune recordings: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("prune recordings: %w", err)
	}
	if rel, err := filepath.Rel(absDir, abs); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return nil // not ours to delete
	}
	if err := os.Remove(abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("prune recordings: %w (check the permissions of %s)", err, dir)
	}
	return nil
}
