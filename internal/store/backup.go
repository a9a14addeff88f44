package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sqliteHeader starts every SQLite 3 database file.
const sqliteHeader = "SQLite format 3\x00"

// BackupOption changes how Backup and BackupFile install the backup.
type BackupOption func(*backupOptions)

type backupOptions struct {
	overwrite bool
}

// WithOverwrite lets Backup and BackupFile replace an existing dst (the
// replacement is atomic: dst is either the old file or the complete new
// backup). Without it an existing dst is an ErrExists error.
func WithOverwrite() BackupOption {
	return func(o *backupOptions) { o.overwrite = true }
}

// Backup writes a consistent snapshot of the open database to dst while
// writes go on (VACUUM INTO from one read transaction: it sees exactly the
// writes committed before it began). The snapshot goes to a temporary file
// next to dst, is integrity-checked, switched to a rollback journal (a
// single self-contained file), fsynced and then moved to dst atomically;
// on any error dst is untouched and the temporary file removed. The
// directory of dst must exist. It blocks for the whole copy; ctx interrupts
// it. Errors: ErrExists when dst exists and WithOverwrite was not given,
// ErrClosed after Close, ErrFull when the disk filled, ErrCorrupt when the
// copy failed its check.
func (d *DB) Backup(ctx context.Context, dst string, opts ...BackupOption) error {
	if d == nil || d.isClosed() {
		return ErrClosed
	}
	if err := backupFile(ctx, d.path, dst, opts); err != nil {
		return fmt.Errorf("backup %s to %s: %w", d.path, dst, err)
	}
	return nil
}

// BackupFile is Backup for a process that has not opened the database (the
// `zhiyin backup` command while the daemon serves): it opens dbPath with one
// read-only connection, takes no lock and applies no migration. dbPath must
// exist.
func BackupFile(ctx context.Context, dbPath, dst string, opts ...BackupOption) error {
	if err := backupFile(ctx, dbPath, dst, opts); err != nil {
		return fmt.Errorf("backup %s to %s: %w", dbPath, dst, err)
	}
	return nil
}

func backupFile(ctx context.Context, dbPath, dst string, opts []BackupOption) error {
	if err := checkHeader(dbPath); err != nil {
		return err
	}
	db := openReadOnly(dbPath)
	err := backupTo(ctx, db, dbPath, dst, opts)
	db.Close()
	_ = adoptOwner(dbPath) // best effort; see adoptOwner
	return err
}

// openReadOnly opens one read-only connection to path (never creating it).
// Unlike the read pool it is not query_only, which would forbid VACUUM INTO
// from writing the snapshot file (mode=ro still keeps the database itself
// read-only).
func openReadOnly(path string) *sql.DB {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_busy_timeout", "5000")
	db := sql.OpenDB(newConnector(fileURI(path)+"?"+q.Encode(), DefaultConfig()))
	db.SetMaxOpenConns(1)
	return db
}

func backupTo(ctx context.Context, src *sql.DB, dbPath, dst string, opts []BackupOption) (err error) {
	var o backupOptions
	for _, opt := range opts {
		opt(&o)
	}
	dst, err = filepath.Abs(dst)
	if err != nil {
		return err
	}
	if same, _ := sameFile(dst, dbPath); same || dst == dbPath {
		return errors.New("the backup destination is the database itself: choose another path")
	}
	dir := filepath.Dir(dst)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("backup directory %s does not exist: create it first", dir)
	}
	if !o.overwrite {
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("%w: %s: choose a new name or allow overwriting", ErrExists, dst)
		}
	}

	// VACUUM INTO wants a file that does not exist or is empty.
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	if err := f.Close(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			removeDB(tmp)
		}
	}()
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return fmt.Errorf("snapshot: %w", mapErr(err))
	}
	if err := finishBackup(ctx, tmp); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if o.overwrite {
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("install backup: %w", err)
		}
	} else {
		// link(2) fails when dst appeared meanwhile: no clobbering race.
		if err := os.Link(tmp, dst); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: %s: choose a new name or allow overwriting", ErrExists, dst)
			}
			return fmt.Errorf("install backup: %w", err)
		}
		if err := os.Remove(tmp); err != nil {
			return fmt.Errorf("remove temporary file: %w", err)
		}
	}
	return syncDir(dir)
}

// finishBackup makes the snapshot a self-contained rollback-journal file and
// checks it.
func finishBackup(ctx context.Context, path string) error {
	db := sql.OpenDB(newConnector(fileURI(path)+"?_busy_timeout=5000", DefaultConfig()))
	db.SetMaxOpenConns(1)
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode = DELETE`).Scan(&mode); err != nil {
		return fmt.Errorf("check snapshot: %w", mapErr(err))
	}
	if err := integrityCheck(ctx, db); err != nil {
		return fmt.Errorf("check snapshot: %w", err)
	}
	return db.Close()
}

// IntegrityCheck opens the database at path read-only (never creating it;
// no lock, so it works while the daemon runs) and runs PRAGMA
// integrity_check. It returns nil when SQLite answers "ok"; ErrCorrupt with
// SQLite's first findings otherwise; ErrNotDatabase when path is not an
// SQLite file; an error wrapping fs.ErrNotExist when it is missing. It
// blocks for the check (seconds per GiB); ctx interrupts it.
func IntegrityCheck(ctx context.Context, path string) error {
	if err := checkHeader(path); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	db := openReadOnly(path)
	err := integrityCheck(ctx, db)
	db.Close()
	_ = adoptOwner(path) // best effort; see adoptOwner
	if err != nil {
		return fmt.Errorf("integrity check of %s: %w", path, err)
	}
	return nil
}

// integrityCheck runs PRAGMA integrity_check on db.
func integrityCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check(20)`)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return mapErr(err)
		}
		found = append(found, s)
	}
	if err := rows.Err(); err != nil {
		return mapErr(err)
	}
	if len(found) == 1 && found[0] == "ok" {
		return nil
	}
	if len(found) > 5 {
		found = append(found[:5], "…")
	}
	return fmt.Errorf("%w: %s", ErrCorrupt, strings.Join(found, "; "))
}

// checkHeader fails unless path is a regular file starting with the SQLite
// header.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist: %w", path, fs.ErrNotExist)
		}
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrNotDatabase, path)
	}
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, []byte(sqliteHeader)) {
		return fmt.Errorf("%w: %s is not an SQLite file", ErrNotDatabase, path)
	}
	return nil
}

// Restore replaces the database at dbPath with the backup src. It refuses
// (*LockedError, ErrLocked) while another process holds the database lock —
// the daemon must be stopped — and holds that lock itself meanwhile. CLI
// processes that opened the database without Options.Exclusive are not
// detected: stop them too.
//
// src is checked before anything changes: it must be a plain SQLite file
// (not a live database with a -wal beside it) that passes integrity_check
// and has schema_migrations (ErrNotDatabase otherwise), and for every set
// given its versions must not be newer than this binary knows
// (ErrSchemaTooNew). Pass every MigrationSet the binary has, as for Open;
// components the sets do not name are not checked. The check runs on a copy
// made next to dbPath, and that copy is what gets installed.
//
// The old database is kept as <dbPath>.pre-restore-<UTC timestamp> (its WAL
// first checkpointed into it, or kept beside it as …-wal), the copy takes the
// old file's mode and owner and is renamed over dbPath atomically, and stale
// -wal/-shm files are removed. It returns the path the old database was
// kept under ("" when there was none). On error dbPath is untouched.
func Restore(ctx context.Context, src, dbPath string, sets ...MigrationSet) (kept string, err error) {
	kept, err = restore(ctx, src, dbPath, sets)
	if err != nil {
		return "", fmt.Errorf("restore %s from %s: %w", dbPath, src, err)
	}
	return kept, nil
}

func restore(ctx context.Context, src, dbPath string, sets []MigrationSet) (string, error) {
	src, err := filepath.Abs(src)
	if err != nil {
		return "", err
	}
	dbPath, err = filepath.Abs(dbPath)
	if err != nil {
		return "", err
	}
	if same, _ := sameFile(src, dbPath); same || src == dbPath {
		return "", errors.New("the backup is the database itself")
	}
	known, err := loadSets(sets)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(dbPath)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("create database directory: %w", err)
	}
	lock, err := acquireLock(dbPath)
	if err != nil {
		return "", err
	}
	defer lock.release()

	if err := checkHeader(src); err != nil {
		return "", err
	}
	if fi, err := os.Stat(src + "-wal"); err == nil && fi.Size() > 0 {
		return "", fmt.Errorf("%s-wal exists: %s is a live database, not a backup; make one with `zhiyin backup`", src, src)
	}

	tmp, err := copyToTemp(ctx, src, dir, "."+filepath.Base(dbPath)+".restore-*")
	if err != nil {
		return "", err
	}
	installed := false
	defer func() {
		if !installed {
			removeDB(tmp)
		}
	}()
	if err := verifyBackup(ctx, tmp, src, sets, known); err != nil {
		return "", err
	}
	if err := adoptModeAndOwner(tmp, dbPath); err != nil {
		return "", err
	}
	if err := syncFile(tmp); err != nil {
		return "", err
	}

	kept := ""
	if _, err := os.Lstat(dbPath); err == nil {
		kept, err = keepOld(ctx, dbPath)
		if err != nil {
			return "", err
		}
	}
	for _, side := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(dbPath + side); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("remove stale %s%s: %w", dbPath, side, err)
		}
	}
	if err := os.Rename(tmp, dbPath); err != nil {
		return "", fmt.Errorf("install restored database: %w", err)
	}
	installed = true
	_ = adoptOwner(dbPath) // best effort (see adoptOwner): the lock file Restore may have created
	return kept, syncDir(dir)
}

// verifyBackup checks the copy of a backup before it is installed.
func verifyBackup(ctx context.Context, tmp, src string, sets []MigrationSet, known map[string][]migration) error {
	db := sql.OpenDB(newConnector(fileURI(tmp)+"?_busy_timeout=5000", DefaultConfig()))
	db.SetMaxOpenConns(1)
	defer db.Close()
	if err := integrityCheck(ctx, db); err != nil {
		return fmt.Errorf("the backup is damaged, use another one: %w", err)
	}
	var n int
	if err := db.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s has no schema_migrations table", ErrNotDatabase, src)
	}
	for _, s := range sets {
		applied, highest, err := appliedVersions(ctx, db, s.Component)
		if err != nil {
			return err
		}
		if err := checkVersions(s.Component, applied, highest, known[s.Component]); err != nil {
			return err
		}
	}
	// A backup made by Backup is in rollback-journal mode; one copied from
	// a WAL database is switched back so that no -wal is left behind.
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode = DELETE`).Scan(&mode); err != nil {
		return mapErr(err)
	}
	return db.Close()
}

// keepOld keeps the current database as <dbPath>.pre-restore-<timestamp>
// (a hard link, so dbPath stays in place until the new file is renamed over
// it) and returns that name.
func keepOld(ctx context.Context, dbPath string) (string, error) {
	// Fold a WAL left by a crashed daemon into the file; a corrupt old
	// database may refuse, then its -wal is kept beside the copy.
	old := sql.OpenDB(newConnector(fileURI(dbPath)+"?_busy_timeout=5000", DefaultConfig()))
	old.SetMaxOpenConns(1)
	_, _ = old.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`) // best effort, see above
	_ = old.Close()

	base := dbPath + ".pre-restore-" + time.Now().UTC().Format("20060102T150405Z")
	kept := base
	for i := 1; ; i++ {
		err := os.Link(dbPath, kept)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", fmt.Errorf("keep the old database as %s: %w", kept, err)
		}
		kept = base + "-" + strconv.Itoa(i)
	}
	if fi, err := os.Stat(dbPath + "-wal"); err == nil && fi.Size() > 0 {
		if err := os.Link(dbPath+"-wal", kept+"-wal"); err != nil {
			return "", fmt.Errorf("keep the old write-ahead log: %w", err)
		}
	}
	return kept, nil
}

// adoptModeAndOwner gives path the mode and owner of the database it replaces, or
// for a first install mode 0640 and the owner of its directory, so that the
// daemon's user can open a database restored by root.
func adoptModeAndOwner(path, dbPath string) error {
	ref, mode := dbPath, os.FileMode(0o640)
	fi, err := os.Stat(dbPath)
	if err == nil {
		mode = fi.Mode().Perm()
	} else {
		ref = filepath.Dir(dbPath)
		if fi, err = os.Stat(ref); err != nil {
			return err
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("set mode of restored database: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	mine, err := os.Stat(path)
	if err != nil {
		return err
	}
	if ms, ok := mine.Sys().(*syscall.Stat_t); ok && ms.Uid == st.Uid && ms.Gid == st.Gid {
		return nil
	}
	if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give the restored database the owner of %s (run restore as root or as that user): %w", ref, err)
	}
	return nil
}

// copyToTemp copies src into a new temporary file in dir and fsyncs it.
func copyToTemp(ctx context.Context, src, dir, pattern string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	name := out.Name()
	fail := func(err error) (string, error) {
		out.Close()
		os.Remove(name)
		return "", err
	}
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return fail(fmt.Errorf("copy backup: %w", err))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fail(fmt.Errorf("read backup: %w", rerr))
		}
	}
	if err := out.Sync(); err != nil {
		return fail(fmt.Errorf("sync copy: %w", err))
	}
	if err := out.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// removeDB removes a database file and its side files, ignoring absence.
func removeDB(path string) {
	for _, side := range []string{"", "-journal", "-wal", "-shm"} {
		_ = os.Remove(path + side) // cleanup after an error that is already being returned
	}
}

// syncFile fsyncs a file by name.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return f.Close()
}

// sameFile reports whether a and b name the same existing file.
func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}
