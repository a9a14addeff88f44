package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MigrationSet is the schema of one component: the files NNNN_name.sql at
// the root of FS (embed them with `//go:embed migrations/*.sql` and pass
// fs.Sub(files, "migrations")). Versions start at 0001 and have no gaps or
// duplicates; files not ending in .sql are ignored. Each file runs in its own
// transaction together with its row in schema_migrations, with foreign keys
// on, and must leave `PRAGMA foreign_key_check` empty. A file therefore must
// not contain statements that cannot run in a transaction (VACUUM, PRAGMA
// journal_mode, PRAGMA foreign_keys).
//
// An applied migration is never edited: add a new file instead.
type MigrationSet struct {
	// Component names the owner, e.g. "channels" or "dialogue"; it is the
	// key in schema_migrations. Lowercase letters, digits, '_', '-', '.'.
	Component string
	// FS holds the migration files at its root.
	FS fs.FS
}

// migration is one parsed file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrationsTable is created by Open before any set runs. It is not itself a
// migration: it is what records them.
const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	component  TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	applied_at TEXT    NOT NULL,
	PRIMARY KEY (component, version)
) WITHOUT ROWID`

var (
	migrationFile = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)
	componentName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
)

// load reads and checks the set's files, sorted by version.
func (s MigrationSet) load() ([]migration, error) {
	if !componentName.MatchString(s.Component) {
		return nil, fmt.Errorf("%w: component name %q: use lowercase letters, digits, '_', '-', '.'", ErrInvalidMigrations, s.Component)
	}
	if s.FS == nil {
		return nil, fmt.Errorf("%w: component %s has no FS", ErrInvalidMigrations, s.Component)
	}
	entries, err := fs.ReadDir(s.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("%w: component %s: read migrations: %v", ErrInvalidMigrations, s.Component, err)
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		m := migrationFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("%w: component %s: file %s: name it NNNN_lowercase_name.sql", ErrInvalidMigrations, s.Component, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v == 0 {
			return nil, fmt.Errorf("%w: component %s: file %s: versions start at 0001", ErrInvalidMigrations, s.Component, e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("%w: component %s: version %04d appears twice (%s, %s)", ErrInvalidMigrations, s.Component, v, prev, e.Name())
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(s.FS, e.Name())
		if err != nil {
			return nil, fmt.Errorf("%w: component %s: read %s: %v", ErrInvalidMigrations, s.Component, e.Name(), err)
		}
		if strings.TrimSpace(string(body)) == "" {
			return nil, fmt.Errorf("%w: component %s: file %s is empty", ErrInvalidMigrations, s.Component, e.Name())
		}
		ms = append(ms, migration{version: v, name: m[2], sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("%w: component %s: version %04d is missing (next is %04d)", ErrInvalidMigrations, s.Component, i+1, m.version)
		}
	}
	return ms, nil
}

// loadSets loads every set and checks that components are unique.
func loadSets(sets []MigrationSet) (map[string][]migration, error) {
	out := make(map[string][]migration, len(sets))
	for _, s := range sets {
		if _, dup := out[s.Component]; dup {
			return nil, fmt.Errorf("%w: component %s is given twice", ErrInvalidMigrations, s.Component)
		}
		ms, err := s.load()
		if err != nil {
			return nil, err
		}
		out[s.Component] = ms
	}
	return out, nil
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// appliedVersions returns the versions recorded for component (version →
// name) and the highest of them.
func appliedVersions(ctx context.Context, q querier, component string) (map[int]string, int, error) {
	rows, err := q.QueryContext(ctx, `SELECT version, name FROM schema_migrations WHERE component = ?`, component)
	if err != nil {
		return nil, 0, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]string{}
	highest := 0
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return nil, 0, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied[v] = name
		highest = max(highest, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, highest, nil
}

// checkVersions refuses a database whose recorded versions of component are
// newer than known, or have holes (the table was edited by hand).
func checkVersions(component string, applied map[int]string, highest int, known []migration) error {
	if highest > len(known) {
		return fmt.Errorf("%w: component %s is at version %d but this zhiyin knows only up to %d: "+
			"the database was written by a newer zhiyin; install that version again or restore a backup taken before the upgrade",
			ErrSchemaTooNew, component, highest, len(known))
	}
	for v := 1; v <= highest; v++ {
		if _, ok := applied[v]; !ok {
			return fmt.Errorf("schema_migrations of component %s has version %d but not %d: "+
				"the table was edited by hand; restore a backup", component, highest, v)
		}
	}
	return nil
}

// migrate creates schema_migrations and applies every missing migration of
// every set, in the given order of sets and in version order within a set.
// It runs on the writer connection before the writer goroutine starts.
func (d *DB) migrate(ctx context.Context, sets []MigrationSet) error {
	known, err := loadSets(sets)
	if err != nil {
		return err
	}
	if _, err := d.w.ExecContext(ctx, migrationsTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", mapErr(err))
	}
	for _, s := range sets {
		ms := known[s.Component]
		applied, highest, err := appliedVersions(ctx, d.w, s.Component)
		if err != nil {
			return err
		}
		if err := checkVersions(s.Component, applied, highest, ms); err != nil {
			return err
		}
		for _, m := range ms {
			if name, ok := applied[m.version]; ok {
				if name != m.name {
					d.log.Warn("applied migration has a different name than the file",
						logKeyComponent, s.Component, logKeyVersion, m.version, logKeyApplied, name, logKeyName, m.name)
				}
				continue
			}
			start := time.Now()
			if err := d.applyMigration(ctx, s.Component, m); err != nil {
				return fmt.Errorf("migrate %s to version %04d (%s): %w", s.Component, m.version, m.name, err)
			}
			d.log.Info("applied migration", logKeyComponent, s.Component, logKeyVersion, m.version,
				logKeyName, m.name, logKeyDuration, time.Since(start))
		}
	}
	return nil
}

// applyMigration runs one file and records it in one transaction.
func (d *DB) applyMigration(ctx context.Context, component string, m migration) (err error) {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the error that matters is err
		}
	}()
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return mapErr(err)
	}
	if err := foreignKeyCheck(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations(component, version, name, applied_at) VALUES (?, ?, ?, ?)`,
		component, m.version, m.name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return mapErr(err)
	}
	if err := tx.Commit(); err != nil {
		return mapErr(err)
	}
	return nil
}

// foreignKeyCheck fails when the migration left rows violating a foreign key.
func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("foreign_key_check: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		var table string
		var rowid sql.NullInt64
		var parent string
		var fkid int
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("foreign_key_check: %w", err)
		}
		return fmt.Errorf("rows of table %s violate a foreign key to %s (rowid %d)", table, parent, rowid.Int64)
	}
	return rows.Err()
}
