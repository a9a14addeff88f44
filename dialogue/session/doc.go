// Package session is the dialogue engine's conversation store: sessions,
// their last turns and hand-offs to human agents, kept in the zhiyin
// SQLite database (internal/store) under the migration component
// "dialogue".
//
// # Encryption at rest
//
// Everything a customer or zhiyin said — the engine's state (slot values),
// the text of every turn and its replies, hand-off summaries — is sealed
// with AES-256-GCM before it reaches SQL, with associated data binding each
// value to its row ("session:<id>", "turn:<id>:<seq>", "handoff:<id>"), so
// a value copied to another row does not open. The keys live in a key file
// outside the database (Keyring): one `<id> <base64 of 32 bytes>` a line,
// the last one active, mode 0600 (0640 allowed). Rotation: AddKey; every
// process switches to the new key on Reload (SIGHUP) or within a second
// by itself; Reencrypt; then RetireKeys keeping KeyIDsInUse. Retiring a key
// that rows still use, or losing the key file, makes those rows unreadable
// for good — which is also how a deleted key shreds what it sealed.
// What stays in clear: ids, the session key (channel, conversation, user
// id), statuses, times, counters, and the NLU result of a turn (intent,
// confidence, lane), which the console and metrics need without keys.
//
// # Writes and reads
//
// The engine writes inside its own store.DB.Write transaction (SaveTx,
// ExpireTx, PutHandoffTx) so that a turn commits with its outbox rows;
// sessions are versioned and a stale save fails with ErrConflict. Reads go
// through the read pool and decrypt. Data-subject requests (ExportUser,
// DeleteUser), retention (DeleteBefore, RunRetention) and Reencrypt work in
// transactions of at most 500 rows so the engine is never held up long.
//
// # What it must not do
//
// It never writes customer text in clear to the database or to logs, never
// logs a key, and keeps no package-level state. It does not decide when a
// session expires or when to hand off: the engine does. It records no audit
// entries itself: the caller that knows who asked (internal/audit) does.
package session
