package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationComponent names this package's migrations in the version table.
const MigrationComponent = "auth"

// Migrations returns the package's numbered SQL migrations (NNNN_name.sql at
// the root of the returned FS).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// DB is what the key store needs from the database: serialized durable
// writes and a read pool. internal/store.DB satisfies it. Statements inside
// Write use no context: cancelling one would roll back the writes batched
// with it.
type DB interface {
	Write(ctx context.Context, fn func(tx *sql.Tx) error) error
	Read() *sql.DB
}

// Key is a stored API key, without its secret.
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	CreatedAt time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// KeyPrefix starts every API key, so that keys are recognisable in bearer
// headers and by secret scanners.
const KeyPrefix = "zy_"

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// KeyStore creates, lists, revokes and verifies API keys. Keys are random
// (256-bit secret) so a single SHA-256 is a sufficient hash: there is nothing
// to brute-force that a slow hash would protect. Safe for concurrent use.
type KeyStore struct {
	db  DB
	now func() time.Time

	mu   sync.Mutex
	used map[string]time.Time // key id → last use not yet written
}

// NewKeyStore returns a key store on db. It does no I/O.
func NewKeyStore(db DB) *KeyStore {
	return &KeyStore{db: db, now: time.Now, used: map[string]time.Time{}}
}

// validateName checks an operator-chosen key name.
func validateName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return fmt.Errorf("key name must be 1 to 64 characters, got %d", utf8.RuneCountInString(name))
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) && r != ' ' {
			return fmt.Errorf("key name %q contains a control or space character other than ' '", name)
		}
	}
	return nil
}

// Create makes a key and returns its plaintext, which is shown once and
// never stored.
func (s *KeyStore) Create(ctx context.Context, name string, role Role) (string, Key, error) {
	if err := validateName(name); err != nil {
		return "", Key{}, &ValidationError{err.Error()}
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", Key{}, &ValidationError{err.Error()}
	}
	var raw [8 + 32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Key{}, fmt.Errorf("create API key: %w", err)
	}
	id := keyEncoding.EncodeToString(raw[:8])[:12]
	secret := keyEncoding.EncodeToString(raw[8:])
	sum := sha256.Sum256([]byte(secret))
	now := s.now().UTC().Truncate(time.Millisecond)
	k := Key{ID: id, Name: name, Role: role, CreatedAt: now}
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM api_keys WHERE name = ? AND revoked_at IS NULL`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrDuplicateName
		}
		_, err := tx.Exec(`INSERT INTO api_keys (id, name, role, secret_sha256, created_at) VALUES (?, ?, ?, ?, ?)`,
			id, name, string(role), sum[:], now.UnixMilli())
		return err
	})
	if err != nil {
		return "", Key{}, fmt.Errorf("create API key %q: %w", name, err)
	}
	return KeyPrefix + id + "_" + secret, k, nil
}

// List returns the keys, newest first; revoked ones only when asked.
func (s *KeyStore) List(ctx context.Context, includeRevoked bool) ([]Key, error) {
	q := `SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_keys`
	if !includeRevoked {
		q += ` WHERE revoked_at IS NULL`
	}
	q += ` ORDER BY created_at DESC, id`
	rows, err := s.db.Read().QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var k Key
		var role string
		var created int64
		var used, revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Name, &role, &created, &used, &revoked); err != nil {
			return nil, fmt.Errorf("list API keys: %w", err)
		}
		k.Role, k.CreatedAt = Role(role), time.UnixMilli(created).UTC()
		k.LastUsed, k.RevokedAt = msTime(used), msTime(revoked)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return out, nil
}

func msTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

// Revoke revokes the active key with the given id or name. It takes effect
// at once: Verify reads the database on every call.
func (s *KeyStore) Revoke(ctx context.Context, idOrName string) (Key, error) {
	var k Key
	now := s.now().UTC()
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		var role string
		var created int64
		err := tx.QueryRow(`SELECT id, name, role, created_at FROM api_keys WHERE (id = ? OR name = ?) AND revoked_at IS NULL`,
			idOrName, idOrName).Scan(&k.ID, &k.Name, &role, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		k.Role, k.CreatedAt, k.RevokedAt = Role(role), time.UnixMilli(created).UTC(), &now
		_, err = tx.Exec(`UPDATE api_keys SET revoked_at = ? WHERE id = ?`, now.UnixMilli(), k.ID)
		return err
	})
	if err != nil {
		return Key{}, fmt.Errorf("revoke API key %q: %w", idOrName, err)
	}
	return k, nil
}

// ParseKey splits a presented key into its id and secret.
func ParseKey(presented string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(presented, KeyPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 12 || len(secret) != 52 {
		return "", "", false
	}
	return id, secret, true
}

// Verify checks a presented key. Errors wrap ErrInvalidCredentials for
// unknown, malformed or revoked keys; other errors are database failures.
func (s *KeyStore) Verify(ctx context.Context, presented string) (Principal, error) {
	id, secret, ok := ParseKey(presented)
	if !ok {
		return Principal{}, fmt.Errorf("%w: malformed API key", ErrInvalidCredentials)
	}
	var role string
	var hash []byte
	var revoked sql.NullInt64
	err := s.db.Read().QueryRowContext(ctx, `SELECT role, secret_sha256, revoked_at FROM api_keys WHERE id = ?`, id).Scan(&role, &hash, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, fmt.Errorf("%w: unknown API key %s", ErrInvalidCredentials, id)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("verify API key: %w", err)
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], hash) != 1 {
		return Principal{}, fmt.Errorf("%w: wrong secret for API key %s", ErrInvalidCredentials, id)
	}
	if revoked.Valid {
		return Principal{}, fmt.Errorf("%w: API key %s is revoked", ErrInvalidCredentials, id)
	}
	s.mu.Lock()
	s.used[id] = s.now()
	s.mu.Unlock()
	return Principal{Kind: KindAPIKey, ID: id, Subject: "key:" + id, Role: Role(role)}, nil
}

// FlushUsage writes the last-use times recorded since the previous flush in
// one transaction. The daemon calls it periodically and on shutdown, so that
// verifying a key never waits for a write.
func (s *KeyStore) FlushUsage(ctx context.Context) error {
	s.mu.Lock()
	used := s.used
	s.used = map[string]time.Time{}
	s.mu.Unlock()
	if len(used) == 0 {
		return nil
	}
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		for id, t := range used {
			if _, err := tx.Exec(`UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?`, t.UnixMilli(), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record API key use: %w", err)
	}
	return nil
}
