package dialogue

import (
	"container/list"
	"context"
	"sync"

	"github.com/zhiyin/zhiyin/dialogue/session"
)

// keyLocks serializes the turns of one conversation: a lock per session key,
// created on first use and dropped when nobody holds or waits for it.
// Waiters are served in arrival order (a channel's receivers queue FIFO), so
// two messages of one conversation are handled in the order they came.
type keyLocks struct {
	mu sync.Mutex
	m  map[session.Key]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

func newKeyLocks() *keyLocks { return &keyLocks{m: map[session.Key]*keyLock{}} }

// lock waits for k's lock or for ctx to end; unlock must be called after a
// nil return.
func (l *keyLocks) lock(ctx context.Context, k session.Key) (unlock func(), err error) {
	l.mu.Lock()
	kl := l.m[k]
	if kl == nil {
		kl = &keyLock{ch: make(chan struct{}, 1)}
		l.m[k] = kl
	}
	kl.refs++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		kl.refs--
		if kl.refs == 0 {
			delete(l.m, k)
		}
		l.mu.Unlock()
	}
	select {
	case kl.ch <- struct{}{}:
		return func() { <-kl.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// cache keeps the most recently used sessions in memory, bounded, found by
// key or by id. The daemon is the only writer of its database (it holds the
// exclusive lock), so a cached session is current unless another process
// changed the row (a CLI deleting a user's data): the version check in
// SaveTx catches that and the engine reloads.
type cache struct {
	mu  sync.Mutex
	max int
	ll  *list.List
	m   map[session.Key]*list.Element
	ids map[string]*list.Element
}

type cached struct {
	key  session.Key
	sess *session.Session
	st   *state
}

func newCache(max int) *cache {
	return &cache{max: max, ll: list.New(), m: map[session.Key]*list.Element{}, ids: map[string]*list.Element{}}
}

func (c *cache) get(k session.Key) (*cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cached), true
}

// keyOf returns the key of a cached session id.
func (c *cache) keyOf(id string) (session.Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.ids[id]
	if !ok {
		return session.Key{}, false
	}
	return e.Value.(*cached).key, true
}

func (c *cache) put(v *cached) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[v.key]; ok {
		delete(c.ids, e.Value.(*cached).sess.ID)
		e.Value = v
		c.ids[v.sess.ID] = e
		c.ll.MoveToFront(e)
		return
	}
	e := c.ll.PushFront(v)
	c.m[v.key] = e
	c.ids[v.sess.ID] = e
	for c.ll.Len() > c.max {
		c.remove(c.ll.Back())
	}
}

func (c *cache) remove(e *list.Element) {
	v := e.Value.(*cached)
	c.ll.Remove(e)
	delete(c.m, v.key)
	delete(c.ids, v.sess.ID)
}

func (c *cache) drop(k session.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.remove(e)
	}
}

// dropSession removes the entry holding session id, if any.
func (c *cache) dropSession(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.ids[id]; ok {
		c.remove(e)
	}
}

func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.m)
	clear(c.ids)
}
