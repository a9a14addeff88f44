package lanes

import (
	"fmt"
	"strings"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Lane is a priority class of work. Lower values are more urgent.
type Lane int

// The lanes, most urgent first.
const (
	Urgent Lane = iota
	Normal
	Batch

	numLanes = 3
)

var laneNames = [numLanes]string{"urgent", "normal", "batch"}

// String returns "urgent", "normal" or "batch" ("lane(N)" for other values).
func (l Lane) String() string {
	if l.valid() {
		return laneNames[l]
	}
	return fmt.Sprintf("lane(%d)", int(l))
}

func (l Lane) valid() bool { return l >= 0 && l < numLanes }

// ParseLane reads "urgent", "normal" or "batch" (case and surrounding space
// ignored). Any other text wraps ErrUnknownLane.
func ParseLane(s string) (Lane, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for i, n := range laneNames {
		if t == n {
			return Lane(i), nil
		}
	}
	return Normal, fmt.Errorf("parse lane %q: %w", s, ErrUnknownLane)
}

// MarshalText writes the lane's name, so a Lane reads and writes as text in
// YAML and JSON.
func (l Lane) MarshalText() ([]byte, error) {
	if !l.valid() {
		return nil, fmt.Errorf("marshal lane %d: %w", int(l), ErrUnknownLane)
	}
	return []byte(laneNames[l]), nil
}

// UnmarshalText parses a lane name with ParseLane.
func (l *Lane) UnmarshalText(b []byte) error {
	v, err := ParseLane(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// LaneConfig sizes one lane.
type LaneConfig struct {
	// Workers is how many goroutines run this lane's tasks (1..4096).
	Workers int `yaml:"workers"`
	// QueueSize bounds the tasks waiting for a worker (1..1000000); when it
	// is full, Pool.Do fails at once with ErrQueueFull.
	QueueSize int `yaml:"queue_size"`
}

// Config sizes the three lanes.
type Config struct {
	Urgent LaneConfig `yaml:"urgent"`
	Normal LaneConfig `yaml:"normal"`
	Batch  LaneConfig `yaml:"batch"`
}

// Limits checked by Validate.
const (
	maxWorkers   = 4096
	maxQueueSize = 1_000_000
)

// DefaultConfig returns the built-in sizes:
//
//	urgent   64 workers, queue 1000
//	normal  512 workers, queue 10000
//	batch     8 workers, queue 10000
//
// Workers mostly wait on the database and on models, so a lane has more of
// them than there are CPUs; urgent keeps a fixed reserve that the other lanes
// never use, and batch stays small so that bulk work cannot crowd the
// machine.
func DefaultConfig() Config {
	// Fixed numbers keep the default the same on every machine.
	return Config{
		Urgent: LaneConfig{Workers: 64, QueueSize: 1000},
		Normal: LaneConfig{Workers: 512, QueueSize: 10000},
		Batch:  LaneConfig{Workers: 8, QueueSize: 10000},
	}
}

// Validate implements config.Validatable: workers 1..4096 and queue_size
// 1..1000000 for every lane.
func (c *Config) Validate(v *config.Validator) {
	for i, lc := range c.lanes() {
		sub := v.Sub(laneNames[i])
		if lc.Workers < 1 || lc.Workers > maxWorkers {
			sub.Errorf("workers", "must be between 1 and %d, got %d", maxWorkers, lc.Workers)
		}
		if lc.QueueSize < 1 || lc.QueueSize > maxQueueSize {
			sub.Errorf("queue_size", "must be between 1 and %d, got %d", maxQueueSize, lc.QueueSize)
		}
	}
}

func (c *Config) lanes() [numLanes]LaneConfig {
	return [numLanes]LaneConfig{c.Urgent, c.Normal, c.Batch}
}
