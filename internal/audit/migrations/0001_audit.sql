-- Audit trail of administrative acts (key changes, data-subject exports and
-- deletions, retention). It never holds message text. Times are unix
-- milliseconds; detail is a JSON object of short strings.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL DEFAULT '',
    detail TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_at ON audit_log (at, id);
