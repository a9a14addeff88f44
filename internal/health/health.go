// Package health tracks what the daemon is waiting for before it is ready
// (the database open, every enabled model loaded and warmed) for /readyz and
// systemd's READY=1. It does no I/O.
package health

import (
	"sort"
	"sync"
)

// Item is one component's readiness.
type Item struct {
	Name   string `json:"name"`
	Ready  bool   `json:"ready"`
	Detail string `json:"detail,omitempty"`
}

// Readiness is the set of components the daemon waits for. The zero value is
// not usable; use NewReadiness. Safe for concurrent use.
type Readiness struct {
	mu      sync.Mutex
	items   map[string]Item
	changed chan struct{} // closed and replaced on every change
}

// NewReadiness returns an empty tracker. With no components registered the
// daemon counts as ready.
func NewReadiness() *Readiness {
	return &Readiness{items: map[string]Item{}, changed: make(chan struct{})}
}

// Set records a component's state; a component that is not ready yet should
// be Set to false as soon as it is known to be enabled, so that readiness
// waits for it.
func (r *Readiness) Set(name string, ready bool, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items[name] = Item{Name: name, Ready: ready, Detail: detail}
	close(r.changed)
	r.changed = make(chan struct{})
}

// Remove forgets a component (a model that was disabled).
func (r *Readiness) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.items[name]; ok {
		delete(r.items, name)
		close(r.changed)
		r.changed = make(chan struct{})
	}
}

// Snapshot returns whether every component is ready and the items sorted by
// name.
func (r *Readiness) Snapshot() (bool, []Item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Item, 0, len(r.items))
	ready := true
	for _, it := range r.items {
		out = append(out, it)
		ready = ready && it.Ready
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return ready, out
}

// Changed returns a channel that is closed at the next change.
func (r *Readiness) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Liveness holds the result of the daemon's last self-check, for /healthz
// and the systemd watchdog. Safe for concurrent use.
type Liveness struct {
	mu  sync.Mutex
	err error
	set bool
}

// Set records the latest check result (nil: healthy).
func (l *Liveness) Set(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err, l.set = err, true
}

// Err returns the latest result; before the first check it is nil (the
// process is alive, which is all /healthz promises until then).
func (l *Liveness) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
