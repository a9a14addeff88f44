package store

import (
	"errors"
	"fmt"
)

// Sentinels of the store. Match them with errors.Is; the errors returned wrap
// them with the path or the SQLite error that caused them.
var (
	// ErrLocked is returned by Open with Options.Exclusive and by Restore
	// when another process (normally the serving daemon) holds the
	// database's lock file. The concrete error is a *LockedError naming the
	// pid.
	ErrLocked = errors.New("database is in use by another zhiyin process")

	// ErrBusy is returned by Write and Ping when SQLite reports
	// SQLITE_BUSY or SQLITE_LOCKED: another process held the write lock
	// longer than storage.busy_timeout. The write did not happen; retry
	// later (HTTP: 503 with Retry-After).
	ErrBusy = errors.New("database busy: another process holds the write lock, retry later")

	// ErrFull is returned by Write, Ping and Backup when SQLite reports
	// SQLITE_FULL: the disk (or the file size limit) is full. The write did
	// not happen; free disk space (HTTP: 503 with Retry-After).
	ErrFull = errors.New("no space left for the database: free disk space")

	// ErrClosed is returned by Write, Ping and Backup after Close began.
	ErrClosed = errors.New("database is closed")

	// ErrSchemaTooNew is returned by Open and Restore when the database
	// holds a migration version of a component newer than this binary
	// knows: the database was written by a newer zhiyin (a downgrade).
	ErrSchemaTooNew = errors.New("database schema is newer than this zhiyin")

	// ErrInvalidMigrations is returned by Open (and Restore) when a
	// MigrationSet is malformed: a bad file name, a gap or a duplicate
	// version, an empty or duplicate component. It is a programming error
	// in the owning package, not an operator error.
	ErrInvalidMigrations = errors.New("invalid migration set")

	// ErrExists is returned by Backup and BackupFile when dst already
	// exists and WithOverwrite was not given.
	ErrExists = errors.New("backup destination exists")

	// ErrNotDatabase is returned by Restore and IntegrityCheck when the
	// file is not an SQLite database, or (Restore) not a zhiyin one.
	ErrNotDatabase = errors.New("not a zhiyin database")

	// ErrCorrupt is returned by IntegrityCheck, Backup and Restore when
	// PRAGMA integrity_check reports a problem or SQLite reports the file
	// malformed or truncated.
	ErrCorrupt = errors.New("database failed its integrity check")
)

// LockedError is the error Open(Exclusive) and Restore return when another
// process holds the database lock. errors.Is(err, ErrLocked) is true.
type LockedError struct {
	// Path is the database path.
	Path string
	// PID is the process holding the lock as written in the lock file, 0
	// when it could not be read.
	PID int
}

// Error says who holds the database and what to do.
func (e *LockedError) Error() string {
	pid := "pid unknown"
	if e.PID > 0 {
		pid = fmt.Sprintf("pid %d", e.PID)
	}
	return fmt.Sprintf("database %s is in use by another zhiyin process (%s): stop it first, e.g. systemctl stop zhiyin", e.Path, pid)
}

// Is reports whether target is ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }
