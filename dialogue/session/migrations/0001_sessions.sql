-- Conversation sessions. Columns holding customer text (state, body,
-- summary) are sealed with AES-256-GCM (key_id names the key of the key
-- file); times are unix milliseconds.
CREATE TABLE sessions (
    id           TEXT    PRIMARY KEY,
    channel      TEXT    NOT NULL,
    conversation TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    client       TEXT    NOT NULL DEFAULT '',
    status       TEXT    NOT NULL CHECK (status IN ('active', 'expired', 'closed')),
    handoff      TEXT    NOT NULL DEFAULT '' CHECK (handoff IN ('', 'waiting', 'agent')),
    key_id       TEXT    NOT NULL,
    state        BLOB    NOT NULL,
    version      INTEGER NOT NULL,
    turns        INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    resumed_from TEXT    NOT NULL DEFAULT ''
);
-- Every turn updates updated_at: no index holds it (each one would be
-- rewritten per turn by the single writer). A key has few sessions to sort;
-- retention scans the table hourly.
CREATE INDEX sessions_by_key ON sessions (channel, conversation, user_id);
CREATE INDEX sessions_by_user ON sessions (user_id, id);
CREATE INDEX sessions_in_handoff ON sessions (handoff, updated_at) WHERE handoff != '';

-- The last turns of each session (Options.HistoryLimit); body seals the
-- customer's text and the replies.
CREATE TABLE turns (
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    key_id     TEXT    NOT NULL,
    body       BLOB    NOT NULL,
    intent     TEXT    NOT NULL DEFAULT '',
    confidence REAL    NOT NULL DEFAULT 0,
    lane       TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;

-- Hand-offs to a human agent, one per session.
CREATE TABLE handoffs (
    session_id TEXT    PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    status     TEXT    NOT NULL CHECK (status IN ('waiting', 'agent', 'released')),
    reason     TEXT    NOT NULL DEFAULT '',
    key_id     TEXT    NOT NULL,
    summary    BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    agent      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX handoffs_by_status ON handoffs (status, created_at);
