package store

import (
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the `storage:` section.
type Config struct {
	// Path of the SQLite database. Empty means <data_dir>/zhiyin.db.
	Path string `yaml:"path"`
	// BusyTimeout is how long a connection waits for a lock before failing.
	BusyTimeout time.Duration `yaml:"busy_timeout"`
	// Synchronous is "full" (every commit is fsynced: survives power loss) or
	// "normal" (survives a crash of the process, not of the machine).
	Synchronous string `yaml:"synchronous"`
	// GroupCommit bounds how many queued writes share one transaction and
	// one fsync.
	GroupCommit GroupCommitConfig `yaml:"group_commit"`
	// ReadConnections is the size of the read-only connection pool.
	ReadConnections int `yaml:"read_connections"`
	// JournalSizeLimit caps the size the write-ahead log is truncated back
	// to after a checkpoint (PRAGMA journal_size_limit); 0 truncates it to
	// nothing every time.
	JournalSizeLimit config.ByteSize `yaml:"journal_size_limit"`
}

// GroupCommitConfig is `storage.group_commit`.
type GroupCommitConfig struct {
	// MaxBatch is the most writes committed in one transaction.
	MaxBatch int `yaml:"max_batch"`
	// MaxWait is how long the writer lingers for more writes after the first
	// one of a batch arrives; 0 commits as soon as the queue is empty.
	MaxWait time.Duration `yaml:"max_wait"`
	// QueueSize bounds the writes waiting for the writer; a caller blocks
	// (until its context ends) when it is full.
	QueueSize int `yaml:"queue_size"`
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return Config{
		BusyTimeout:      5 * time.Second,
		Synchronous:      "full",
		GroupCommit:      GroupCommitConfig{MaxBatch: 256, MaxWait: 0, QueueSize: 4096},
		ReadConnections:  4,
		JournalSizeLimit: 64 << 20,
	}
}

// Validate implements config.Validatable.
func (c *Config) Validate(v *config.Validator) {
	if c.BusyTimeout < 0 {
		v.Errorf("busy_timeout", "must not be negative")
	}
	if c.Synchronous != "full" && c.Synchronous != "normal" {
		v.Errorf("synchronous", "must be full or normal, got %q", c.Synchronous)
	}
	if c.GroupCommit.MaxBatch < 1 || c.GroupCommit.MaxBatch > 10000 {
		v.Errorf("group_commit.max_batch", "must be between 1 and 10000, got %d", c.GroupCommit.MaxBatch)
	}
	if c.GroupCommit.MaxWait < 0 || c.GroupCommit.MaxWait > time.Second {
		v.Errorf("group_commit.max_wait", "must be between 0 and 1s, got %s", c.GroupCommit.MaxWait)
	}
	if c.GroupCommit.QueueSize < 1 {
		v.Errorf("group_commit.queue_size", "must be at least 1, got %d", c.GroupCommit.QueueSize)
	}
	if c.ReadConnections < 1 || c.ReadConnections > 64 {
		v.Errorf("read_connections", "must be between 1 and 64, got %d", c.ReadConnections)
	}
	if c.JournalSizeLimit < 0 {
		v.Errorf("journal_size_limit", "must not be negative, got %d", c.JournalSizeLimit)
	}
}
