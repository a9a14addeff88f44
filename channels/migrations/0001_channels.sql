-- The channels hub's inbox and outbox. body columns seal the message or
-- reply (JSON) with AES-256-GCM (key_id names the key); they are cleared
-- once the row is answered or sent. Times are unix milliseconds.

-- Every inbound message, once per (channel, platform dedup key): the unique
-- key is what makes a platform's redelivery a no-op.
CREATE TABLE channel_inbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    channel      TEXT    NOT NULL,
    dedup_key    TEXT    NOT NULL,
    conversation TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'rejected', 'ignored')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    key_id       TEXT,
    body         BLOB,
    session_id   TEXT    NOT NULL DEFAULT '',
    error        TEXT    NOT NULL DEFAULT '',
    received_at  INTEGER NOT NULL,
    done_at      INTEGER,
    UNIQUE (channel, dedup_key)
);
CREATE INDEX channel_inbox_pending ON channel_inbox (id) WHERE state = 'pending';
CREATE INDEX channel_inbox_received ON channel_inbox (received_at);

-- Reply parts on their way out. state: queued (waiting or retrying),
-- sending (an attempt may have reached a platform that does not
-- deduplicate), sent, dead (the dead letters: out of attempts, refused, or
-- unknown after a crash), retried (a dead letter re-queued as a new row),
-- dropped.
CREATE TABLE channel_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    key          TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    conversation TEXT    NOT NULL,
    inbox_id     INTEGER,
    part         INTEGER NOT NULL DEFAULT 1,
    parts        INTEGER NOT NULL DEFAULT 1,
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'dead', 'retried', 'dropped')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    platform_id  TEXT    NOT NULL DEFAULT '',
    last_error   TEXT    NOT NULL DEFAULT '',
    key_id       TEXT,
    body         BLOB
);
CREATE INDEX channel_outbox_open ON channel_outbox (channel, id) WHERE state IN ('queued', 'sending');
CREATE INDEX channel_outbox_dead ON channel_outbox (id) WHERE state = 'dead';
CREATE INDEX channel_outbox_created ON channel_outbox (created_at);

-- The dead-letter table as operators see it.
CREATE VIEW channel_dead_letters AS
    SELECT id, key, channel, conversation, inbox_id, part, parts, attempts, created_at, last_error
    FROM channel_outbox WHERE state = 'dead';
