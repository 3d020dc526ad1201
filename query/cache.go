package query

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// loadTimeout bounds one cache load.
const loadTimeout = 2 * time.Minute

// lru is a byte-bounded least-recently-used cache with one load in flight
// per key (concurrent misses of a key wait for the first load).
type lru struct {
	mu       sync.Mutex
	max, cur int64
	ll       *list.List
	items    map[string]*list.Element
	inflight map[string]*call
	hits     func()
	misses   func()
}

type entry struct {
	key  string
	val  any
	size int64
}

type call struct {
	done chan struct{}
	val  any
	err  error
}

func newLRU(maxBytes int64) *lru {
	return &lru{max: maxBytes, ll: list.New(), items: map[string]*list.Element{}, inflight: map[string]*call{},
		hits: func() {}, misses: func() {}}
}

// get returns the cached value of key or loads it; load returns the value
// and its size in bytes. load runs with a context detached from the
// request's (other requests may wait for the same load) but bounded by
// loadTimeout. Values larger than the whole cache are returned
// but not kept. Errors are not cached.
func (c *lru) get(ctx context.Context, key string, load func(ctx context.Context) (any, int64, error)) (any, error) {
	c.mu.Lock()
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		c.mu.Unlock()
		c.hits()
		return e.Value.(*entry).val, nil
	}
	if cl, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			c.hits()
			return cl.val, cl.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[key] = cl
	c.mu.Unlock()
	c.misses()

	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
	val, size, err := safeLoad(func() (any, int64, error) { return load(lctx) })
	cancel()
	cl.val, cl.err = val, err
	c.mu.Lock()
	delete(c.inflight, key)
	if err == nil && size <= c.max {
		c.items[key] = c.ll.PushFront(&entry{key: key, val: val, size: size})
		c.cur += size
		for c.cur > c.max {
			old := c.ll.Back()
			e := old.Value.(*entry)
			c.ll.Remove(old)
			delete(c.items, e.key)
			c.cur -= e.size
		}
	}
	c.mu.Unlock()
	close(cl.done)
	return val, err
}

// peek returns the cached value of key, if any, without loading it.
func (c *lru) peek(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*entry).val, true
}

// bytes is the size of what the cache holds.
func (c *lru) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// safeLoad runs load, turning a panic into an error so that waiters are
// always released.
func safeLoad(load func() (any, int64, error)) (val any, size int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			val, size, err = nil, 0, fmt.Errorf("internal error: %v", p)
		}
	}()
	return load()
}

// removeIf drops key when it still holds val (so a caller that found an
// expired value cannot drop a fresher one another caller just loaded).
func (c *lru) removeIf(key string, val any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok || e.Value.(*entry).val != val {
		return
	}
	c.ll.Remove(e)
	delete(c.items, key)
	c.cur -= e.Value.(*entry).size
}
