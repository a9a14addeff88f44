package skill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Purpose says why the engine calls a skill.
type Purpose string

// Purposes.
const (
	// Answer: the turn's intent names the skill; it answers the customer.
	Answer Purpose = "answer"
	// Validate: a form slot names the skill as its validator; Request.Form,
	// Slot and Value say what to check, Response.Valid is the verdict.
	Validate Purpose = "validate"
	// Submit: a finished form names the skill; Request.Form and Slots hold
	// what was collected.
	Submit Purpose = "submit"
)

// Entity is one entity the NLU found in the message.
type Entity struct {
	Type       string // entity type, e.g. "order_id", "tracking_no"
	Value      string // the text as the customer wrote it
	Normalized string // canonical value (upper-case numbers, ISO dates), or ""
}

// Request is one call of a skill. The engine builds it; a skill must not
// keep it (or its maps) after Handle returns.
type Request struct {
	Purpose Purpose
	Skill   string // the name the domain used

	SessionID, UserID, Channel, Text string

	Intent     string
	Confidence float64
	Entities   []Entity
	Slots      map[string]string // the session's slots before this call

	// Validate: the form, the slot being validated and its candidate value.
	// Submit: Form is the finished form.
	Form, Slot, Value string
}

// Reply is one message a skill says to the customer.
type Reply struct {
	Text     string `json:"text"`
	Markdown bool   `json:"markdown,omitempty"`
}

// Response is a skill's answer. The zero value says nothing and changes
// nothing.
type Response struct {
	Replies []Reply
	// Slots are slot updates: a nil value clears the slot.
	Slots map[string]*string
	// Valid is the verdict of a Validate call: nil or true means valid.
	Valid *bool
	// Handoff asks the engine to hand the conversation to a human.
	Handoff bool
}

// Skill answers requests. Implementations must be safe for concurrent use:
// the engine calls them from many conversations at once.
type Skill interface {
	// Name is the name the domain uses for the skill.
	Name() string
	// CanHandle reports, without I/O, whether the skill wants this request;
	// when it does not, the engine goes on as if the skill said nothing.
	CanHandle(req *Request) bool
	// Handle answers the request. It may do I/O bounded by ctx. An error
	// means the skill failed (the engine apologises); "not found" and other
	// answers for the customer are Replies, not errors.
	Handle(ctx context.Context, req *Request) (*Response, error)
}

// Registry holds the skills by name. Safe for concurrent use.
type Registry struct {
	mu     sync.RWMutex
	skills map[string]Skill
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{skills: map[string]Skill{}} }

// Register adds s under s.Name(). A nil skill or an empty name is an error;
// a name already registered wraps ErrDuplicate.
func (r *Registry) Register(s Skill) error {
	if s == nil {
		return errors.New("register skill: nil skill")
	}
	name := s.Name()
	if name == "" {
		return errors.New("register skill: empty name: give the skill a name the domain can refer to")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.skills[name]; ok {
		return fmt.Errorf("register skill %q: %w: rename one of them (actions[].name)", name, ErrDuplicate)
	}
	r.skills[name] = s
	return nil
}

// Get returns the skill registered under name.
func (r *Registry) Get(name string) (Skill, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.skills[name]
	return s, ok
}

// Has reports whether a skill is registered under name.
func (r *Registry) Has(name string) bool {
	_, ok := r.Get(name)
	return ok
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.skills))
	for n := range r.skills {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
