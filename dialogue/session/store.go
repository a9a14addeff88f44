package session

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"io/fs"
	"strconv"
	"time"

	"github.com/zhiyin/zhiyin/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationComponent names this package's migrations in the version table.
const MigrationComponent = "dialogue"

// Migrations returns the package's numbered SQL migrations (NNNN_name.sql at
// the root of the returned FS), for a store.MigrationSet.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// Key identifies a conversation: who talks to zhiyin where.
type Key struct {
	Channel, Conversation, User string
}

// Status is the life-cycle state of a session.
type Status string

// Session statuses.
const (
	// Active sessions take new turns.
	Active Status = "active"
	// Expired sessions timed out; the engine may resume one (ResumedFrom).
	Expired Status = "expired"
	// Closed sessions were ended on purpose.
	Closed Status = "closed"
)

// Hand-off states of a session (Session.Handoff).
const (
	HandoffNone    = ""
	HandoffWaiting = "waiting"
	HandoffAgent   = "agent"
)

// Hand-off entry states (HandoffEntry.Status).
const (
	HandoffStatusWaiting  = "waiting"
	HandoffStatusAgent    = "agent"
	HandoffStatusReleased = "released"
)

// Session is one conversation as the engine sees it.
type Session struct {
	ID     string
	Key    Key
	Client string
	Status Status
	// Handoff is "", "waiting" or "agent".
	Handoff string
	// State is the engine's opaque JSON (slots, dialogue stack, counters).
	// It is sealed at rest.
	State []byte
	// Version is 0 for a session never saved; SaveTx bumps it and refuses
	// a save whose Version is not the stored one (optimistic locking).
	Version   int64
	Turns     int // turns ever taken (the seq of the last one)
	CreatedAt time.Time
	UpdatedAt time.Time
	// ResumedFrom is the id of the expired session this one continues.
	ResumedFrom string
}

// Turn is one exchange: what the customer said and what zhiyin answered.
// User and Replies are sealed together at rest; the NLU result is not.
type Turn struct {
	SessionID  string
	Seq        int
	At         time.Time
	User       string
	Replies    []string
	Intent     string
	Confidence float64
	Lane       string
}

// HandoffEntry is the hand-off of a session to a human agent.
type HandoffEntry struct {
	SessionID string
	// Status is "waiting", "agent" or "released".
	Status string
	Reason string
	Agent  string
	// Summary is opaque JSON for the agent (recent intents, slots); sealed
	// at rest.
	Summary   []byte
	CreatedAt time.Time
	UpdatedAt time.Time
	// Key is the session's key; filled by reads, ignored by PutHandoffTx.
	Key Key
}

// Options tune a Store.
type Options struct {
	// HistoryLimit is the number of turns kept per session; SaveTx
	// deletes older ones. 0 means DefaultHistoryLimit.
	HistoryLimit int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultHistoryLimit is the turns kept per session when
// Options.HistoryLimit is 0.
const DefaultHistoryLimit = 200

// batchRows bounds the rows one maintenance transaction touches, so that
// an export, deletion or re-encryption never holds the single writer long.
const batchRows = 500

// Store keeps sessions, their turns and hand-offs in the zhiyin database,
// sealing customer text with a Keyring. Writes happen in the caller's
// transaction (the …Tx methods, inside store.DB.Write) so that a turn and
// its outbox rows commit together; reads use the read pool. Safe for
// concurrent use.
type Store struct {
	db    *store.DB
	keys  *Keyring
	limit int
	now   func() time.Time
}

// New returns a Store on db (opened with this package's Migrations) that
// seals with keys. It does no I/O.
func New(db *store.DB, keys *Keyring, opts Options) *Store {
	s := &Store{db: db, keys: keys, limit: opts.HistoryLimit, now: opts.Now}
	if s.limit <= 0 {
		s.limit = DefaultHistoryLimit
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// NewID returns a new random session id: 128 bits as 32 lowercase hex
// digits.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return hex.EncodeToString(b[:])
}

// Associated data binding each sealed value to its row: a blob copied to
// another row (or column) fails to open.
func sessionAAD(id string) []byte { return []byte("session:" + id) }
func turnAAD(id string, seq int) []byte {
	return []byte("turn:" + id + ":" + strconv.Itoa(seq))
}
func handoffAAD(id string) []byte { return []byte("handoff:" + id) }

// ms is t in unix milliseconds; fromMS is the inverse, in UTC.
func ms(t time.Time) int64         { return t.UnixMilli() }
func fromMS(v int64) time.Time     { return time.UnixMilli(v).UTC() }
func msTime(t time.Time) time.Time { return fromMS(ms(t)) }
