package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Log attribute keys.
const (
	logKeyPath      = "path"
	logKeyComponent = "component"
	logKeyVersion   = "version"
	logKeyError     = "error"
	logKeyExclusive = "exclusive"
	logKeySync      = "synchronous"
	logKeyName      = "name"
	logKeyApplied   = "applied_name"
	logKeyDuration  = "duration"
)

// Options are how a process opens the database.
type Options struct {
	// Exclusive takes a non-blocking flock on <path>.lock for as long as
	// the DB is open, so that a second daemon (or a Restore) cannot run on
	// the same database; Open fails with ErrLocked when it is held. The
	// serving daemon opens with Exclusive; CLI tools (apikey, doctor) open
	// without it while the daemon runs, which WAL allows.
	Exclusive bool
}

// DB is the zhiyin database: one writer connection fed by a single writer
// goroutine with group commit, and a pool of read-only connections. Safe for
// concurrent use. Create it with Open; Close it when done.
type DB struct {
	cfg  Config
	path string
	log  *slog.Logger
	m    *metrics

	w    *sql.DB // exactly one connection, BEGIN IMMEDIATE; used only by the writer goroutine after Open
	r    *sql.DB // read-only pool
	lock *fileLock

	// Write ↔ Close handshake: senders hold mu.RLock while they try to
	// enqueue, so that Close (mu.Lock) can close queue once no send is in
	// flight; closing unblocks senders waiting on a full queue.
	mu         sync.RWMutex
	closed     bool
	closing    chan struct{}
	queue      chan *writeReq
	writerDone chan struct{}

	// The checkpointer: its own connection, stopped by Close.
	ckpt     *sql.DB
	ckptStop chan struct{}
	ckptDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating it and its parent directory, mode 0750, when missing)
// the SQLite database at cfg.Path, which the caller has already resolved,
// applies every missing migration of sets in order, and starts the writer
// goroutine. It blocks for the migrations. log may be nil (no logging); reg
// may be nil (no metrics). The caller owns the DB and must Close it.
//
// Settings: WAL, synchronous per cfg (FULL by default), foreign keys on,
// busy_timeout, journal_size_limit; the writer connection begins its
// transactions IMMEDIATE; the read pool opens mode=ro with query_only.
//
// Errors: *LockedError (ErrLocked) with opts.Exclusive when another process
// holds the lock; ErrSchemaTooNew when the database was written by a newer
// zhiyin; ErrInvalidMigrations for a malformed set.
func Open(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer, opts Options, sets ...MigrationSet) (*DB, error) {
	if err := config.Validate(&cfg); err != nil {
		return nil, fmt.Errorf("open database: storage config: %w", err)
	}
	if cfg.Path == "" {
		return nil, errors.New("open database: storage.path is empty")
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", cfg.Path, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &DB{cfg: cfg, path: path, log: log.With(logKeyPath, path)}
	if err := d.open(ctx, reg, opts, sets); err != nil {
		if cerr := d.Close(); cerr != nil {
			d.log.Warn("close half-opened database", logKeyError, cerr)
		}
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return d, nil
}

func (d *DB) open(ctx context.Context, reg prometheus.Registerer, opts Options, sets []MigrationSet) error {
	if err := os.MkdirAll(filepath.Dir(d.path), 0o750); err != nil {
		return fmt.Errorf("create database directory: %w", err)
	}
	if opts.Exclusive {
		l, err := acquireLock(d.path)
		if err != nil {
			return err
		}
		d.lock = l
	}
	m, err := newMetrics(reg)
	if err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	d.m = m

	// The writer never checkpoints inside a commit (a checkpoint there
	// stalls every queued write for its whole length); the checkpointer
	// goroutine does it beside the writer.
	d.w = sql.OpenDB(newConnector(writerDSN(d.path, d.cfg), d.cfg, "PRAGMA wal_autocheckpoint = 0"))
	d.w.SetMaxOpenConns(1)
	d.w.SetMaxIdleConns(1)
	d.w.SetConnMaxLifetime(0)
	d.w.SetConnMaxIdleTime(0)
	var mode string
	if err := d.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return mapErr(err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, not wal: the file system must support shared memory (local disk, not NFS)", mode)
	}
	if err := d.migrate(ctx, sets); err != nil {
		return err
	}
	if err := adoptOwner(d.path); err != nil {
		d.log.Warn("cannot give the database files their owner", logKeyError, err)
	}

	d.r = sql.OpenDB(newConnector(readerDSN(d.path, d.cfg), d.cfg))
	d.r.SetMaxOpenConns(d.cfg.ReadConnections)
	d.r.SetMaxIdleConns(d.cfg.ReadConnections)
	if err := d.r.PingContext(ctx); err != nil {
		return fmt.Errorf("open read pool: %w", mapErr(err))
	}

	d.closing = make(chan struct{})
	d.queue = make(chan *writeReq, d.cfg.GroupCommit.QueueSize)
	d.writerDone = make(chan struct{})
	go d.runWriter()
	d.ckpt = sql.OpenDB(newConnector(writerDSN(d.path, d.cfg), d.cfg, "PRAGMA wal_autocheckpoint = 0"))
	d.ckpt.SetMaxOpenConns(1)
	d.ckptStop, d.ckptDone = make(chan struct{}), make(chan struct{})
	go d.runCheckpointer()
	d.log.Info("database open", logKeyExclusive, opts.Exclusive, logKeySync, d.cfg.Synchronous)
	return nil
}

// Path returns the absolute path of the database file.
func (d *DB) Path() string { return d.path }

// Read returns the read-only connection pool for queries. The pool is owned
// by the DB (do not Close it) and is safe for concurrent use; statements that
// write fail on it. A reader sees every Write that has returned. After
// Close its queries fail with "sql: database is closed".
func (d *DB) Read() *sql.DB { return d.r }

// Ping proves the database is usable: a no-op write goes through the writer
// queue and a BEGIN IMMEDIATE/COMMIT (so it waits behind queued writes and
// fails when the writer is stuck or the write lock cannot be had), and a
// read connection answers. It blocks until then or until ctx ends. Meant for
// the systemd watchdog and /readyz.
func (d *DB) Ping(ctx context.Context) error {
	err := d.Write(ctx, func(tx *sql.Tx) error {
		var one int
		return tx.QueryRow(`SELECT 1`).Scan(&one)
	})
	if err != nil {
		return fmt.Errorf("ping writer: %w", err)
	}
	if err := d.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping readers: %w", mapErr(err))
	}
	return nil
}

// Close stops accepting writes (Write then returns ErrClosed), runs every
// write already queued, checkpoints the WAL into the database file
// (wal_checkpoint(TRUNCATE)), closes the connections and releases the lock.
// It blocks until a running fn returns. Nil-safe and idempotent; it also
// cleans up a DB whose Open failed half-way.
func (d *DB) Close() error {
	if d == nil {
		return nil
	}
	d.closeOnce.Do(func() { d.closeErr = d.close() })
	return d.closeErr
}

func (d *DB) close() error {
	// Wake senders blocked on a full queue, then wait (Lock) until no
	// sender is inside its select; every later one sees closed.
	if d.closing != nil {
		close(d.closing)
	}
	d.mu.Lock()
	d.closed = true
	if d.queue != nil {
		close(d.queue)
	}
	d.mu.Unlock()
	if d.writerDone != nil {
		<-d.writerDone
	}
	if d.ckptDone != nil {
		close(d.ckptStop)
		<-d.ckptDone
	}
	if d.ckpt != nil {
		_ = d.ckpt.Close()
	}

	var errs []error
	if d.r != nil {
		if err := d.r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close read pool: %w", err))
		}
	}
	if d.w != nil {
		if d.writerDone != nil { // fully opened: fold the WAL back
			var busy, logFrames, checkpointed int
			err := d.w.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("checkpoint: %w", mapErr(err)))
			case busy != 0:
				// Another process reads or writes (a CLI beside the
				// daemon): its last connection checkpoints instead.
				d.log.Debug("checkpoint on close left the WAL to another process")
			}
		}
		if err := d.w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close writer: %w", err))
		}
	}
	if err := d.lock.release(); err != nil {
		errs = append(errs, err)
	}
	d.m.unregister()
	if d.writerDone != nil {
		d.log.Info("database closed")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close database %s: %w", d.path, err)
	}
	return nil
}

// isClosed reports whether Close has begun.
func (d *DB) isClosed() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.closed || d.closing == nil
}

// connector opens go-sqlite3 connections without registering a driver name
// (sql.Register is process-global).
type connector struct {
	drv *sqlite3.SQLiteDriver
	dsn string
}

var _ driver.Connector = connector{}

// newConnector returns a connector whose connections also run pragmas
// (statements without a DSN parameter in go-sqlite3).
func newConnector(dsn string, cfg Config, pragmas ...string) connector {
	pragmas = append([]string{fmt.Sprintf("PRAGMA journal_size_limit = %d", int64(cfg.JournalSizeLimit))}, pragmas...)
	return connector{dsn: dsn, drv: &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			for _, p := range pragmas {
				if _, err := c.Exec(p, nil); err != nil {
					return err
				}
			}
			return nil
		},
	}}
}

// Connect implements driver.Connector.
func (c connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }

// Driver implements driver.Connector.
func (c connector) Driver() driver.Driver { return c.drv }

// fileURI turns a path into an SQLite file: URI, escaping the characters the
// URI parser gives a meaning to.
func fileURI(path string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(filepath.Clean(path))
}

// writerDSN is the writer connection: WAL, IMMEDIATE transactions so that a
// batch takes the write lock at BEGIN (never a deadlocking upgrade later).
func writerDSN(path string, cfg Config) string {
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", fmt.Sprint(cfg.BusyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "1")
	q.Set("_synchronous", strings.ToUpper(cfg.Synchronous))
	q.Set("_stmt_cache_size", stmtCacheSize)
	return fileURI(path) + "?" + q.Encode()
}

// readerDSN is a pool connection: read-only at the file level and query_only.
func readerDSN(path string, cfg Config) string {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_query_only", "1")
	q.Set("_busy_timeout", fmt.Sprint(cfg.BusyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "1")
	q.Set("_stmt_cache_size", stmtCacheSize)
	return fileURI(path) + "?" + q.Encode()
}

// stmtCacheSize is the number of prepared statements each connection keeps
// (go-sqlite3's statement cache): the hot statements of every turn are
// parsed once per connection, not once per execution.
const stmtCacheSize = "128"

// mapErr adds the store's sentinels to SQLite errors: busy/locked → ErrBusy,
// full → ErrFull, corrupt → ErrCorrupt, not a database → ErrNotDatabase.
// Other errors come back unchanged; the sqlite3.Error stays reachable with
// errors.As.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{ErrBusy, ErrFull, ErrCorrupt, ErrNotDatabase} {
		if errors.Is(err, s) {
			return err
		}
	}
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code {
	case sqlite3.ErrBusy, sqlite3.ErrLocked:
		return fmt.Errorf("%w: %w", ErrBusy, err)
	case sqlite3.ErrFull:
		return fmt.Errorf("%w: %w", ErrFull, err)
	case sqlite3.ErrCorrupt:
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	case sqlite3.ErrNotADB:
		return fmt.Errorf("%w: %w", ErrNotDatabase, err)
	}
	return err
}

// Checkpointing. The WAL is copied back into the database file beside the
// writer, never inside its commits: a PASSIVE checkpoint every
// checkpointInterval (it takes no lock a writer or reader waits for), and a
// RESTART one, which briefly waits for the writer, only when the WAL has
// grown past walRestartBytes because readers kept PASSIVE ones from
// finishing.
const (
	checkpointInterval = 250 * time.Millisecond
	walRestartBytes    = 256 << 20
)

func (d *DB) runCheckpointer() {
	defer close(d.ckptDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-d.ckptStop:
			return
		case <-t.C:
		}
		mode := "PASSIVE"
		if fi, err := os.Stat(d.path + "-wal"); err == nil && fi.Size() > walRestartBytes {
			mode = "RESTART"
		}
		if _, _, err := d.Checkpoint(context.Background(), mode); err != nil {
			d.log.Warn("WAL checkpoint failed; retrying", logKeyError, err)
		}
	}
}

// Checkpoint runs PRAGMA wal_checkpoint(mode) (PASSIVE, FULL, RESTART or
// TRUNCATE) on the checkpointer's connection and returns the frames in the
// WAL and those copied into the database file. The daemon's checkpointer
// calls it; tests and tools may too.
func (d *DB) Checkpoint(ctx context.Context, mode string) (walFrames, checkpointed int, err error) {
	switch mode {
	case "PASSIVE", "FULL", "RESTART", "TRUNCATE":
	default:
		return 0, 0, fmt.Errorf("checkpoint mode %q: use PASSIVE, FULL, RESTART or TRUNCATE", mode)
	}
	if d.ckpt == nil {
		return 0, 0, ErrClosed
	}
	var busy int
	if err := d.ckpt.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &walFrames, &checkpointed); err != nil {
		return 0, 0, fmt.Errorf("checkpoint: %w", mapErr(err))
	}
	return walFrames, checkpointed, nil
}
