-- Voice call records: one row per call and one per caller turn. Times are
-- unix milliseconds, call setup milliseconds, turn stages microseconds. The turn body seals the
-- caller's and the bot's text (JSON) with the dialogue key (key_id names
-- it), AAD "voice-turn/<call_id>/<seq>". Recordings live in files; the row
-- holds the path.
CREATE TABLE voice_calls (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id        TEXT    NOT NULL UNIQUE,
    channel        TEXT    NOT NULL,
    session_id     TEXT    NOT NULL DEFAULT '',
    from_uri       TEXT    NOT NULL DEFAULT '',
    to_uri         TEXT    NOT NULL DEFAULT '',
    remote         TEXT    NOT NULL DEFAULT '',
    started_at     INTEGER NOT NULL,
    setup_ms       INTEGER NOT NULL DEFAULT 0,
    ended_at       INTEGER,
    end_label      TEXT    NOT NULL DEFAULT '',
    end_reason     TEXT    NOT NULL DEFAULT '',
    turns          INTEGER NOT NULL DEFAULT 0,
    barge_ins      INTEGER NOT NULL DEFAULT 0,
    dtmf_digits    INTEGER NOT NULL DEFAULT 0,
    dropped_frames INTEGER NOT NULL DEFAULT 0,
    rtp_received   INTEGER NOT NULL DEFAULT 0,
    rtp_lost       INTEGER NOT NULL DEFAULT 0,
    rtp_late       INTEGER NOT NULL DEFAULT 0,
    rtp_concealed  INTEGER NOT NULL DEFAULT 0,
    rtp_jitter_us  INTEGER NOT NULL DEFAULT 0,
    recording      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX voice_calls_started ON voice_calls (started_at);
CREATE INDEX voice_calls_session ON voice_calls (session_id);

CREATE TABLE voice_turns (
    call_row     INTEGER NOT NULL REFERENCES voice_calls (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    source       TEXT    NOT NULL CHECK (source IN ('speech', 'dtmf')),
    at           INTEGER NOT NULL,
    vad_wait_us  INTEGER NOT NULL DEFAULT 0,
    asr_us       INTEGER NOT NULL DEFAULT 0,
    dialogue_us  INTEGER NOT NULL DEFAULT 0,
    tts_first_us INTEGER NOT NULL DEFAULT 0,
    response_us  INTEGER NOT NULL DEFAULT 0,
    barged       INTEGER NOT NULL DEFAULT 0,
    error        TEXT    NOT NULL DEFAULT '',
    key_id       TEXT,
    body         BLOB,
    PRIMARY KEY (call_row, seq)
);
