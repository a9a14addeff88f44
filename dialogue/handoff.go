package dialogue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/internal/store"
)

// SessionView is a session as the API shows it.
type SessionView struct {
	ID           string            `json:"session_id"`
	Channel      string            `json:"channel"`
	Conversation string            `json:"conversation"`
	User         string            `json:"user_id"`
	Client       string            `json:"-"`
	Status       string            `json:"status"`
	Handoff      string            `json:"handoff,omitempty"`
	Slots        map[string]string `json:"slots"`
	Stack        []string          `json:"stack"`
	Turns        int               `json:"turns"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
	ResumedFrom  string            `json:"resumed_from,omitempty"`
	History      []TurnView        `json:"history"`
}

// TurnView is one stored turn.
type TurnView struct {
	Seq        int       `json:"seq"`
	At         time.Time `json:"at"`
	User       string    `json:"user,omitempty"`
	Replies    []string  `json:"replies"`
	Intent     string    `json:"intent,omitempty"`
	Confidence float64   `json:"confidence,omitempty"`
	Lane       string    `json:"lane,omitempty"`
}

// View returns a session with its last history turns (newest last).
// ErrNotFound when there is none.
func View(ctx context.Context, st *session.Store, id string, history int) (*SessionView, error) {
	s, err := st.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	state, err := decodeState(s.State)
	if err != nil {
		return nil, err
	}
	turns, err := st.History(ctx, id, history)
	if err != nil {
		return nil, err
	}
	v := &SessionView{ID: s.ID, Channel: s.Key.Channel, Conversation: s.Key.Conversation, User: s.Key.User, Client: s.Client,
		Status: string(s.Status), Handoff: s.Handoff, Slots: state.Slots, Stack: state.formNames(), Turns: s.Turns,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, ResumedFrom: s.ResumedFrom, History: []TurnView{}}
	if v.Slots == nil {
		v.Slots = map[string]string{}
	}
	for _, t := range turns {
		v.History = append(v.History, TurnView{Seq: t.Seq, At: t.At, User: t.User, Replies: t.Replies, Intent: t.Intent, Confidence: t.Confidence, Lane: t.Lane})
	}
	return v, nil
}

// HandoffView is a conversation in the human queue.
type HandoffView struct {
	SessionID string          `json:"session_id"`
	Channel   string          `json:"channel"`
	User      string          `json:"user_id"`
	Status    string          `json:"status"`
	Reason    string          `json:"reason"`
	Agent     string          `json:"agent,omitempty"`
	Summary   json.RawMessage `json:"summary"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Handoffs lists the human queue: status "waiting", "agent", or "" for both.
func Handoffs(ctx context.Context, st *session.Store, status string, limit int) ([]HandoffView, error) {
	hs, err := st.Handoffs(ctx, status, limit)
	if err != nil {
		return nil, err
	}
	out := make([]HandoffView, 0, len(hs))
	for _, h := range hs {
		out = append(out, HandoffView{SessionID: h.SessionID, Channel: h.Key.Channel, User: h.Key.User, Status: h.Status,
			Reason: h.Reason, Agent: h.Agent, Summary: json.RawMessage(h.Summary), CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt})
	}
	return out, nil
}

// Handoff actions.
const (
	// ActionTake: an agent takes a waiting conversation.
	ActionTake = "take"
	// ActionRelease: the agent gives the conversation back to the bot.
	ActionRelease = "release"
)

// ChangeHandoff takes or releases a handed-off conversation in the database
// and returns what the bot should tell the customer (on release, the
// domain's handoff.released response; may be empty). ErrNotFound, or
// ErrNotInHandoff when the session is not with a human. It is what the CLI
// uses; the daemon goes through Engine.ChangeHandoff, which also keeps its
// cache right.
func ChangeHandoff(ctx context.Context, db *store.DB, st *session.Store, id, action, agent, released string, now time.Time) error {
	var status string
	switch action {
	case ActionTake:
		status = session.HandoffStatusAgent
	case ActionRelease:
		status = session.HandoffStatusReleased
	default:
		return fmt.Errorf("unknown hand-off action %q: use %s or %s", action, ActionTake, ActionRelease)
	}
	s, err := st.Get(ctx, id)
	if err != nil {
		return err
	}
	if s.Handoff == "" {
		return fmt.Errorf("%w: session %s", ErrNotInHandoff, id)
	}
	h, err := st.Handoff(ctx, id)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		return err
	}
	if h == nil {
		h = &session.HandoffEntry{SessionID: id, Key: s.Key, CreatedAt: now, Summary: []byte("{}")}
	}
	h.Status, h.Agent, h.UpdatedAt = status, agent, now
	var turn *session.Turn
	if action == ActionRelease {
		s.Handoff = ""
		if state, err := decodeState(s.State); err == nil {
			state.Fallbacks = 0
			s.State = state.encode()
		}
		if released != "" {
			turn = &session.Turn{At: now, Replies: []string{released}, Intent: "handoff_released"}
		}
	} else {
		s.Handoff = session.HandoffAgent
	}
	return db.Write(ctx, func(tx *sql.Tx) error {
		if err := st.SaveTx(tx, s, turn); err != nil {
			return err
		}
		return st.PutHandoffTx(tx, h)
	})
}

// ChangeHandoff takes or releases a conversation (admin API), holding the
// conversation's lock so that no turn runs meanwhile. It returns the text
// said to the customer on release.
func (e *Engine) ChangeHandoff(ctx context.Context, id, action, agent string) (string, error) {
	s, err := e.deps.Store.Get(ctx, id)
	if err != nil {
		return "", err
	}
	unlock, err := e.locks.lock(ctx, s.Key)
	if err != nil {
		return "", err
	}
	defer unlock()
	var text string
	if action == ActionRelease {
		if r := e.Domain().Responses[e.Domain().Handoff.Released]; r != nil {
			text, _ = r.Render(s.Key.Channel, nil, e.deps.Pick)
		}
	}
	err = ChangeHandoff(ctx, e.deps.DB, e.deps.Store, id, action, agent, text, e.deps.Now())
	e.cache.drop(s.Key)
	return text, err
}

// Forget drops cached sessions (after a data-subject deletion or a key
// rotation done through the daemon).
func (e *Engine) Forget() { e.cache.clear() }

// View returns a session with its last history turns.
func (e *Engine) View(ctx context.Context, id string, history int) (*SessionView, error) {
	return View(ctx, e.deps.Store, id, history)
}

// Handoffs lists the human queue.
func (e *Engine) Handoffs(ctx context.Context, status string, limit int) ([]HandoffView, error) {
	return Handoffs(ctx, e.deps.Store, status, limit)
}
