// Package store is zhiyin's SQLite plumbing: it opens the one database file
// (github.com/mattn/go-sqlite3 through database/sql), applies the schema
// migrations each component embeds, funnels every write through a single
// writer goroutine with group commit, and backs the file up, restores and
// checks it. It knows no table but its own schema_migrations; the components
// own their schemas and queries.
//
// # Contract
//
//   - Open(ctx, cfg, log, reg, opts, sets...) opens the file in WAL mode with
//     synchronous=FULL (storage.synchronous), foreign keys, busy_timeout and
//     journal_size_limit; one writer connection (BEGIN IMMEDIATE) and a pool
//     of read-only connections (Read). The daemon opens with
//     Options{Exclusive: true}: a flock on <path>.lock holding its pid keeps a
//     second daemon and Restore away (ErrLocked). CLI tools open without it
//     beside the running daemon.
//   - Migrations: each component passes a MigrationSet of NNNN_name.sql files;
//     Open applies the missing ones in order, each in its own transaction with
//     its schema_migrations row. A database newer than the binary is refused
//     (ErrSchemaTooNew), never modified.
//   - Write(ctx, fn) is the only way to write. It returns nil only after the
//     transaction holding fn is durably committed; writes from many goroutines
//     share one transaction and one fsync (group commit), each isolated in a
//     SAVEPOINT so that one failing fn fails alone. SQLite busy and disk-full
//     errors wrap ErrBusy and ErrFull (HTTP answers 503 with Retry-After).
//     The queue is bounded (storage.group_commit.queue_size); a full queue
//     blocks the caller until its ctx ends.
//   - Ping goes through the writer queue (systemd watchdog, /readyz).
//   - Close drains queued writes, checkpoints the WAL into the file, closes
//     and releases the lock. Nil-safe and idempotent.
//   - Backup/BackupFile take an online, consistent snapshot (VACUUM INTO),
//     check it and install it atomically; Restore verifies a backup and swaps
//     it in with the daemon stopped, keeping the old file as
//     <db>.pre-restore-<timestamp>; IntegrityCheck serves `zhiyin doctor`.
//
// # What it must not do
//
// It never writes outside the writer goroutine once open, never runs a
// migration it was not given, never logs row contents (customer text), and
// keeps no package-level state: two DBs in one process are independent (a
// second Open of the same file with Exclusive fails even in-process).
package store
